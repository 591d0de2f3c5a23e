package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one audit record as the caller builds it: the request, the
// caller's identity and, for a response entry, what was returned. Values
// are in the clear; the broker HMACs tokens and secret values per device
// before anything is written. The JSON tags give Vault's field names.
//
// Type is set by LogRequest ("request") and LogResponse ("response"); a
// zero Time is filled in from BrokerOptions.Now.
type Entry struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Auth     *Auth     `json:"auth,omitempty"`
	Request  *Request  `json:"request,omitempty"`
	Response *Response `json:"response,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Auth is the caller's identity (the entry's "auth") or the token a login
// or token create returned (the response's "auth"). ClientToken and
// Accessor are HMAC'd when written; the rest is written as is.
type Auth struct {
	// TokenID, when set, is the storage id of ClientToken: a keyed hash
	// that names exactly that token. A device then remembers the HMACs of
	// ClientToken and Accessor under it instead of computing them for
	// every request of the same token. Never written.
	TokenID       string            `json:"-"`
	ClientToken   string            `json:"client_token,omitempty"`
	Accessor      string            `json:"accessor,omitempty"`
	DisplayName   string            `json:"display_name,omitempty"`
	Policies      []string          `json:"policies,omitempty"`
	TokenPolicies []string          `json:"token_policies,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	EntityID      string            `json:"entity_id,omitempty"`
	TokenType     string            `json:"token_type,omitempty"`
	// TokenTTL is the token's TTL in seconds (0: none or unknown).
	TokenTTL int64 `json:"token_ttl,omitempty"`
}

// Request is the request part of an entry. Data is the decoded request
// body (any JSON-marshalable value, typically map[string]any); every
// string in it is HMAC'd when written.
type Request struct {
	ID            string `json:"id,omitempty"`
	Operation     string `json:"operation,omitempty"`
	MountType     string `json:"mount_type,omitempty"`
	MountAccessor string `json:"mount_accessor,omitempty"`
	Path          string `json:"path,omitempty"`
	Data          any    `json:"data,omitempty"`
	RemoteAddress string `json:"remote_address,omitempty"`
}

