// Package httpapi is coffer's HTTP transport: it turns Vault-style HTTP
// requests into core requests and core responses into Vault's JSON
// envelope, and holds the one place where errors become status codes.
//
// Wire conventions (see shared/vault-api.md): every path lives under /v1/;
// GET reads (GET ...?list=true and the LIST verb list), POST and PUT
// write, PATCH merge-patches (Content-Type application/merge-patch+json),
// DELETE deletes, HEAD only answers sys/health. The token comes from
// X-Vault-Token, else from Authorization: Bearer. Responses carry
// Cache-Control: no-store. Errors are {"errors":[...]}.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
)

// Handler is the part of the core the transport needs.
type Handler interface {
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
}

var _ Handler = (*core.Core)(nil)

// Observer records finished requests (Prometheus metrics).
type Observer interface {
	ObserveRequest(mount, operation string, code int, d time.Duration)
}

// Options tune the transport.
type Options struct {
	// Observer, when set, sees every finished /v1/ request.
	Observer Observer
	// MaxRequestSize bounds request bodies; larger bodies get 413.
	// Zero means 32 MiB, as Vault.
	MaxRequestSize int64
	Logger         *slog.Logger
}

// DefaultMaxRequestSize is used when Options.MaxRequestSize is zero.
const DefaultMaxRequestSize = 32 << 20

type api struct {
	h      Handler
	max    int64
	logger *slog.Logger
	obs    Observer
}

// New returns the /v1/ HTTP handler.
func New(h Handler, opts Options) http.Handler {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = DefaultMaxRequestSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &api{h: h, max: opts.MaxRequestSize, logger: opts.Logger, obs: opts.Observer}
}

// envelope is Vault's response envelope; all eight keys always present.
type envelope struct {
	RequestID     string             `json:"request_id"`
	LeaseID       string             `json:"lease_id"`
	Renewable     bool               `json:"renewable"`
	LeaseDuration int64              `json:"lease_duration"`
	Data          any                `json:"data"`
	WrapInfo      any                `json:"wrap_info"`
	Warnings      []string           `json:"warnings"`
	Auth          *core.AuthResponse `json:"auth"`
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	switch r.URL.Path {
	case "/livez":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case "/readyz":
		a.ready(w)
		return
	}
	var req core.Request
	status := a.serve(w, r, &req)
	if a.obs != nil && req.ID != "" {
		a.obs.ObserveRequest(req.MountPath, string(req.Operation), status, time.Since(start))
	}
	a.logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"remote", r.RemoteAddr, "took", time.Since(start).Round(time.Microsecond))
}

// ready answers the Kubernetes readiness probe: 200 when unsealed, 503
// when sealed or not initialised.
func (a *api) ready(w http.ResponseWriter) {
	if s, ok := a.h.(interface{ Sealed() bool }); ok && s.Sealed() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "sealed"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) serve(w http.ResponseWriter, r *http.Request, req *core.Request) int {
	if ns := r.Header.Get("X-Vault-Namespace"); ns != "" {
		w.Header().Set("X-Vault-Namespace", ns)
		if t := strings.Trim(ns, "/"); t != "" && t != "root" {
			return writeErrors(w, http.StatusNotFound, "namespace not found")
		}
	}
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return writeErrors(w, http.StatusNotFound)
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if hasDotSegment(path) {
		return writeErrors(w, http.StatusBadRequest, "invalid path: segments \".\" and \"..\" are not allowed")
	}
	q := r.URL.Query()
	var op core.Operation
	switch r.Method {
	case http.MethodGet:
		op = core.OpRead
		if v := q.Get("list"); v == "true" || v == "1" {
			op = core.OpList
		}
	case "LIST":
		op = core.OpList
	case http.MethodPut, http.MethodPost:
		op = core.OpWrite
	case http.MethodPatch:
		op = core.OpPatch
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/merge-patch+json" {
			return writeErrors(w, http.StatusUnsupportedMediaType,
				"PATCH requires Content-Type of application/merge-patch+json, provided "+r.Header.Get("Content-Type"))
		}
	case http.MethodDelete:
		op = core.OpDelete
	case http.MethodHead:
		if path != "sys/health" {
			return writeErrors(w, http.StatusMethodNotAllowed)
		}
		op = core.OpHead
	default:
		return writeErrors(w, http.StatusMethodNotAllowed)
	}
	if op == core.OpList {
		path = strings.TrimSuffix(path, "/")
	}
	if r.Header.Get("X-Vault-Wrap-TTL") != "" {
		// Answering unwrapped would hand a secret to a client that asked
		// for it to be wrapped: refuse instead.
		return writeErrors(w, http.StatusBadRequest, "response wrapping (X-Vault-Wrap-TTL) is not supported by coffer yet")
	}
	body, status, msg := a.readBody(w, r)
	if status != 0 {
		return writeErrors(w, status, msg)
	}
	*req = core.Request{
		ID:          core.NewUUID(),
		Operation:   op,
		Path:        path,
		Body:        body,
		Query:       q,
		Token:       token(r),
		RemoteAddr:  r.RemoteAddr,
		ContentType: r.Header.Get("Content-Type"),
	}
	resp, err := a.h.Handle(r.Context(), req)
	if err != nil {
		return a.writeError(w, req, err)
	}
	if r.Method == http.MethodHead {
		code := http.StatusOK
		if resp != nil && resp.Status != 0 {
			code = resp.Status
		}
		w.WriteHeader(code)
		return code
	}
	return writeResponse(w, req, resp)
}

