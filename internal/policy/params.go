package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// checkParams applies required, denied and allowed parameters to a
// request's parameters, in Vault's order. It returns why the request is
// refused, or "". Reasons name parameters, never their values.
func (p *perm) checkParams(params map[string]any) string {
	for _, name := range p.required {
		if _, ok := params[strings.ToLower(name)]; !ok {
			return fmt.Sprintf("missing required parameter %q", name)
		}
	}
	if len(params) == 0 {
		return ""
	}
	if len(p.denied) > 0 {
		if _, ok := p.denied["*"]; ok {
			return "all parameters are denied"
		}
		for name, v := range params {
			if list, ok := p.denied[strings.ToLower(name)]; ok && deniedValue(v, list) {
				return fmt.Sprintf("parameter %q is denied", name)
			}
		}
	}
	if len(p.allowed) == 0 {
		return ""
	}
	_, allowAll := p.allowed["*"]
	if allowAll && len(p.allowed) == 1 {
		return ""
	}
	for name, v := range params {
		list, ok := p.allowed[strings.ToLower(name)]
		if !ok && !allowAll {
			return fmt.Sprintf("parameter %q is not allowed", name)
		}
		if ok && !allowedValue(v, list) {
			return fmt.Sprintf("this value of parameter %q is not allowed", name)
		}
	}
	return ""
}

// allowedValue reports whether v passes an allowed-values list. As in
// Vault, an empty list allows anything, a list value passes when every
// element does, and a comma-separated string passes when every element
// does.
func allowedValue(v any, list []any) bool {
	if len(list) == 0 || inList(v, list) {
		return true
	}
	elems, ok := elements(v)
	if !ok {
		return false
	}
	for _, e := range elems {
		if !inList(e, list) {
			return false
		}
	}
	return true
}

// deniedValue reports whether v hits a denied-values list: an empty list
// denies anything; a list or comma-separated string is denied when any
// element is.
func deniedValue(v any, list []any) bool {
	if len(list) == 0 || inList(v, list) {
		return true
	}
	elems, _ := elements(v)
	for _, e := range elems {
		if inList(e, list) {
			return true
		}
	}
	return false
}

// elements splits a list value, or a string holding a comma, into its
// elements. Unlike Vault, a string without a comma (including "") is not
// split, so "" never passes an allowed list that does not contain it.
func elements(v any) ([]any, bool) {
	switch v := v.(type) {
	case []any:
		return v, true
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out, true
	case string:
		if !strings.Contains(v, ",") {
			return nil, false
		}
		parts := strings.Split(v, ",")
		out := make([]any, len(parts))
		for i, s := range parts {
			out[i] = strings.TrimSpace(s)
		}
		return out, true
	}
	return nil, false
}

func inList(v any, list []any) bool {
	for _, el := range list {
		if valueMatches(el, v) {
			return true
		}
	}
	return false
}

// valueMatches compares a policy value with a request value. Strings
// match with Vault's globs ("*x", "x*", "*x*"); numbers compare by value
// whatever their Go type (int, float64, json.Number, ...); nil matches
// nil.
func valueMatches(el, v any) bool {
	if el == nil || v == nil {
		return el == nil && v == nil
	}
	switch el := el.(type) {
	case string:
		s, ok := v.(string)
		return ok && globMatch(el, s)
	case bool:
		b, ok := v.(bool)
		return ok && b == el
	}
	x, ok1 := number(el)
	y, ok2 := number(v)
	return ok1 && ok2 && x == y
}

// globMatch is Vault's GlobbedStringsMatch: a leading and/or trailing "*"
// in pattern is a wildcard; a pattern shorter than two bytes must match
// exactly.
func globMatch(pattern, s string) bool {
	if len(pattern) < 2 {
		return pattern == s
	}
	pre := strings.HasPrefix(pattern, "*")
	suf := strings.HasSuffix(pattern, "*")
	switch {
	case pre && suf:
		return strings.Contains(s, pattern[1:len(pattern)-1])
	case pre:
		return strings.HasSuffix(s, pattern[1:])
	case suf:
		return strings.HasPrefix(s, pattern[:len(pattern)-1])
	}
	return pattern == s
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, !math.IsNaN(v)
	case float32:
		return float64(v), true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil
	}
	return 0, false
}
