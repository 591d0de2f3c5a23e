package transit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// FuzzParseVersioned checks that the parser of "vault:v<n>:<base64>" is
// canonical: whatever it accepts, formatting the result gives back the
// very same string, in both alphabets; and what it refuses is a 400.
func FuzzParseVersioned(f *testing.F) {
	for _, s := range []string{"vault:v1:AAAA", "vault:v12:aGVsbG8=", "vault:v1:", "vault:v01:AA==", "vault:v1:AB==",
		"vault:v1:aGk", "vault:v999999999:AAAA", "vault:v1:a\nGk=", "vault:v-1:AAAA", "vault:v1:-_-_", "vault:v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			n, body, err := parseVersioned(s, "ciphertext", enc)
			if err != nil {
				var ce *core.Error
				if !errors.As(err, &ce) || ce.Status != 400 {
					t.Fatalf("%q: error %v is not a 400", s, err)
				}
				continue
			}
			if n < 1 {
				t.Fatalf("%q parsed to version %d", s, n)
			}
			if again := formatVersioned(n, body, enc); again != s {
				t.Fatalf("%q parsed to (%d, %x), which formats as %q", s, n, body, again)
			}
		}
	})
}

// fuzzKey is a key with fixed material, so the corpus in
// testdata/fuzz/FuzzDecrypt can hold ciphertexts that decrypt.
func fuzzKey(t testing.TB, h *harness, name string, typ keyType, derived bool) {
	t.Helper()
	material := make([]byte, typ.symmetricKeyLen())
	for i := range material {
		material[i] = byte(i + 1)
	}
	v, err := newVersion(typ, 1, t0, material, bytes.Repeat([]byte{7}, hmacKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	k := &key{name: name, typ: typ, derived: derived, convergent: derived, minDecrypt: 1, versions: []*version{v}}
	if _, _, err := h.e.createKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecrypt sends arbitrary request bodies to decrypt. Whatever the
// body, the answer is a result or a 4xx, never a panic or a 500; and a
// plaintext comes back only for a ciphertext the key really made (here:
// the corpus's, of "hello coffer" or "convergent").
func FuzzDecrypt(f *testing.F) {
	h := newHarness(f, nil)
	fuzzKey(f, h, "fixed", typeAES256GCM96, false)
	fuzzKey(f, h, "conv", typeChaCha20Poly1305, true)
	known := map[string]bool{b64("hello coffer"): true, b64("convergent"): true}
	for _, s := range []string{
		`{"ciphertext":"vault:v1:AAAAAAAAAAAAAAAA"}`,
		`{"ciphertext":"vault:v2:AAAA"}`,
		`{"ciphertext":"vault:v1:!!"}`,
		`{"ciphertext":"vault:v1:AAAA","context":"Y29udGV4dA=="}`,
		`{"batch_input":[{"ciphertext":"vault:v1:AAAA","reference":"x"},{"ciphertext":5}]}`,
		`{"batch_input":[]}`,
		`{"ciphertext":["vault:v1:AAAA"]}`,
		`null`,
		``,
	} {
		f.Add("fixed", s)
	}
	f.Fuzz(func(t *testing.T, name, body string) {
		if len(body) > 1<<16 {
			return
		}
		h := h.on(t)
		resp, err := h.do(core.OpUpdate, "decrypt/"+name, body)
		if err != nil {
			var ce *core.Error
			if errors.Is(err, core.ErrUnsupportedPath) || errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
				return
			}
			t.Fatalf("decrypt %q %q: %T %v, want a 4xx", name, body, err, err)
		}
		if resp.Status >= 500 {
			t.Fatalf("decrypt %q %q: status %d", name, body, resp.Status)
		}
		data := wire(t, resp.Data)
		if pt, ok := data["plaintext"]; ok && !known[pt.(string)] {
			t.Fatalf("decrypt %q %q: plaintext %q from a ciphertext the key never made", name, body, pt)
		}
		if items, ok := data["batch_results"].([]any); ok {
			for _, it := range items {
				m := it.(map[string]any)
				if pt := m["plaintext"].(string); m["error"] == nil && !known[pt] {
					t.Fatalf("decrypt %q %q: batch plaintext %q from a ciphertext the key never made", name, body, pt)
				}
			}
		}
	})
}

// TestFuzzCorpusDecrypts pins that the corpus's ciphertexts are real, so
// FuzzDecrypt starts from inputs that reach the AEAD and mutates them.
func TestFuzzCorpusDecrypts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	fuzzKey(t, h, "fixed", typeAES256GCM96, false)
	fuzzKey(t, h, "conv", typeChaCha20Poly1305, true)
	h.clock.Advance(time.Second)
	for _, tc := range []struct{ name, ct, context, want string }{
		{"fixed", fixedCiphertext, "", "hello coffer"},
		{"conv", convCiphertext, b64("tenant"), "convergent"},
	} {
		extra := []any{}
		if tc.context != "" {
			extra = append(extra, "context", tc.context)
		}
		if got := h.decrypt(tc.name, tc.ct, extra...); got != tc.want {
			t.Fatalf("%s: %q", tc.name, got)
		}
	}
	// The convergent one is what encrypting again gives.
	if got := h.encrypt("conv", "convergent", "context", b64("tenant")); got != convCiphertext {
		t.Fatalf("convergent ciphertext changed: %s", got)
	}
}

// The corpus ciphertexts (made by fuzzKey's material).
const (
	fixedCiphertext = "vault:v1:K0ssFFhM+fx/bsLZ0vSJrKKL5tHA5LDkBxS8CCDin/6jyfp54qLDbQ=="
	convCiphertext  = "vault:v1:H0rjePGFM8HQC2ieSbcI22vZoKmrVryH7eJq4ff1/OmVOx9Y1vM="
)