// Response is the response part of a response entry. Every string in Data
// and the token and accessor in Auth are HMAC'd when written.
type Response struct {
	Data     any      `json:"data,omitempty"`
	Auth     *Auth    `json:"auth,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// hmacPrefix starts every HMAC'd value, as in Vault.
const hmacPrefix = "hmac-sha256:"

// HashString returns the HMAC-SHA256 of v under key, in the form audit
// records carry it: "hmac-sha256:" followed by 64 lowercase hex digits.
// It is what sys/audit-hash/<path> returns, so an operator can find the
// records that mention a known value.
func HashString(key []byte, v string) string {
	h := hmac.New(sha256.New, key)
	return hashWith(h, v)
}

func hashWith(h hash.Hash, v string) string {
	var out [len(hmacPrefix) + 2*sha256.Size]byte
	var sum [sha256.Size]byte
	return string(appendHMAC(out[:0], h, nil, &sum, v))
}

// appendHMAC appends "hmac-sha256:" and the hex HMAC of v under h (reset
// first). scratch, when large enough, spares copying v to the heap.
// sum is where the digest goes before it is hex-encoded: the caller's,
// so that it does not escape through the hash.Hash interface (a heap
// allocation per value).
func appendHMAC(dst []byte, h hash.Hash, scratch []byte, sum *[sha256.Size]byte, v string) []byte {
	h.Reset()
	if len(v) <= cap(scratch) {
		scratch = append(scratch[:0], v...)
		h.Write(scratch)
	} else {
		h.Write([]byte(v))
	}
	dst = append(dst, hmacPrefix...)
	return hex.AppendEncode(dst, h.Sum(sum[:0]))
}

// timeFormat is how record times are written: RFC 3339 in UTC with
// nanoseconds, as encoding/json writes a UTC time.Time.
const timeFormat = time.RFC3339Nano

// maxDepth bounds the nesting render follows in Data (a cycle or a
// pathological value fails the record instead of the stack).
const maxDepth = 512

// errTooDeep is returned for data nested deeper than maxDepth.
var errTooDeep = errors.New("data nested too deeply")

// hasher HMACs the strings of one record under one device's key.
type hasher struct {
	h       hash.Hash
	scratch []byte // values are copied here to be hashed
	sum     [sha256.Size]byte
	empty   []byte // the HMAC of "" (prefixed, hex), made on first use
	auths   *authMemo
}

// authMemo remembers, per token (by Auth.TokenID), the HMACs of its token
// and accessor under one device's key: a busy server sees the same few
// tokens over and over. Only HMACs are kept, never a token. It holds at
// most maxAuthMemo tokens and starts over when full.
type authMemo struct {
	m sync.Map // TokenID -> *authHMACs
	n atomic.Int32
}

type authHMACs struct {
	accessor       string // the accessor in the clear, to check a hit against
	token, hashedA []byte // `"hmac-sha256:..."` of the token and of the accessor
}

const maxAuthMemo = 4096

// appendAuthHMACs appends the "client_token" and "accessor" fields of a
// (each when set) to an auth object begun at at.
func (hs *hasher) appendAuthHMACs(dst []byte, at int, a *Auth) []byte {
	if a.TokenID == "" || a.ClientToken == "" || hs.auths == nil {
		for _, t := range [2][2]string{{"client_token", a.ClientToken}, {"accessor", a.Accessor}} {
			if t[1] != "" {
				dst = appendName(dst, at, t[0])
				dst = hs.appendHashed(dst, t[1])
			}
		}
		return dst
	}
	var h *authHMACs
	if v, ok := hs.auths.m.Load(a.TokenID); ok && v.(*authHMACs).accessor == a.Accessor {
		h = v.(*authHMACs)
	} else {
		h = &authHMACs{accessor: a.Accessor, token: hs.appendHashed(nil, a.ClientToken)}
		if a.Accessor != "" {
			h.hashedA = hs.appendHashed(nil, a.Accessor)
		}
		if hs.auths.n.Add(1) > maxAuthMemo {
			hs.auths.m.Clear()
			hs.auths.n.Store(1)
		}
		hs.auths.m.Store(a.TokenID, h)
	}
	dst = appendName(dst, at, "client_token")
	dst = append(dst, h.token...)
	if h.hashedA != nil {
		dst = appendName(dst, at, "accessor")
		dst = append(dst, h.hashedA...)
	}
	return dst
}

func (hs *hasher) str(v string) string {
	var out [len(hmacPrefix) + 2*sha256.Size]byte
	return string(hs.appendHMAC(out[:0], v))
}

func (hs *hasher) appendHMAC(dst []byte, v string) []byte {
	if v == "" {
		// Empty strings are common (a KV read's deletion_time) and their
		// HMAC is the same every time: hash it once.
		if hs.empty == nil {
			hs.empty = appendHMAC(nil, hs.h, nil, &hs.sum, "")
		}
		return append(dst, hs.empty...)
	}
	if hs.scratch == nil {
		hs.scratch = make([]byte, 0, 1024)
	}
	return appendHMAC(dst, hs.h, hs.scratch, &hs.sum, v)
}

// value returns a copy of v with every string leaf HMAC'd. Numbers,
// booleans and nulls stay; map keys stay. Values of other types are
// brought to their JSON form first, so a struct's string fields (and
// []byte, time.Time, anything that marshals to a string) are HMAC'd too.
func (hs *hasher) value(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return hs.str(x), nil
	case bool, json.Number, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return x, nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			h, err := hs.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = h
		}
		return m, nil
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			h, err := hs.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			s[i] = h
		}
		return s, nil
	case map[string]string:
		m := make(map[string]string, len(x))
		for k, e := range x {
			m[k] = hs.str(e)
		}
		return m, nil
	case []string:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = hs.str(e)
		}
		return s, nil
	case json.RawMessage:
		return hs.raw(x, depth)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return hs.raw(b, depth)
	}
}

// raw decodes JSON (keeping numbers as written) and HMACs its strings.
func (hs *hasher) raw(b []byte, depth int) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return hs.value(v, depth+1)
}

// marshalCompact marshals v without HTML escaping and without the
// encoder's trailing newline.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
