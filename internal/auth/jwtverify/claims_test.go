package jwtverify_test

import (
	"reflect"
	"testing"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "anything", true}, {"app-*", "app-web", true}, {"app-*", "app-", true}, {"app-*", "ap", false},
		{"*-prod", "team-prod", true}, {"*-prod", "team-dev", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false},
		{"exact", "exact", true}, {"exact", "exactly", false}, {"ab*ba", "aba", false},
	} {
		if got := jwtverify.Glob(c.pat, c.s); got != c.want {
			t.Errorf("jwtverify.Glob(%q, %q) = %v", c.pat, c.s, got)
		}
	}
}

func TestClaimPointer(t *testing.T) {
	t.Parallel()
	tok := &jwtverify.Token{Claims: map[string]any{
		"email":         "a@example.com",
		"kubernetes.io": map[string]any{"namespace": "eso"},
		"groups":        []any{"admins", "devs"},
		"a/b":           "slash",
		"null":          nil,
	}}
	for _, c := range []struct {
		name string
		want any
		ok   bool
	}{
		{"email", "a@example.com", true},
		{"/email", "a@example.com", true},
		{"/kubernetes.io/namespace", "eso", true},
		{"/groups/1", "devs", true},
		{"/groups", []any{"admins", "devs"}, true},
		{"/a~1b", "slash", true},
		{"/groups/2", nil, false},
		{"/groups/01", nil, false},
		{"/groups/x", nil, false},
		{"/email/x", nil, false},
		{"missing", nil, false},
		{"null", nil, false},
	} {
		got, ok := tok.Claim(c.name)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Claim(%q) = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
