package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	hclstrconv "github.com/hashicorp/hcl/hcl/strconv"
	"github.com/hashicorp/hcl/hcl/token"
)

// ErrInvalidPolicy is matched (errors.Is) by every error Parse returns.
var ErrInvalidPolicy = errors.New("invalid policy")

// ParseError says what is wrong with a policy document. Its text is the one
// Vault puts after "failed to parse policy: " on the wire.
type ParseError struct {
	// Path is the rule's path as written, or "" for a problem outside any
	// rule (syntax errors, unknown top-level keys).
	Path string
	// Msg says what is wrong.
	Msg string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return fmt.Sprintf("path %q: %s", e.Path, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (e *ParseError) Is(target error) bool { return target == ErrInvalidPolicy }

// Policy is a parsed ACL policy: a name and its rules, in document order.
type Policy struct {
	Name  string
	Rules []Rule
}

// Rule is one path stanza of a policy.
type Rule struct {
	// Path is the path pattern as written, less the one leading "/" Parse
	// strips (as Vault does): it may end in "*", contain "+" segments and
	// identity templates.
	Path string
	// Capabilities are distinct and in canonical order (the order of the
	// Capability constants). A rule that denies has exactly [Deny]; a rule
	// may have none, in which case it matches and grants nothing.
	Capabilities []Capability
	// AllowedParameters and DeniedParameters map a lowercased request
	// parameter name, or "*", to the values allowed or denied; an empty
	// list means any value. Values are strings (which may start or end
	// with a "*" glob), int64, float64 or bool. nil means no constraint.
	AllowedParameters map[string][]any
	DeniedParameters  map[string][]any
	// RequiredParameters must all be present in the request.
	RequiredParameters []string
	// MinWrappingTTL and MaxWrappingTTL, when set, require the response to
	// be wrapped with a TTL in range.
	MinWrappingTTL time.Duration
	MaxWrappingTTL time.Duration
	// Comment is Vault's free-text "comment" key.
	Comment string
}

// Templated reports whether any rule path holds an identity template, so
// the policy's effect depends on the caller.
func (p *Policy) Templated() bool {
	for _, r := range p.Rules {
		if strings.Contains(r.Path, "{{") {
			return true
		}
	}
	return false
}

// Parse parses a policy document, in Vault's HCL form or its JSON form,
// and names it name. Every error matches ErrInvalidPolicy and is a
// *ParseError.
func Parse(name, text string) (*Policy, error) {
	root, err := parseHCL(text)
	if err != nil {
		return nil, &ParseError{Msg: err.Error()}
	}
	if err := checkJSON(text); err != nil {
		return nil, &ParseError{Msg: err.Error()}
	}
	list, ok := root.Node.(*ast.ObjectList)
	if !ok {
		return nil, &ParseError{Msg: "does not contain a root object"}
	}
	p := &Policy{Name: name}
	for _, item := range list.Items {
		key, err := keyText(item)
		if err != nil {
			return nil, &ParseError{Msg: err.Error()}
		}
		switch key {
		case "name":
			// Vault accepts a name inside the document; the name given to
			// Parse (the one in the API path) is the one that counts.
			if _, err := stringValue(nest(item)); err != nil {
				return nil, &ParseError{Msg: "name: " + err.Error()}
			}
		case "path":
			rules, err := parsePathItem(item)
			if err != nil {
				return nil, err
			}
			p.Rules = append(p.Rules, rules...)
		default:
			return nil, &ParseError{Msg: fmt.Sprintf("invalid key %q%s", key, onLine(item.Keys[0]))}
		}
	}
	return p, nil
}

// parseHCL runs the HCL parser, turning a panic inside it into an error:
// a policy is untrusted input and the parser is not ours.
func parseHCL(text string) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("unparseable policy document (%v)", r)
		}
	}()
	return hcl.Parse(text)
}

// checkJSON re-reads a JSON document (one HCL read as JSON: its first
// non-space character is "{") with encoding/json, because the HCL JSON
// reader silently drops true, false and nested lists inside lists, which
// would turn ["x", true] into ["x"] and [true] into [] (any value).
func checkJSON(text string) error {
	first := strings.TrimLeftFunc(text, unicode.IsSpace)
	if !strings.HasPrefix(first, "{") {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid JSON policy: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON policy: unexpected text after the top-level object")
	}
	return checkJSONLists(v)
}

