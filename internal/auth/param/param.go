// Package param decodes the request bodies of auth method endpoints and
// holds the token_* parameters every auth role shares.
//
// # Bodies
//
// Vault's auth endpoints take loosely typed JSON: lists may be sent as a
// JSON array or as one comma-separated string, durations as a number of
// seconds or a string such as "1h" or "7d", booleans as true or "true".
// Clients rely on all of these (the vault CLI sends every value as a
// string), so Body accepts them, and reports every problem of a body at
// once:
//
//	b, err := param.Parse(req.Body)
//	if err != nil { return nil, err }        // 400, not a JSON object
//	b.String("kubernetes_host", &cfg.Host)   // only when present
//	b.Strings("pem_keys", &cfg.PEMKeys)
//	if err := b.Err(); err != nil { ... }    // 400 listing every problem,
//	                                         // unknown fields included
//
// A setter changes its destination only when the field is present, so
// decoding onto a stored value gives Vault's "update only what was sent"
// semantics; a JSON null resets the field to its zero value.
//
// # Token parameters
//
// Token is Vault's tokenutil set (token_policies, token_ttl, ...), with the
// legacy names (policies, ttl, max_ttl, period, num_uses, bound_cidrs)
// accepted on write. Its Data method writes the role-read fields with
// Vault's defaults, and Login turns it into the core's core.Login.
package param

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// Body is a decoded JSON object whose fields are read one by one.
// Problems accumulate; Err reports them.
type Body struct {
	raw  map[string]json.RawMessage
	used map[string]bool
	errs []string
}

// Parse decodes raw (a request body; empty means {}) into a Body. A body
// that is not a JSON object is a 400 error.
func Parse(raw []byte) (*Body, error) {
	b := &Body{raw: map[string]json.RawMessage{}, used: map[string]bool{}}
	if len(bytes.TrimSpace(raw)) == 0 {
		return b, nil
	}
	if err := json.Unmarshal(raw, &b.raw); err != nil {
		return nil, core.BadRequest("failed to decode JSON input: want a JSON object: %v", err)
	}
	if b.raw == nil {
		b.raw = map[string]json.RawMessage{}
	}
	return b, nil
}

// Has reports whether the body has the field (null included).
func (b *Body) Has(name string) bool {
	_, ok := b.raw[name]
	return ok
}

// Ignore marks fields as known without reading them.
func (b *Body) Ignore(names ...string) {
	for _, n := range names {
		b.used[n] = true
	}
}

// Fail records a problem with a field.
func (b *Body) Fail(name, format string, args ...any) {
	b.errs = append(b.errs, fmt.Sprintf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Failf records a problem that is not about one field.
func (b *Body) Failf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

// Err returns a 400 error listing every problem recorded and every field
// no setter read, or nil.
func (b *Body) Err() error {
	errs := slices.Clone(b.errs)
	for _, name := range slices.Sorted(maps.Keys(b.raw)) {
		if !b.used[name] {
			errs = append(errs, fmt.Sprintf("unknown field %q", name))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return core.BadRequest("%s", strings.Join(errs, "; "))
}

// field returns the raw value of name, marking it used. ok is false when
// absent; null reports true with isNull.
func (b *Body) field(name string) (v json.RawMessage, isNull, ok bool) {
	v, ok = b.raw[name]
	if !ok {
		return nil, false, false
	}
	b.used[name] = true
	v = bytes.TrimSpace(v)
	return v, bytes.Equal(v, []byte("null")), true
}

// String sets *dst from a string field. Numbers and booleans are taken
// in their JSON text, as the vault CLI sends everything as strings anyway.
func (b *Body) String(name string, dst *string) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
	case isNull:
		*dst = ""
	default:
		s, err := scalar(v)
		if err != nil {
			b.Fail(name, "want a string")
			return
		}
		*dst = s
	}
}

// Strings sets *dst from a list of strings or a comma-separated string.
// Elements are trimmed; empty elements are dropped.
func (b *Body) Strings(name string, dst *[]string) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
		return
	case isNull:
		*dst = nil
		return
	}
	var out []string
	if len(v) > 0 && v[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			b.Fail(name, "want a list of strings")
			return
		}
		for _, el := range list {
			s, err := scalar(el)
			if err != nil {
				b.Fail(name, "want a list of strings")
				return
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	} else {
		s, err := scalar(v)
		if err != nil {
			b.Fail(name, "want a list of strings or a comma-separated string")
			return
		}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	*dst = out
}

// Bool sets *dst from true/false or their string forms.
func (b *Body) Bool(name string, dst *bool) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
	case isNull:
		*dst = false
	default:
		s, err := scalar(v)
		if err == nil {
			var bv bool
			if bv, err = strconv.ParseBool(s); err == nil {
				*dst = bv
				return
			}
		}
		b.Fail(name, "want true or false")
	}
}