// readBody reads and bounds the request body and checks that it is JSON.
func (a *api) readBody(w http.ResponseWriter, r *http.Request) (json.RawMessage, int, string) {
	if r.Body == nil {
		return nil, 0, ""
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, "request body too large: the limit is " + humanBytes(a.max)
		}
		return nil, http.StatusBadRequest, "failed to read request body: " + err.Error()
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, 0, ""
	}
	var probe json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&probe); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, http.StatusBadRequest, "failed to decode JSON input: unexpected EOF"
		}
		return nil, http.StatusBadRequest, "failed to decode JSON input: " + err.Error()
	}
	if dec.More() {
		return nil, http.StatusBadRequest, "failed to decode JSON input: extra data after the JSON value"
	}
	return b, 0, ""
}

func token(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func writeResponse(w http.ResponseWriter, req *core.Request, resp *core.Response) int {
	if resp == nil {
		w.Header().Del("Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	code := resp.Status
	if code == 0 {
		code = http.StatusOK
		if resp.NotFoundWithData {
			code = http.StatusNotFound
		}
	}
	if resp.Raw != nil {
		return writeJSON(w, code, resp.Raw)
	}
	if resp.RawBody != nil {
		w.Header().Set("Content-Type", resp.ContentType)
		w.WriteHeader(code)
		_, _ = w.Write(resp.RawBody)
		return code
	}
	env := envelope{RequestID: req.ID, LeaseID: resp.LeaseID, Renewable: resp.Renewable,
		LeaseDuration: resp.LeaseDuration, Data: resp.Data, Warnings: resp.Warnings, Auth: resp.Auth}
	if len(resp.TopLevel) == 0 {
		return writeJSON(w, code, env)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return writeErrors(w, http.StatusInternalServerError, "internal error encoding the response")
	}
	var merged map[string]any
	_ = json.Unmarshal(raw, &merged)
	for k, v := range resp.TopLevel {
		if _, clash := merged[k]; !clash {
			merged[k] = v
		}
	}
	return writeJSON(w, code, merged)
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"errors":["internal error encoding the response"]}`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
	return code
}

func writeErrors(w http.ResponseWriter, code int, msgs ...string) int {
	if msgs == nil {
		msgs = []string{}
	}
	return writeJSON(w, code, map[string][]string{"errors": msgs})
}

// writeError is the one mapping from errors to HTTP statuses.
func (a *api) writeError(w http.ResponseWriter, req *core.Request, err error) int {
	var ce *core.Error
	switch {
	case errors.As(err, &ce):
		if ce.Empty {
			return writeErrors(w, ce.Status)
		}
		return writeErrors(w, ce.Status, ce.Msg)
	case errors.Is(err, core.ErrSealed):
		return writeErrors(w, http.StatusServiceUnavailable, core.ErrSealed.Error())
	case errors.Is(err, core.ErrPermissionDenied):
		return writeErrors(w, http.StatusForbidden, core.ErrPermissionDenied.Error())
	case errors.Is(err, core.ErrACLDenied):
		return writeErrors(w, http.StatusForbidden, core.ErrACLDenied.Error())
	case errors.Is(err, core.ErrUnsupportedPath):
		return writeErrors(w, http.StatusNotFound, core.ErrUnsupportedPath.Error())
	case errors.Is(err, core.ErrUnsupportedOperation):
		return writeErrors(w, http.StatusMethodNotAllowed, core.ErrUnsupportedOperation.Error())
	case errors.Is(err, core.ErrNotFound):
		return writeErrors(w, http.StatusNotFound)
	case errors.Is(err, core.ErrAuditFailed):
		return writeErrors(w, http.StatusInternalServerError, core.ErrAuditFailed.Error())
	case errors.Is(err, core.ErrNotInitialized):
		return writeErrors(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, storage.ErrInvalidKey):
		return writeErrors(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, context.Canceled):
		return writeErrors(w, 499, "request cancelled by the client")
	case errors.Is(err, context.DeadlineExceeded):
		return writeErrors(w, http.StatusGatewayTimeout, "request timed out")
	}
	a.logger.Error("request failed", "request_id", req.ID, "path", req.Path, "error", err)
	return writeErrors(w, http.StatusInternalServerError, "internal error; the server log has the details under request id "+req.ID)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
