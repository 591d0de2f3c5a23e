package jwtverify

import (
	"strconv"
	"strings"
)

// Claim returns a claim by name, or, when name starts with "/", by JSON
// pointer (RFC 6901) into nested objects and arrays: "/groups/0",
// "/kubernetes.io/namespace", "/a~1b" for the key "a/b".
func (t *Token) Claim(name string) (any, bool) {
	if !strings.HasPrefix(name, "/") {
		v, ok := t.Claims[name]
		return v, ok && v != nil
	}
	var cur any = t.Claims
	for _, tok := range strings.Split(name[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || (len(tok) > 1 && tok[0] == '0') {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

// Glob reports whether s matches pattern, where each "*" stands for any
// run of characters, possibly empty. There is no escape.
func Glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}