func checkJSONLists(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err := checkJSONLists(v[k]); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			switch e.(type) {
			case bool:
				return errors.New("true and false inside a list are not supported in JSON policies; write the policy in HCL")
			case []any:
				return errors.New("nested lists are not supported in policies")
			}
			if err := checkJSONLists(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// nest returns the value of item with its first key removed: an item with
// keys [a b c] and value v stands for a = { b = { c = v } }, which is how
// HCL block labels and flattened JSON objects both arrive.
func nest(item *ast.ObjectItem) ast.Node {
	if len(item.Keys) == 1 {
		return item.Val
	}
	inner := &ast.ObjectItem{Keys: item.Keys[1:], Val: item.Val}
	return &ast.ObjectType{List: &ast.ObjectList{Items: []*ast.ObjectItem{inner}}}
}

func parsePathItem(item *ast.ObjectItem) ([]Rule, error) {
	k := item.Keys[0]
	if len(item.Keys) == 1 && !k.Token.JSON {
		if _, ok := item.Val.(*ast.ObjectType); ok {
			return nil, &ParseError{Msg: fmt.Sprintf(`path block%s has no path: write path "secret/data/app/*" { capabilities = ["read"] }`, onLine(k))}
		}
	}
	if len(item.Keys) > 2 && !k.Token.JSON {
		return nil, &ParseError{Msg: fmt.Sprintf("path block%s has %d labels; it takes exactly one, the path", onLine(k), len(item.Keys)-1)}
	}
	obj, ok := nest(item).(*ast.ObjectType)
	if !ok {
		return nil, &ParseError{Msg: fmt.Sprintf(`path%s must be a block: path "secret/data/app/*" { capabilities = ["read"] }`, onLine(k))}
	}
	var rules []Rule
	for _, it := range obj.List.Items {
		path, err := keyText(it)
		if err != nil {
			return nil, &ParseError{Msg: err.Error()}
		}
		r, err := parseRule(path, nest(it))
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(written string, val ast.Node) (Rule, error) {
	fail := func(format string, args ...any) (Rule, error) {
		msg := fmt.Sprintf(format, args...)
		if written == "" {
			msg = `path "": ` + msg // Error() only prefixes non-empty paths
		}
		return Rule{}, &ParseError{Path: written, Msg: msg}
	}
	path, err := normalizePath(written)
	if err != nil {
		return fail("%s", err)
	}
	obj, ok := val.(*ast.ObjectType)
	if !ok {
		return fail("expected a block of rules, like { capabilities = [\"read\"] }")
	}
	r := Rule{Path: path}
	var caps capSet
	seen := map[string]bool{}
	for _, item := range obj.List.Items {
		key, err := keyText(item)
		if err != nil {
			return fail("%s", err)
		}
		if seen[key] {
			return fail("duplicate key %q%s", key, onLine(item.Keys[0]))
		}
		seen[key] = true
		if err := r.set(key, nest(item), &caps); err != nil {
			if errors.Is(err, errUnknownKey) {
				return fail("invalid key %q%s", key, onLine(item.Keys[0]))
			}
			return fail("%s", err)
		}
	}
	if r.MinWrappingTTL != 0 && r.MaxWrappingTTL != 0 && r.MaxWrappingTTL < r.MinWrappingTTL {
		return fail("max_wrapping_ttl cannot be less than min_wrapping_ttl")
	}
	if caps.has(Deny) {
		// As in Vault, deny discards everything else the rule says.
		return Rule{Path: path, Capabilities: []Capability{Deny}, Comment: r.Comment}, nil
	}
	r.Capabilities = caps.list()
	return r, nil
}

var errUnknownKey = errors.New("unknown key")

// set applies one key of a rule block; capabilities (from capabilities and
// policy) collect in caps.
func (r *Rule) set(key string, v ast.Node, caps *capSet) error {
	var err error
	switch key {
	case "capabilities":
		names, err := stringList(v)
		if err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
		for _, n := range names {
			c, err := ParseCapability(n)
			if err != nil {
				return err
			}
			caps.add(c)
		}
	case "policy":
		s, err := stringValue(v)
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		legacy, ok := legacyCapabilities(s)
		if !ok {
			return fmt.Errorf("invalid policy %q", s)
		}
		for _, c := range legacy {
			caps.add(c)
		}
	case "comment":
		if r.Comment, err = stringValue(v); err != nil {
			return fmt.Errorf("comment: %w", err)
		}
	case "allowed_parameters":
		if r.AllowedParameters, err = paramMap(v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	case "denied_parameters":
		if r.DeniedParameters, err = paramMap(v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	case "required_parameters":
		names, err := stringList(v)
		if err != nil {
			return fmt.Errorf("required_parameters: %w", err)
		}
		for _, n := range names {
			if strings.Contains(n, "*") {
				return fmt.Errorf("required_parameters: parameter key %q: wildcard is not permitted here", n)
			}
		}
		if len(names) > 0 {
			r.RequiredParameters = names
		}
	case "min_wrapping_ttl":
		if r.MinWrappingTTL, err = durationValue(v); err != nil {
			return fmt.Errorf("error parsing %s: %w", key, err)
		}
	case "max_wrapping_ttl":
		if r.MaxWrappingTTL, err = durationValue(v); err != nil {
			return fmt.Errorf("error parsing %s: %w", key, err)
		}
	case "mfa_methods", "control_group", "subscribe_event_types":
		return fmt.Errorf("%s is not supported by coffer; remove it from the policy", key)
	default:
		return errUnknownKey
	}
	return nil
}

// legacyCapabilities maps Vault's pre-0.5 `policy = "..."` shorthand to
// capabilities, exactly as Vault does (write and sudo do not include patch).
func legacyCapabilities(policy string) ([]Capability, bool) {
	switch policy {
	case "deny":
		return []Capability{Deny}, true
	case "read":
		return []Capability{Read, List}, true
	case "write":
		return []Capability{Create, Read, Update, Delete, List}, true
	case "sudo":
		return []Capability{Create, Read, Update, Delete, List, Sudo}, true
	}
	return nil, false
}

// normalizePath strips one leading "/" (as Vault does) and checks the
// glob and template syntax.
func normalizePath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if err := checkPath(p); err != nil {
		return "", err
	}
	return p, nil
}

// checkPath reports what is wrong with a rule path, or nil.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("path contains a NUL byte")
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	}
	skel, err := checkTemplates(p)
	if err != nil {
		return err
	}
	if strings.Contains(skel, "+*") {
		return errors.New("invalid use of wildcards ('+*' is forbidden)")
	}
	if i := strings.IndexByte(skel, '*'); i >= 0 && i != len(skel)-1 {
		return errors.New(`invalid use of wildcards ("*" is only allowed as the last character)`)
	}
	for seg := range strings.SplitSeq(skel, "/") {
		if strings.Contains(seg, "+") && seg != "+" {
			return errors.New(`invalid use of wildcards ("+" must be a whole path segment, like "secret/+/config")`)
		}
	}
	return nil
}

// keyText returns the text of an item's first key (an identifier or a
// string).
func keyText(item *ast.ObjectItem) (string, error) {
	if len(item.Keys) == 0 {
		return "", errors.New("object item without a key")
	}
	k := item.Keys[0]
	if k.Token.Type == token.IDENT {
		return k.Token.Text, nil
	}
	return stringToken(k.Token)
}

// stringToken decodes a STRING token.
func stringToken(t token.Token) (string, error) {
	switch t.Type {
	case token.STRING:
	case token.HEREDOC:
		return "", errors.New("heredoc strings are not supported in policies")
	default:
		return "", fmt.Errorf("expected a string, got %s", strings.ToLower(t.Type.String()))
	}
	if t.Text == "" { // JSON null
		return "", errors.New("expected a string, got null")
	}
	unquote := hclstrconv.Unquote
	if t.JSON {
		unquote = strconv.Unquote
	}
	s, err := unquote(t.Text)
	if err != nil {
		return "", fmt.Errorf("invalid string %s", t.Text)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("string %s is not valid UTF-8", t.Text)
	}
	return s, nil
}

func stringValue(n ast.Node) (string, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return "", fmt.Errorf("expected a string, got %s", nodeKind(n))
	}
	return stringToken(lit.Token)
}

// listElems returns the elements of a list; a single value is accepted as
// a one-element list, as Vault's decoder does.
func listElems(n ast.Node) ([]ast.Node, error) {
	switch n := n.(type) {
	case *ast.ListType:
		return n.List, nil
	case *ast.LiteralType:
		return []ast.Node{n}, nil
	}
	return nil, fmt.Errorf("expected a list, got %s", nodeKind(n))
}

func stringList(n ast.Node) ([]string, error) {
	elems, err := listElems(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, err := stringValue(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// paramMap decodes allowed_parameters or denied_parameters. Keys are
// lowercased, as Vault does; an empty map decodes to nil.
func paramMap(n ast.Node) (map[string][]any, error) {
	obj, ok := n.(*ast.ObjectType)
	if !ok {
		return nil, fmt.Errorf("expected a map of parameter names to lists of values, got %s", nodeKind(n))
	}
	var m map[string][]any
	for _, item := range obj.List.Items {
		raw, err := keyText(item)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(raw)
		switch {
		case strings.HasPrefix(key, "/"):
			return nil, fmt.Errorf("parameter key %q: JSON-pointer parameter keys are not supported by coffer", raw)
		case strings.Contains(key, "*") && key != "*":
			return nil, fmt.Errorf("parameter key %q cannot contain non-tail wildcards", raw)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("duplicate parameter key %q", raw)
		}
		elems, err := listElems(nest(item))
		if err != nil {
			return nil, fmt.Errorf("parameter key %q: %s", raw, err)
		}
		vals := make([]any, 0, len(elems))
		for _, e := range elems {
			v, err := literalValue(e)
			if err != nil {
				return nil, fmt.Errorf("parameter key %q: %s", raw, err)
			}
			vals = append(vals, v)
		}
		if m == nil {
			m = map[string][]any{}
		}
		m[key] = vals
	}
	return m, nil
}

// literalValue decodes a parameter value: string, int64, float64 or bool.
func literalValue(n ast.Node) (any, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return nil, fmt.Errorf("values must be strings, numbers or booleans, got %s", nodeKind(n))
	}
	t := lit.Token
	switch t.Type {
	case token.NUMBER:
		v, err := strconv.ParseInt(t.Text, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid number %s", t.Text)
		}
		return v, nil
	case token.FLOAT:
		v, err := strconv.ParseFloat(t.Text, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("invalid number %s", t.Text)
		}
		return v, nil
	case token.BOOL:
		return t.Text == "true", nil
	}
	return stringToken(t)
}

// durationValue decodes a wrapping TTL the way Vault's ParseDurationSecond
// does: an integer (seconds), a string of digits (seconds), "<n>d" (days)
// or a Go duration ("90s", "1h30m").
func durationValue(n ast.Node) (time.Duration, error) {
	v, err := literalValue(n)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	switch v := v.(type) {
	case int64:
		d, err = seconds(v)
	case string:
		d, err = parseDuration(v)
	default:
		return 0, fmt.Errorf("expected a duration like \"300s\" or a number of seconds, got %v", v)
	}
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("duration must not be negative")
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return seconds(v)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseInt(days, 10, 64)
		if err != nil || v > math.MaxInt64/int64(24*time.Hour) || v < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(v) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func seconds(v int64) (time.Duration, error) {
	if v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
		return 0, fmt.Errorf("duration of %d seconds is out of range", v)
	}
	return time.Duration(v) * time.Second, nil
}

// onLine returns " on line N" for k, or "" when its position is unknown
// (keys from JSON documents carry none).
func onLine(k *ast.ObjectKey) string {
	if line := k.Pos().Line; line > 0 {
		return fmt.Sprintf(" on line %d", line)
	}
	return ""
}

func nodeKind(n ast.Node) string {
	switch n := n.(type) {
	case *ast.ObjectType:
		return "a block"
	case *ast.ListType:
		return "a list"
	case *ast.LiteralType:
		if n.Token.Type == token.STRING && n.Token.Text == "" {
			return "null"
		}
		return strings.ToLower(n.Token.Type.String())
	}
	return fmt.Sprintf("%T", n)
}
