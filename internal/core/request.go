package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/token"
)

// Operation is a logical operation, as policies name them.
type Operation string

// The logical operations. HTTP methods map onto them in httpapi: GET is
// read (or list with ?list=true), LIST is list, POST and PUT are create or
// update (decided by the route's existence check), PATCH is patch, DELETE
// is delete.
const (
	OpRead   Operation = "read"
	OpList   Operation = "list"
	OpCreate Operation = "create"
	OpUpdate Operation = "update"
	OpPatch  Operation = "patch"
	OpDelete Operation = "delete"
	// OpWrite is what the transport hands in for POST and PUT; the core
	// resolves it to OpCreate or OpUpdate before authorisation.
	OpWrite Operation = "write"
	// OpHead is a HEAD request; only a few unauthenticated endpoints take it.
	OpHead Operation = "head"
)

// Request is one API request as the core sees it: no HTTP, no JSON
// envelope. Body is the raw JSON request body (nil when empty); handlers
// decode it into a typed input with Decode.
type Request struct {
	ID         string
	Operation  Operation
	Path       string // without the /v1/ prefix and without a leading slash
	Body       json.RawMessage
	Query      url.Values
	Token      string
	RemoteAddr string
	// ContentType is the request's Content-Type (PATCH needs merge-patch).
	ContentType string
	// WrapTTL is the requested response-wrapping TTL (X-Vault-Wrap-TTL).
	WrapTTL time.Duration

	// Set by the core while routing.
	MountPath  string // e.g. "secret/"
	RoutePath  string // Path relative to the mount
	Params     map[string]string
	MountPoint *MountEntry
	Auth       *Auth // the authenticated caller; nil on unauthenticated routes
}

// Decode decodes the request body into v. An empty body leaves v as is.
// Numbers keep their JSON text (UseNumber) when decoding into any.
// Errors carry Vault's wording so clients see the message they expect.
func (r *Request) Decode(v any) error {
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "(body)"
			}
			return BadRequest("error converting input for field %q: expected type %s, got %s", field, te.Type, te.Value)
		}
		return BadRequest("failed to decode JSON input: %v", err)
	}
	return nil
}

// QueryOrBody returns a parameter from the query string, falling back to
// a top-level string field of the JSON body.
func (r *Request) QueryOrBody(name string) string {
	if v := r.Query.Get(name); v != "" {
		return v
	}
	if len(r.Body) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(r.Body, &m) != nil {
		return ""
	}
	raw, ok := m[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.Trim(string(raw), `"`)
}

// Response is what a handler returns. A nil *Response with a nil error
// means 204 No Content.
type Response struct {
	// Status overrides the HTTP status (0 means 200, or 204 without data).
	Status int
	// Data is the envelope's "data" (any JSON-marshalable value).
	Data any
	// Raw, when set, is written as the whole body without the envelope
	// (sys/init, sys/seal-status, sys/health, ...).
	Raw any
	// Auth is the envelope's "auth" block after a login or token create.
	Auth          *AuthResponse
	Warnings      []string
	LeaseID       string
	Renewable     bool
	LeaseDuration int64
	// TopLevel are extra top-level keys merged beside the envelope keys
	// (sys/mounts and sys/capabilities-self duplicate their data there).
	TopLevel map[string]any
	// NotFoundWithData makes the status 404 while still sending the
	// envelope (a deleted KV version).
	NotFoundWithData bool
	// RawBody, when set, is written as is with ContentType (sys/metrics).
	RawBody     []byte
	ContentType string
	// Login, set by an auth method's login handler, asks the core to mint
	// a token for the authenticated identity; the core fills Auth.
	Login *Login
}

// Login describes the token an auth method's login should receive.
type Login struct {
	Policies []string
	// NoDefaultPolicy leaves out the "default" policy.
	NoDefaultPolicy bool
	// Metadata lands in the token's meta and in auth.metadata; policies
	// can template on it ({{identity.metadata.<key>}}).
	Metadata    map[string]string
	DisplayName string
	TTL         time.Duration
	MaxTTL      time.Duration
	Period      time.Duration
	NumUses     int
	BoundCIDRs  []string
	// EntityID is a stable id for the identity (e.g. the SA uid).
	EntityID string
}

// AuthResponse is the envelope's "auth" block.
type AuthResponse struct {
	ClientToken    string            `json:"client_token"`
	Accessor       string            `json:"accessor"`
	Policies       []string          `json:"policies"`
	TokenPolicies  []string          `json:"token_policies"`
	Metadata       map[string]string `json:"metadata"`
	LeaseDuration  int64             `json:"lease_duration"`
	Renewable      bool              `json:"renewable"`
	EntityID       string            `json:"entity_id"`
	TokenType      string            `json:"token_type"`
	Orphan         bool              `json:"orphan"`
	MFARequirement any               `json:"mfa_requirement"`
	NumUses        int               `json:"num_uses"`
}

// Auth is the identity behind an authenticated request.
type Auth struct {
	TokenID     string // the token's storage id (a keyed hash), never the token
	Accessor    string
	DisplayName string
	Policies    []string
	Metadata    map[string]string
	EntityID    string
	Root        bool
	// Path the token was created on (auth/token/create, auth/kubernetes/login).
	Path string

	entry       *token.Entry
	exhausted   bool
	numUsesLeft *int
}

// Error is an error carrying an HTTP status and a user-facing message.
// The transport's one mapper turns it into {"errors":[Msg]}.
type Error struct {
	Status int
	Msg    string
	// Empty sends {"errors":[]} (Vault's plain 404s and 405s).
	Empty bool
	err   error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.err }

// BadRequest returns a 400 error with a formatted message.
func BadRequest(format string, args ...any) error {
	return &Error{Status: 400, Msg: fmt.Sprintf(format, args...)}
}

// StatusError returns an error with the given status and message.
func StatusError(status int, format string, args ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Sentinel errors the transport maps to statuses.
var (
	// ErrSealed: the server is sealed (503 "Vault is sealed").
	ErrSealed = errors.New("Vault is sealed")
	// ErrPermissionDenied: no token, an unknown or expired token (403).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrACLDenied: a valid token whose policies deny the request (403,
	// Vault's multierror text).
	ErrACLDenied = errors.New("1 error occurred:\n\t* permission denied\n\n")
	// ErrNotInitialized: the server has not been initialised (400 on most
	// paths, as Vault).
	ErrNotInitialized = errors.New("Vault is not initialized")
	// ErrUnsupportedPath: an unknown sys/ path (404).
	ErrUnsupportedPath = errors.New("1 error occurred:\n\t* unsupported path\n\n")
	// ErrUnsupportedOperation: the route exists but not for this operation (405).
	ErrUnsupportedOperation = errors.New("1 error occurred:\n\t* unsupported operation\n\n")
	// ErrNotFound: the resource does not exist (404 with an empty error list).
	ErrNotFound = errors.New("not found")
)
