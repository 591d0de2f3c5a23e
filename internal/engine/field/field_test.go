package field

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

func decode(t *testing.T, body string, query url.Values) *Set {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	s, err := Decode(&core.Request{Body: json.RawMessage(body), Query: query})
	if err != nil {
		t.Fatalf("Decode(%s): %v", body, err)
	}
	return s
}

func TestGetters(t *testing.T) {
	t.Parallel()
	s := decode(t, `{"n":"42","m":7,"b":"true","c":false,"d":"30d","e":90,"s":12,"o":{"x":1},"v":"1, 2","z":null,"b64":"aGk=","items":[{"a":1},{}]}`,
		url.Values{"q": {"from-query"}, "n": {"ignored"}})
	if n, ok, err := s.Int("n"); n != 42 || !ok || err != nil {
		t.Errorf("Int(n) = %d %v %v", n, ok, err)
	}
	if n, ok, err := s.Int("m"); n != 7 || !ok || err != nil {
		t.Errorf("Int(m) = %d %v %v", n, ok, err)
	}
	if b, ok, err := s.Bool("b"); !b || !ok || err != nil {
		t.Errorf("Bool(b) = %v %v %v", b, ok, err)
	}
	if b, ok, err := s.Bool("c"); b || !ok || err != nil {
		t.Errorf("Bool(c) = %v %v %v", b, ok, err)
	}
	if d, _, err := s.Duration("d"); d != 30*24*time.Hour || err != nil {
		t.Errorf("Duration(d) = %v %v", d, err)
	}
	if d, _, err := s.Duration("e"); d != 90*time.Second || err != nil {
		t.Errorf("Duration(e) = %v %v", d, err)
	}
	if str, ok, err := s.String("s"); str != "12" || !ok || err != nil {
		t.Errorf("String(s) = %q %v %v", str, ok, err)
	}
	if str, _, _ := s.String("q"); str != "from-query" {
		t.Errorf("String(q) = %q", str)
	}
	if o, _, err := s.Object("o"); err != nil || o["x"] != json.Number("1") {
		t.Errorf("Object(o) = %v %v", o, err)
	}
	if v, err := s.Versions("v"); err != nil || !reflect.DeepEqual(v, []uint64{1, 2}) {
		t.Errorf("Versions(v) = %v %v", v, err)
	}
	if s.Has("z") || !s.Null("z") {
		t.Error("null field: Has or Null wrong")
	}
	if b, ok, err := s.Base64("b64"); string(b) != "hi" || !ok || err != nil {
		t.Errorf("Base64 = %q %v %v", b, ok, err)
	}
	items, ok, err := s.Objects("items")
	if err != nil || !ok || len(items) != 2 {
		t.Fatalf("Objects = %v %v %v", items, ok, err)
	}
	if n, _, _ := items[0].Int("a"); n != 1 {
		t.Errorf("item Int(a) = %d", n)
	}
	if w := s.Warnings(&core.Request{Query: url.Values{"q": {"x"}}}); w != nil {
		t.Errorf("Warnings = %v", w)
	}
}

func TestStringUnescapes(t *testing.T) {
	t.Parallel()
	s := decode(t, `{"plain":"abc+/=","quote":"a\"b","unicode":"\u0041\u00e9","utf8":"é","tab":"a\tb"}`, nil)
	for name, want := range map[string]string{"plain": "abc+/=", "quote": `a"b`, "unicode": "Aé", "utf8": "é", "tab": "a\tb"} {
		if got, _, err := s.String(name); got != want || err != nil {
			t.Errorf("String(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		get  func(*Set) error
		want string
	}{
		{"int", `{"f":"x"}`, func(s *Set) error { _, _, err := s.Int("f"); return err }, `error converting input for field "f": cannot parse "x" as an integer`},
		{"bool", `{"f":"maybe"}`, func(s *Set) error { _, _, err := s.Bool("f"); return err }, `error converting input for field "f": cannot parse "maybe" as a boolean`},
		{"string of object", `{"f":{}}`, func(s *Set) error { _, _, err := s.String("f"); return err }, `error converting input for field "f": '' expected type 'string', got unconvertible type 'map[string]interface {}'`},
		{"object of string", `{"f":"x"}`, func(s *Set) error { _, _, err := s.Object("f"); return err }, `error converting input for field "f": '' expected type 'map[string]interface {}', got unconvertible type 'string'`},
		{"base64", `{"f":"@@"}`, func(s *Set) error { _, _, err := s.Base64("f"); return err }, `failed to base64-decode f: illegal base64 data at input byte 0`},
		{"objects of string", `{"f":"x"}`, func(s *Set) error { _, _, err := s.Objects("f"); return err }, `error converting input for field "f": '' expected type '[]interface {}', got unconvertible type 'string'`},
		{"objects item", `{"f":[{},3]}`, func(s *Set) error { _, _, err := s.Objects("f"); return err }, `error converting input for field "f": item 1: '' expected type 'map[string]interface {}', got unconvertible type 'json.Number'`},
		{"versions", `{"f":[-1]}`, func(s *Set) error { _, err := s.Versions("f"); return err }, `error converting input for field "f": version -1 is negative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.get(decode(t, tc.body, nil))
			var ce *core.Error
			if !errors.As(err, &ce) || ce.Status != 400 || ce.Msg != tc.want {
				t.Fatalf("got %v, want 400 %q", err, tc.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	s := decode(t, `{"known":1,"zeta":2,"alpha":3}`, nil)
	s.Int("known")
	want := []string{"Endpoint ignored these unrecognized parameters: [alpha zeta]"}
	if got := s.Warnings(&core.Request{Query: url.Values{}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Warnings = %v", got)
	}
}

func TestDecodeRejectsNonObject(t *testing.T) {
	t.Parallel()
	if _, err := Decode(&core.Request{Body: json.RawMessage(`[1]`)}); err == nil {
		t.Fatal("an array body decoded")
	}
	s, err := Decode(&core.Request{Body: json.RawMessage(`null`)})
	if err != nil || s.Has("x") {
		t.Fatalf("null body: %v", err)
	}
}

// FuzzParseDuration checks that whatever parses re-parses from its own
// Go form, and that whole seconds re-parse from a JSON number.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{`"768h"`, `3600`, `"90"`, `"30d"`, `"-1s"`, `1.0`, `"1h30m"`, `""`, `"x"`, `1e3`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := ParseDuration(json.RawMessage(raw))
		if err != nil {
			return
		}
		q, _ := json.Marshal(d.String())
		if d2, err := ParseDuration(q); err != nil || d2 != d {
			t.Fatalf("%s parsed to %v, which re-parses to %v, %v", raw, d, d2, err)
		}
		if d%time.Second == 0 {
			n := json.RawMessage(strconv.FormatInt(int64(d/time.Second), 10))
			if d2, err := ParseDuration(n); err != nil || d2 != d {
				t.Fatalf("%s parsed to %v; %s seconds re-parses to %v, %v", raw, d, n, d2, err)
			}
		}
	})
}
