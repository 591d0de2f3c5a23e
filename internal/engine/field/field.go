// Package field decodes the request parameters of coffer's secrets
// engines the way Vault's engines accept them.
//
// Vault clients are loose about types: the vault CLI sends every value as
// a string, the Go client sends numbers as JSON numbers, and either may
// put a parameter in the query string instead of the body. A Set takes
// the top-level fields of a JSON body, with query parameters filling in
// names the body does not set, and every getter accepts a value in any of
// those spellings:
//
//	in, err := field.Decode(r)
//	if err != nil { return nil, err }          // 400: not a JSON object
//	n, ok, err := in.Int("max_versions")       // ok is false when absent
//	...
//	resp.Warnings = in.Warnings(r)             // names nobody asked for
//
// A JSON null counts as absent. A value of the wrong type is a 400 error
// naming the field in Vault's words ("error converting input for field
// ..."), which clients match on. Unlike Vault's framework, a Set never
// fails on unknown names: like Vault it answers with the warning
// "Endpoint ignored these unrecognized parameters: [...]".
//
// Lists of objects (transit's batch_input) come back as Sets of their
// own, so one item is read exactly like a whole request.
package field

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// Set is a JSON object of request parameters: a request body, or one item
// of a list of objects. It remembers which names were asked for.
type Set struct {
	fields map[string]json.RawMessage
	used   map[string]bool // names a getter asked for
}

// Decode reads r's body (a JSON object, or empty) and query.
func Decode(r *core.Request) (*Set, error) {
	s := &Set{fields: map[string]json.RawMessage{}, used: map[string]bool{}}
	if err := r.Decode(&s.fields); err != nil {
		return nil, err
	}
	if s.fields == nil { // the body was JSON null
		s.fields = map[string]json.RawMessage{}
	}
	for name, vals := range r.Query {
		if _, ok := s.fields[name]; ok || len(vals) == 0 {
			continue
		}
		raw, _ := json.Marshal(vals[0])
		s.fields[name] = raw
	}
	return s, nil
}

// Raw returns a field's JSON; a JSON null counts as absent.
func (s *Set) Raw(name string) (json.RawMessage, bool) {
	s.used[name] = true
	v, ok := s.fields[name]
	if !ok || IsNull(v) {
		return nil, false
	}
	return v, true
}

// Has reports whether a field is present and not null.
func (s *Set) Has(name string) bool {
	_, ok := s.Raw(name)
	return ok
}

// Null reports whether a field is present with the value null (a PATCH
// that resets it).
func (s *Set) Null(name string) bool {
	s.used[name] = true
	v, ok := s.fields[name]
	return ok && IsNull(v)
}

// Ignore marks fields as known without reading them, so Warnings does
// not name them.
func (s *Set) Ignore(names ...string) {
	for _, n := range names {
		s.used[n] = true
	}
}

// Warnings names the body fields no getter asked for, sorted, as Vault's
// "ignored these unrecognized parameters" warning; nil when there are
// none. Query parameters are never reported.
func (s *Set) Warnings(r *core.Request) []string {
	var names []string
	for name := range s.fields {
		if !s.used[name] && !r.Query.Has(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return []string{fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", names)}
}

// IsNull reports whether raw is JSON null (or nothing).
func IsNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// ConvertError is the 400 error of a field with a value of the wrong type
// or form, in Vault's words.
func ConvertError(field, format string, args ...any) error {
	return core.BadRequest("error converting input for field %q: %s", field, fmt.Sprintf(format, args...))
}

// String returns a string field. Numbers and booleans are taken as their
// JSON text; an object or array is an error.
func (s *Set) String(name string) (string, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return "", false, nil
	}
	if str, ok := jsonString(raw); ok {
		return str, true, nil
	}
	switch t := jsonGoType(raw); t {
	case "json.Number", "bool":
		return string(bytes.TrimSpace(raw)), true, nil
	default:
		return "", true, ConvertError(name, "'' expected type 'string', got unconvertible type '%s'", t)
	}
}

// Int returns an integer field given as a JSON number or a string.
func (s *Set) Int(name string) (int64, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return 0, false, nil
	}
	n, err := ParseInt(raw)
	if err != nil {
		return 0, true, ConvertError(name, "%v", err)
	}
	return n, true, nil
}

// ParseInt parses an integer given as a JSON number or a string.
func ParseInt(raw json.RawMessage) (int64, error) {
	text := string(bytes.TrimSpace(raw))
	if s, ok := jsonString(raw); ok {
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s as an integer", Quote(text))
	}
	return n, nil
}

// Bool returns a boolean field given as true/false, a string or 0/1.
func (s *Set) Bool(name string) (bool, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return false, false, nil
	}
	text := string(bytes.TrimSpace(raw))
	if s, ok := jsonString(raw); ok {
		text = strings.TrimSpace(s)
	}
	b, err := strconv.ParseBool(text)
	if err != nil {
		return false, true, ConvertError(name, "cannot parse %s as a boolean", Quote(text))
	}
	return b, true, nil
}

// Duration returns a duration field: a number of seconds, or a string
// that is a number of seconds ("3600"), a Go duration ("768h", "1h30m")
// or a number of days ("30d"), as Vault's TypeDurationSecond accepts.
func (s *Set) Duration(name string) (time.Duration, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return 0, false, nil
	}
	d, err := ParseDuration(raw)
	if err != nil {
		return 0, true, ConvertError(name, "%v", err)
	}
	return d, true, nil
}

