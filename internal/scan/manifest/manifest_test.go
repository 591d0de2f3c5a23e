package manifest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/scan/manifest"
)

func TestParseShapes(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name string
		doc  string
		want []string // key=value
		line int      // line of the first entry
	}{
		{"data", "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\ndata:\n  password: " + b64("hunter22") + "\n", []string{"password=hunter22"}, 5},
		{"stringData", "kind: Secret\napiVersion: v1\nstringData:\n  token: abc\n", []string{"token=abc"}, 4},
		{"multi-document helm", "---\n# Source: x\nkind: ConfigMap\n---\n# Source: y\nkind: Secret\napiVersion: v1\ndata:\n  k: " + b64("v") + "\n", []string{"k=v"}, 9},
		{"List", "apiVersion: v1\nkind: List\nitems:\n- kind: Secret\n  apiVersion: v1\n  data: {a: " + b64("1") + "}\n- kind: Secret\n  apiVersion: v1\n  stringData: {b: '2'}\n", []string{"a=1", "b=2"}, 6},
		{"kubectl json", `{"kind":"SecretList","apiVersion":"v1","items":[{"kind":"Secret","metadata":{"name":"x"},"data":{"tls.key":"` + b64("KEY") + `"}}]}`, []string{"tls.key=KEY"}, 1},
		{"folded base64", "kind: Secret\ndata:\n  long: >-\n    " + b64("abcdefghijklmnop")[:8] + "\n    " + b64("abcdefghijklmnop")[8:] + "\n", []string{"long=abcdefghijklmnop"}, 3},
		{"alias", "kind: Secret\nstringData:\n  a: &x shared\n  b: *x\n", []string{"a=shared", "b=shared"}, 3},
		{"not a secret", "kind: ConfigMap\ndata:\n  password: plain\n", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es, err := manifest.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Key+"="+string(e.Value))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
			if len(es) > 0 && es[0].Line != tc.line {
				t.Errorf("line %d, want %d", es[0].Line, tc.line)
			}
		})
	}
}

// TestHostileInput: alias bombs, deep nesting and garbage end quickly.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	bomb := "kind: Secret\na: &a [x,x,x,x,x,x,x,x,x,x]\n"
	prev := "a"
	for i := range 20 {
		name := fmt.Sprintf("b%d", i)
		bomb += fmt.Sprintf("%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	bomb += "stringData:\n  k: *" + prev + "\n"
	for _, tc := range []struct{ name, doc string }{
		{"alias bomb", bomb},
		{"deep flow", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
		{"deep block", strings.Repeat("a:\n  ", 3000) + "b: c\n"},
		{"deep lists", "kind: List\nitems:\n" + strings.Repeat("- kind: List\n  items:\n", 200)},
		{"binary", "\x00\x01\x02kind: Secret\xff\xfe"},
		{"too large", strings.Repeat("x", manifest.MaxSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, _ = manifest.Parse([]byte(tc.doc))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// FuzzParse: on any input Parse returns without panicking; and a Secret
// built from the fuzzed key and value, as YAML data, YAML stringData and
// JSON data, parses back to exactly that key and value.
func FuzzParse(f *testing.F) {
	f.Add("password", []byte("hunter2"), []byte("kind: Secret\ndata:\n  a: YQ==\n"))
	f.Add("tls.key", []byte("-----BEGIN PRIVATE KEY-----\nabc\n"), []byte(`{"kind":"List","items":[{"kind":"Secret","stringData":{"a":"b"}}]}`))
	f.Add("k", []byte{0, 1, 2, 255}, []byte("a: &a [*a]\nkind: Secret\n"))
	f.Fuzz(func(t *testing.T, key string, value, raw []byte) {
		_, _ = manifest.Parse(raw)
		if key == "" || len(key) > 253 || !validKey(key) {
			return
		}
		enc := base64.StdEncoding.EncodeToString(value)
		kj, _ := json.Marshal(key)
		docs := []string{
			fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  %s: %s\n", kj, enc),
			fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","data":{%s:%q}}`, kj, enc),
		}
		for _, d := range docs {
			es, err := manifest.Parse([]byte(d))
			if err != nil {
				t.Fatalf("Parse(%q): %v", d, err)
			}
			if len(es) != 1 || es[0].Key != key || !bytes.Equal(es[0].Value, value) || !es[0].Decoded {
				t.Fatalf("Parse(%q) = %+v, want %q=%q", d, es, key, value)
			}
		}
	})
}

// validKey is the Kubernetes rule for Secret keys.
func validKey(k string) bool {
	for _, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
