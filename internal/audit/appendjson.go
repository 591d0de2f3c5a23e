package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// data renders v, HMAC'd, as JSON: nil for an absent value (the field is
// then left out), else what json.Marshal of hs.value(v) would give, but
// written directly: the common shapes (maps, slices, strings, numbers)
// are appended without building a copy or going through reflection, which
// keeps auditing cheap on the request path.
func (hs *hasher) data(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := hs.appendValue(make([]byte, 0, 512), v, 0)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

func (hs *hasher) appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return hs.appendHashed(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case json.Number:
		// A number literal only: anything else (a quoted string above all)
		// would go into the record unhashed.
		if x == "" || (x[0] != '-' && (x[0] < '0' || x[0] > '9')) || !json.Valid([]byte(x)) {
			return nil, errBadNumber
		}
		return append(dst, x...), nil
	case map[string]any:
		keys := sortedKeys(x)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = hs.appendValue(dst, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = hs.appendValue(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]string:
		return appendStringMap(dst, x, hs.appendHashed), nil
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = hs.appendHashed(dst, e)
		}
		return append(dst, ']'), nil
	}
	// Everything else (floats, structs, RawMessage, []byte, time.Time,
	// typed maps) goes the general way: its JSON form, HMAC'd.
	h, err := hs.value(v, depth)
	if err != nil {
		return nil, err
	}
	b, err := marshalCompact(h)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

var errBadNumber = jsonError("invalid number in data")

type jsonError string

func (e jsonError) Error() string { return string(e) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendHashed appends the quoted HMAC of v (plain ASCII, no escaping).
func (hs *hasher) appendHashed(dst []byte, v string) []byte {
	dst = append(dst, '"')
	dst = append(dst, hs.str(v)...)
	return append(dst, '"')
}

// appendString appends s as a JSON string the way encoding/json writes it
// with HTML escaping off: invalid UTF-8 becomes U+FFFD, control
// characters and U+2028/U+2029 are escaped.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendWire appends w as encoding/json would marshal it (HTML escaping
// off), field by field, without reflection.
func appendWire(dst []byte, w *wireEntry) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendString(dst, w.Time)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, w.Type)
	if w.Auth != nil {
		dst = append(dst, `,"auth":`...)
		dst = appendAuth(dst, w.Auth)
	}
	if r := w.Request; r != nil {
		dst = append(dst, `,"request":{`...)
		first := true
		field := func(name, v string) {
			if v == "" {
				return
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, `":`...)
			dst = appendString(dst, v)
		}
		field("id", r.ID)
		field("operation", r.Operation)
		field("mount_type", r.MountType)
		field("mount_accessor", r.MountAccessor)
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `"namespace":{"id":`...)
		dst = appendString(dst, r.Namespace.ID)
		dst = append(dst, '}')
		field("path", r.Path)
		if len(r.Data) > 0 {
			dst = append(dst, `,"data":`...)
			dst = append(dst, r.Data...)
		}
		field("remote_address", r.RemoteAddress)
		dst = append(dst, '}')
	}
	if r := w.Response; r != nil {
		dst = append(dst, `,"response":{`...)
		first := true
		sep := func() {
			if !first {
				dst = append(dst, ',')
			}
			first = false
		}
		if len(r.Data) > 0 {
			sep()
			dst = append(dst, `"data":`...)
			dst = append(dst, r.Data...)
		}
		if r.Auth != nil {
			sep()
			dst = append(dst, `"auth":`...)
			dst = appendAuth(dst, r.Auth)
		}
		if len(r.Warnings) > 0 {
			sep()
			dst = append(dst, `"warnings":`...)
			dst = appendStrings(dst, r.Warnings)
		}
		dst = append(dst, '}')
	}
	if w.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, w.Error)
	}
	return append(dst, '}')
}

func appendAuth(dst []byte, a *Auth) []byte {
	dst = append(dst, '{')
	first := true
	name := func(n string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, n...)
		dst = append(dst, `":`...)
	}
	str := func(n, v string) {
		if v != "" {
			name(n)
			dst = appendString(dst, v)
		}
	}
	str("client_token", a.ClientToken)
	str("accessor", a.Accessor)
	str("display_name", a.DisplayName)
	if len(a.Policies) > 0 {
		name("policies")
		dst = appendStrings(dst, a.Policies)
	}
	if len(a.TokenPolicies) > 0 {
		name("token_policies")
		dst = appendStrings(dst, a.TokenPolicies)
	}
	if len(a.Metadata) > 0 {
		name("metadata")
		dst = appendStringMap(dst, a.Metadata, appendString)
	}
	str("entity_id", a.EntityID)
	str("token_type", a.TokenType)
	if a.TokenTTL != 0 {
		name("token_ttl")
		dst = strconv.AppendInt(dst, a.TokenTTL, 10)
	}
	return append(dst, '}')
}

func appendStrings(dst []byte, l []string) []byte {
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendStringMap appends m as a JSON object with sorted keys, each value
// written by value (quoted as is, or HMAC'd).
func appendStringMap(dst []byte, m map[string]string, value func([]byte, string) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = value(dst, m[k])
	}
	return append(dst, '}')
}
