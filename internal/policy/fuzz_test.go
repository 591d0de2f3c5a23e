package policy

import (
	"reflect"
	"testing"
)

// assertRoundTrip checks the formatting property: the canonical text of p
// parses back to an equal policy, and formatting that again changes
// nothing.
func assertRoundTrip(t *testing.T, p *Policy) {
	t.Helper()
	text := p.String()
	q, err := Parse(p.Name, text)
	if err != nil {
		t.Fatalf("canonical text does not parse: %v\n%s", err, text)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip changed the policy\nbefore: %#v\nafter:  %#v\ntext:\n%s", p, q, text)
	}
	if again := q.String(); again != text {
		t.Fatalf("formatting is not stable:\n%s\nthen:\n%s", text, again)
	}
}

// FuzzParse: Parse never panics; whatever it accepts formats to canonical
// HCL that parses back to an equal policy; and the policy compiles and
// evaluates without panicking. The seed corpus is testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse("fuzz", text)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a policy and an error: %v", err)
			}
			return
		}
		assertRoundTrip(t, p)
		id := Identity{EntityID: "e", EntityName: "n", Metadata: map[string]string{"k": "v"}}
		acl, err := NewACL(id, p)
		if err != nil {
			t.Fatalf("NewACL on a parsed policy: %v", err)
		}
		for _, r := range p.Rules {
			acl.Capabilities(r.Path)
			acl.HasAnyUnder(r.Path)
			acl.Authorize(Request{Path: r.Path, Operation: Update, Params: map[string]any{"a": "b,c"}})
		}
	})
}
