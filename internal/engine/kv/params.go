package kv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// params is a request's input: the top-level fields of the JSON body, with
// query parameters filling in fields the body does not set. Vault clients
// send numbers both as JSON numbers and as strings, so every getter accepts
// either; a wrong type is a 400 naming the field, in Vault's words.
type params struct {
	fields map[string]json.RawMessage
	used   map[string]bool // fields a handler asked for
}

// decodeParams reads r's body (a JSON object or empty) and query.
func decodeParams(r *core.Request) (*params, error) {
	p := &params{fields: map[string]json.RawMessage{}, used: map[string]bool{}}
	if err := r.Decode(&p.fields); err != nil {
		return nil, err
	}
	if p.fields == nil { // the body was JSON null
		p.fields = map[string]json.RawMessage{}
	}
	for name, vals := range r.Query {
		if _, ok := p.fields[name]; ok || len(vals) == 0 {
			continue
		}
		raw, _ := json.Marshal(vals[0])
		p.fields[name] = raw
	}
	return p, nil
}

// raw returns a field's JSON; a JSON null counts as absent.
func (p *params) raw(name string) (json.RawMessage, bool) {
	p.used[name] = true
	v, ok := p.fields[name]
	if !ok || isNull(v) {
		return nil, false
	}
	return v, true
}

// has reports whether a field is present and not null.
func (p *params) has(name string) bool {
	_, ok := p.raw(name)
	return ok
}

// unused names the body fields no handler asked for, sorted, for Vault's
// "ignored these unrecognized parameters" warning.
func (p *params) warnings(r *core.Request) []string {
	var names []string
	for name := range p.fields {
		if !p.used[name] && !r.Query.Has(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return []string{fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", names)}
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func convertError(field, format string, args ...any) error {
	return core.BadRequest("error converting input for field %q: %s", field, fmt.Sprintf(format, args...))
}

// int returns an integer field given as a JSON number or a string.
func (p *params) int(name string) (int64, bool, error) {
	raw, ok := p.raw(name)
	if !ok {
		return 0, false, nil
	}
	n, err := parseInt(raw)
	if err != nil {
		return 0, true, convertError(name, "%v", err)
	}
	return n, true, nil
}

func parseInt(raw json.RawMessage) (int64, error) {
	text := string(bytes.TrimSpace(raw))
	if s, ok := jsonString(raw); ok {
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s as an integer", quoteShort(text))
	}
	return n, nil
}

// bool returns a boolean field given as true/false, a string or 0/1.
func (p *params) bool(name string) (bool, bool, error) {
	raw, ok := p.raw(name)
	if !ok {
		return false, false, nil
	}
	text := string(bytes.TrimSpace(raw))
	if s, ok := jsonString(raw); ok {
		text = strings.TrimSpace(s)
	}
	b, err := strconv.ParseBool(text)
	if err != nil {
		return false, true, convertError(name, "cannot parse %s as a boolean", quoteShort(text))
	}
	return b, true, nil
}

// duration returns a duration field: a number of seconds, or a string
// that is a number of seconds ("3600"), a Go duration ("768h", "1h30m")
// or a number of days ("30d"), as Vault's TypeDurationSecond accepts.
func (p *params) duration(name string) (time.Duration, bool, error) {
	raw, ok := p.raw(name)
	if !ok {
		return 0, false, nil
	}
	d, err := parseDuration(raw)
	if err != nil {
		return 0, true, convertError(name, "%v", err)
	}
	return d, true, nil
}

func parseDuration(raw json.RawMessage) (time.Duration, error) {
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
		return 0, fmt.Errorf("cannot parse %s as a duration: use whole seconds or a string such as \"768h\"", quoteShort(s))
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseInt(days, 10, 64); err == nil {
			if n > maxDurationSeconds/86400 || n < -maxDurationSeconds/86400 {
				return 0, fmt.Errorf("duration %s is out of range", quoteShort(s))
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s as a duration: use seconds or a string such as \"768h\"", quoteShort(s))
	}
	return d, nil
}

const maxDurationSeconds = int64(1<<63-1) / int64(time.Second)

func seconds(n int64, text string) (time.Duration, error) {
	if n > maxDurationSeconds || n < -maxDurationSeconds {
		return 0, fmt.Errorf("duration %s is out of range", quoteShort(text))
	}
	return time.Duration(n) * time.Second, nil
}

// object returns a field that must be a JSON object. A value of another
// type gets Vault's mapstructure wording, which clients match on.
func (p *params) object(name string) (map[string]any, bool, error) {
	raw, ok := p.raw(name)
	if !ok {
		return nil, false, nil
	}
	m, err := decodeObject(raw)
	if err != nil {
		return nil, true, convertError(name, "'' expected type 'map[string]interface {}', got unconvertible type '%s'", jsonGoType(raw))
	}
	return m, true, nil
}

// decodeObject decodes a JSON object keeping numbers as json.Number, so
// they are stored and returned with the digits the client sent.
func decodeObject(raw []byte) (map[string]any, error) {
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

// versions returns a list of version numbers given as a JSON array of
// numbers or strings, a comma-separated string ("1,2") or one number, as
// Vault's TypeCommaIntSlice accepts.
func (p *params) versions(name string) ([]uint64, error) {
	raw, ok := p.raw(name)
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if s, ok := jsonString(raw); ok {
		for part := range strings.SplitSeq(s, ",") {
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
		n, err := parseInt(it)
		if err != nil {
			return nil, convertError(name, "%v", err)
		}
		if n < 0 {
			return nil, convertError(name, "version %d is negative", n)
		}
		out = append(out, uint64(n))
	}
	return out, nil
}

// str returns a string field; numbers and booleans are taken as text.
func (p *params) str(name string) string {
	raw, ok := p.raw(name)
	if !ok {
		return ""
	}
	if s, ok := jsonString(raw); ok {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func jsonString(raw json.RawMessage) (string, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// quoteShort quotes a user value for an error message, cut to a length
// that keeps the message readable.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
