package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendValue appends v with every string leaf HMAC'd, as JSON: what
// json.Marshal of hs.value(v) would give, but written directly: the
// common shapes (maps, slices, strings, numbers) are appended without
// building a copy or going through reflection, which keeps auditing cheap
// on the request path. On error it returns nil.
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
		var buf [16]string
		keys := sortedKeys(buf[:0], x)
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

// sortedKeys returns m's keys in order, in buf when it has room.
func sortedKeys(buf []string, m map[string]any) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendHashed appends the quoted HMAC of v (plain ASCII, no escaping).
func (hs *hasher) appendHashed(dst []byte, v string) []byte {
	dst = append(dst, '"')
	dst = hs.appendHMAC(dst, v)
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

// entryWriter renders the entries of one write into one buffer. A
// request's response entry repeats its request entry's auth and request
// objects: when an entry shares the *Auth or *Request of the one written
// before it, their bytes are copied instead of rendered (and HMAC'd)
// again.
type entryWriter struct {
	hs *hasher
	// The previous entry's auth and request, and where their objects are
	// in the buffer.
	auth          *Auth
	req           *Request
	authAt, reqAt [2]int
}

// appendEntry appends e's record body: a JSON object without the chain
// fields, as encoding/json would marshal its wire form (HTML escaping
// off), written field by field without reflection. On error dst is
// returned cut back to where it was.
func (w *entryWriter) appendEntry(dst []byte, e *Entry) ([]byte, error) {
	mark := len(dst)
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `","type":`...)
	dst = appendString(dst, e.Type)
	if a := e.Auth; a != nil {
		dst = append(dst, `,"auth":`...)
		if a == w.auth {
			dst = append(dst, dst[w.authAt[0]:w.authAt[1]]...)
		} else {
			at := len(dst)
			dst = appendAuth(dst, a, w.hs)
			w.auth, w.authAt = a, [2]int{at, len(dst)}
		}
	}
	if r := e.Request; r != nil {
		dst = append(dst, `,"request":`...)
		if r == w.req {
			dst = append(dst, dst[w.reqAt[0]:w.reqAt[1]]...)
		} else {
			at := len(dst)
			var err error
			if dst, err = w.appendRequest(dst, r); err != nil {
				return dst[:mark], fmt.Errorf("request data: %w", err)
			}
			w.req, w.reqAt = r, [2]int{at, len(dst)}
		}
	}
	if r := e.Response; r != nil {
		dst = append(dst, `,"response":{`...)
		at := len(dst)
		var err error
		if dst, err = w.appendData(dst, at, "data", r.Data); err != nil {
			return dst[:mark], fmt.Errorf("response data: %w", err)
		}
		if r.Auth != nil {
			dst = appendAuth(appendName(dst, at, "auth"), r.Auth, w.hs)
		}
		if len(r.Warnings) > 0 {
			dst = appendStrings(appendName(dst, at, "warnings"), r.Warnings)
		}
		dst = append(dst, '}')
	}
	if e.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, e.Error)
	}
	return append(dst, '}'), nil
}

// sep appends a comma unless dst ends at the start of an object's fields.
func sep(dst []byte, start int) []byte {
	if len(dst) > start {
		return append(dst, ',')
	}
	return dst
}

// appendName appends "name": (after a comma unless it is the first field
// of the object whose fields start at start).
func appendName(dst []byte, start int, name string) []byte {
	dst = sep(dst, start)
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, `":`...)
}

// appendField appends "name":v unless v is empty.
func appendField(dst []byte, start int, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendString(appendName(dst, start, name), v)
}

// appendData appends "name": and v HMAC'd; an absent value, or one that
// renders as null, is left out.
func (w *entryWriter) appendData(dst []byte, objStart int, name string, v any) ([]byte, error) {
	if v == nil {
		return dst, nil
	}
	start := len(dst)
	dst = appendName(dst, objStart, name)
	at := len(dst)
	out, err := w.hs.appendValue(dst, v, 0)
	if err != nil {
		return dst[:start], err
	}
	if string(out[at:]) == "null" {
		return out[:start], nil
	}
	return out, nil
}

func (w *entryWriter) appendRequest(dst []byte, r *Request) ([]byte, error) {
	dst = append(dst, '{')
	at := len(dst)
	dst = appendField(dst, at, "id", r.ID)
	dst = appendField(dst, at, "operation", r.Operation)
	dst = appendField(dst, at, "mount_type", r.MountType)
	dst = appendField(dst, at, "mount_accessor", r.MountAccessor)
	dst = append(appendName(dst, at, "namespace"), `{"id":"root"}`...)
	dst = appendField(dst, at, "path", r.Path)
	var err error
	if dst, err = w.appendData(dst, at, "data", r.Data); err != nil {
		return dst, err
	}
	dst = appendField(dst, at, "remote_address", r.RemoteAddress)
	return append(dst, '}'), nil
}

// appendAuth appends a, its token and accessor HMAC'd by hs.
func appendAuth(dst []byte, a *Auth, hs *hasher) []byte {
	dst = append(dst, '{')
	at := len(dst)
	dst = hs.appendAuthHMACs(dst, at, a)
	dst = appendField(dst, at, "display_name", a.DisplayName)
	if len(a.Policies) > 0 {
		dst = appendName(dst, at, "policies")
		dst = appendStrings(dst, a.Policies)
	}
	if len(a.TokenPolicies) > 0 {
		dst = appendName(dst, at, "token_policies")
		dst = appendStrings(dst, a.TokenPolicies)
	}
	if len(a.Metadata) > 0 {
		dst = appendName(dst, at, "metadata")
		dst = appendStringMap(dst, a.Metadata, appendString)
	}
	dst = appendField(dst, at, "entity_id", a.EntityID)
	dst = appendField(dst, at, "token_type", a.TokenType)
	if a.TokenTTL != 0 {
		dst = appendName(dst, at, "token_ttl")
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