// ParseDuration parses a duration as Set.Duration accepts it. The empty
// string is zero.
func ParseDuration(raw json.RawMessage) (time.Duration, error) {
	s, isString := jsonString(raw)
	if !isString {
		s = string(bytes.TrimSpace(raw))
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return seconds(n, s)
	}
	if !isString {
		// A JSON number with a fraction or exponent: whole seconds only.
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
			return seconds(int64(f), s)
		}
		return 0, fmt.Errorf("cannot parse %s as a duration: use whole seconds or a string such as \"768h\"", Quote(s))
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseInt(days, 10, 64); err == nil {
			if n > maxDurationSeconds/86400 || n < -maxDurationSeconds/86400 {
				return 0, fmt.Errorf("duration %s is out of range", Quote(s))
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s as a duration: use seconds or a string such as \"768h\"", Quote(s))
	}
	return d, nil
}

const maxDurationSeconds = int64(1<<63-1) / int64(time.Second)

func seconds(n int64, text string) (time.Duration, error) {
	if n > maxDurationSeconds || n < -maxDurationSeconds {
		return 0, fmt.Errorf("duration %s is out of range", Quote(text))
	}
	return time.Duration(n) * time.Second, nil
}

// Object returns a field that must be a JSON object, numbers kept as
// json.Number. A value of another type gets Vault's mapstructure wording.
func (s *Set) Object(name string) (map[string]any, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return nil, false, nil
	}
	m, err := DecodeObject(raw)
	if err != nil {
		return nil, true, ConvertError(name, "'' expected type 'map[string]interface {}', got unconvertible type '%s'", jsonGoType(raw))
	}
	return m, true, nil
}

// DecodeObject decodes a JSON object keeping numbers as json.Number, so
// they are stored and returned with the digits the client sent.
func DecodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}

// jsonGoType names the Go type Vault's decoder gives a JSON value.
func jsonGoType(raw json.RawMessage) string {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 {
		return "invalid"
	}
	switch v[0] {
	case '"':
		return "string"
	case '[':
		return "[]interface {}"
	case 't', 'f':
		return "bool"
	case '{':
		return "map[string]interface {}"
	}
	return "json.Number"
}

// Versions returns a list of version numbers given as a JSON array of
// numbers or strings, a comma-separated string ("1,2") or one number, as
// Vault's TypeCommaIntSlice accepts.
func (s *Set) Versions(name string) ([]uint64, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if str, ok := jsonString(raw); ok {
		for part := range strings.SplitSeq(str, ",") {
			if part = strings.TrimSpace(part); part != "" {
				q, _ := json.Marshal(part)
				items = append(items, q)
			}
		}
	} else if err := json.Unmarshal(raw, &items); err != nil {
		items = []json.RawMessage{raw}
	}
	out := make([]uint64, 0, len(items))
	for _, it := range items {
		n, err := ParseInt(it)
		if err != nil {
			return nil, ConvertError(name, "%v", err)
		}
		if n < 0 {
			return nil, ConvertError(name, "version %d is negative", n)
		}
		out = append(out, uint64(n))
	}
	return out, nil
}

// Base64 returns a field holding standard base64 (with padding), decoded.
// A value that is not a string, or not base64, is a 400 error in Vault's
// words ("failed to base64-decode <name>"). Callers bound the size of
// what they accept before asking (see EncodedLen).
func (s *Set) Base64(name string) ([]byte, bool, error) {
	str, ok, err := s.String(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		return nil, true, core.BadRequest("failed to base64-decode %s: %v", name, err)
	}
	return b, true, nil
}

// EncodedLen returns the length of a string field as sent (0 when absent
// or not a string), so a caller can refuse oversized base64 before
// decoding it.
func (s *Set) EncodedLen(name string) int {
	v, ok := s.fields[name]
	if !ok {
		return 0
	}
	return len(bytes.TrimSpace(v))
}

// Objects returns a field that must be a JSON array of objects, each as a
// Set of its own. An empty array is returned as an empty, non-nil slice.
func (s *Set) Objects(name string) ([]*Set, bool, error) {
	raw, ok := s.Raw(name)
	if !ok {
		return nil, false, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, true, ConvertError(name, "'' expected type '[]interface {}', got unconvertible type '%s'", jsonGoType(raw))
	}
	out := make([]*Set, len(list))
	for i, it := range list {
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(it, &m); err != nil || m == nil {
			return nil, true, ConvertError(name, "item %d: '' expected type 'map[string]interface {}', got unconvertible type '%s'", i, jsonGoType(it))
		}
		out[i] = &Set{fields: m, used: map[string]bool{}}
	}
	return out, true, nil
}

func jsonString(raw json.RawMessage) (string, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	// Fast path for the common string without escapes (base64 payloads
	// of a megabyte are): the body was validated when it was decoded.
	if inner := v[1 : len(v)-1]; v[len(v)-1] == '"' && plain(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// Quote quotes a user value for an error message, cut to a length that
// keeps the message readable.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// plain reports whether b needs no JSON unescaping: no backslash, quote,
// control character or non-ASCII byte (which json.Unmarshal would check
// for valid UTF-8).
func plain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}