// Int sets *dst from an integer or its string form.
func (b *Body) Int(name string, dst *int) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
	case isNull:
		*dst = 0
	default:
		s, err := scalar(v)
		if err == nil {
			var n int
			if n, err = strconv.Atoi(s); err == nil {
				*dst = n
				return
			}
		}
		b.Fail(name, "want an integer")
	}
}

// Duration sets *dst from seconds or a duration string ("90s", "1h",
// "7d"). Negative durations are refused.
func (b *Body) Duration(name string, dst *time.Duration) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
	case isNull:
		*dst = 0
	default:
		s, err := scalar(v)
		if err != nil {
			b.Fail(name, "want seconds or a duration such as \"1h\"")
			return
		}
		d, err := core.ParseDuration(s)
		if err != nil {
			b.Fail(name, "%v", err)
			return
		}
		*dst = d
	}
}

// Leeway sets *dst like Duration but also takes -1 (or any negative
// number of seconds), which is stored as -1ns and means "no leeway", as
// Vault's leeway fields do.
func (b *Body) Leeway(name string, dst *time.Duration) {
	if v, ok := b.raw[name]; ok {
		if s, err := scalar(bytes.TrimSpace(v)); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n < 0 {
				b.used[name] = true
				*dst = -1
				return
			}
		}
	}
	b.Duration(name, dst)
}

// StringMap sets *dst from an object of strings, or from a list of
// "key=value" strings (Vault's TypeKVPairs).
func (b *Body) StringMap(name string, dst *map[string]string) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
		return
	case isNull:
		*dst = nil
		return
	}
	out := map[string]string{}
	if len(v) > 0 && v[0] == '[' {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			b.Fail(name, "want an object of strings or a list of \"key=value\" strings")
			return
		}
		for _, kv := range list {
			k, val, found := strings.Cut(kv, "=")
			if !found || k == "" {
				b.Fail(name, "%q is not of the form key=value", kv)
				return
			}
			out[k] = val
		}
		*dst = out
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		b.Fail(name, "want an object of strings")
		return
	}
	for k, raw := range m {
		s, err := scalar(raw)
		if err != nil {
			b.Fail(name, "value of %q: want a string", k)
			return
		}
		out[k] = s
	}
	*dst = out
}

// Object sets *dst from a JSON object, numbers kept as json.Number. A
// string holding a JSON object is accepted too (the vault CLI's form).
func (b *Body) Object(name string, dst *map[string]any) {
	v, isNull, ok := b.field(name)
	switch {
	case !ok:
		return
	case isNull:
		*dst = nil
		return
	}
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			v = []byte(s)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		b.Fail(name, "want a JSON object")
		return
	}
	*dst = m
}

// scalar returns the text of a JSON string, number or boolean.
func scalar(v json.RawMessage) (string, error) {
	if len(v) == 0 {
		return "", errors.New("empty")
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '{', '[', 'n':
		return "", errors.New("not a scalar")
	}
	return string(v), nil
}
