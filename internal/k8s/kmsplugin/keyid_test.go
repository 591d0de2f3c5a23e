package kmsplugin

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"k8s.io/kms/pkg/service"
)

func TestKeyID(t *testing.T) {
	t.Parallel()
	k := keyName{mount: "transit", name: "kube-apiserver"}
	if got, want := k.keyID(1), "transit/kube-apiserver:v1"; got != want {
		t.Errorf("keyID(1) = %q, want %q", got, want)
	}
	if k.keyID(1) == k.keyID(2) {
		t.Error("the key id does not change with the version")
	}
	nested := keyName{mount: "team/transit", name: "kube"}
	tests := []struct {
		name string
		key  keyName
		id   string
		want int // 0: ErrUnknownKeyID
	}{
		{"v1", k, "transit/kube-apiserver:v1", 1},
		{"v42", k, "transit/kube-apiserver:v42", 42},
		{"nested mount", nested, "team/transit/kube:v7", 7},
		{"other key", k, "transit/other:v1", 0},
		{"other mount", k, "transit2/kube-apiserver:v1", 0},
		{"prefix of name", k, "transit/kube:v1", 0},
		{"longer name", k, "transit/kube-apiserver2:v1", 0},
		{"no version", k, "transit/kube-apiserver", 0},
		{"empty version", k, "transit/kube-apiserver:v", 0},
		{"v0", k, "transit/kube-apiserver:v0", 0},
		{"leading zero", k, "transit/kube-apiserver:v01", 0},
		{"negative", k, "transit/kube-apiserver:v-1", 0},
		{"plus", k, "transit/kube-apiserver:v+1", 0},
		{"overflow", k, "transit/kube-apiserver:v99999999999", 0},
		{"trailing", k, "transit/kube-apiserver:v1 ", 0},
		{"empty", k, "", 0},
		{"other plugin", k, "key-1", 0},
		{"huge", k, "transit/kube-apiserver:v1" + strings.Repeat("1", 2000), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.key.parseKeyID(tt.id)
			if tt.want == 0 {
				if !errors.Is(err, ErrUnknownKeyID) {
					t.Fatalf("parseKeyID(%q) = %d, %v; want ErrUnknownKeyID", tt.id, v, err)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("parseKeyID(%q) = %d, %v; want %d", tt.id, v, err, tt.want)
			}
		})
	}
}

func TestParseCiphertext(t *testing.T) {
	t.Parallel()
	body := base64.StdEncoding.EncodeToString(make([]byte, 60))
	tests := []struct {
		name string
		ct   string
		want int // 0: ErrBadCiphertext
	}{
		{"v1", "vault:v1:" + body, 1},
		{"v12", "vault:v12:" + body, 12},
		{"empty", "", 0},
		{"no prefix", "v1:" + body, 0},
		{"kms envelope", "k8s:enc:kms:v2:coffer-test:\x0a\x20", 0},
		{"other plugin", "\x8a\x01\x02nonce-and-sealed-bytes", 0},
		{"prefix only", "vault:v", 0},
		{"no body", "vault:v1:", 0},
		{"no separator", "vault:v1" + body, 0},
		{"v0", "vault:v0:" + body, 0},
		{"leading zero", "vault:v01:" + body, 0},
		{"letters", "vault:vx:" + body, 0},
		{"truncated body", "vault:v1:" + body[:len(body)-3], 0},
		{"bad base64", "vault:v1:" + strings.Repeat("*", len(body)), 0},
		{"url base64", "vault:v1:" + strings.Repeat("-_", len(body)/2), 0},
		{"newline", "vault:v1:" + body + "\n", 0},
		{"newlines in place of a block", "vault:v1:AAAA\n\n\n\n", 0},
		{"CRLF inside", "vault:v1:AA\r\nAAAAAA", 0},
		{"over the limit", "vault:v1:" + strings.Repeat("AAAA", 300), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseCiphertext([]byte(tt.ct))
			if tt.want == 0 {
				if !errors.Is(err, ErrBadCiphertext) {
					t.Fatalf("parseCiphertext(%q) = %d, %v; want ErrBadCiphertext", tt.ct, v, err)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("parseCiphertext(%q) = %d, %v; want %d", tt.ct, v, err, tt.want)
			}
		})
	}
}

// FuzzParseCiphertext checks that whatever parses is exactly
// "vault:v<n>:<base64>" rebuilt from its parts: the version and the body
// decoded and encoded again give the same bytes.
func FuzzParseCiphertext(f *testing.F) {
	f.Add([]byte("vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 60))))
	f.Add([]byte("vault:v2147483647:AAAA"))
	f.Add([]byte("vault:v2147483648:AAAA"))
	f.Add([]byte("vault:v1:AA=="))
	f.Add([]byte("vault:v1:AB=="))
	f.Add([]byte("k8s:enc:kms:v2:x:"))
	f.Add([]byte("vault:v1:AAAA\n\n\n\n"))
	f.Fuzz(func(t *testing.T, ct []byte) {
		v, err := parseCiphertext(ct)
		if err != nil {
			if !errors.Is(err, ErrBadCiphertext) {
				t.Fatalf("error %v is not ErrBadCiphertext", err)
			}
			return
		}
		if v < 1 || len(ct) > maxCiphertext {
			t.Fatalf("accepted version %d, length %d", v, len(ct))
		}
		prefix := ciphertextPrefix + strconv.Itoa(v) + ":"
		body, ok := strings.CutPrefix(string(ct), prefix)
		if !ok {
			t.Fatalf("%q parsed as v%d but does not start with %q", ct, v, prefix)
		}
		raw, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatalf("accepted body %q: %v", body, err)
		}
		if again := prefix + base64.StdEncoding.EncodeToString(raw); again != string(ct) {
			t.Fatalf("re-encoded %q, want %q", again, ct)
		}
	})
}

// FuzzParseKeyID checks that an id parses only when it is exactly the key
// id of the version it parses to.
func FuzzParseKeyID(f *testing.F) {
	k := keyName{mount: "transit", name: "kube"}
	f.Add("transit/kube:v1")
	f.Add("transit/kube:v2147483647")
	f.Add("transit/kube:v0")
	f.Add("transit/kube:v1:v2")
	f.Fuzz(func(t *testing.T, id string) {
		v, err := k.parseKeyID(id)
		if err != nil {
			if !errors.Is(err, ErrUnknownKeyID) {
				t.Fatalf("error %v is not ErrUnknownKeyID", err)
			}
			return
		}
		if got := k.keyID(v); got != id {
			t.Fatalf("%q parsed as v%d, whose key id is %q", id, v, got)
		}
	})
}

// FuzzCheckDecrypt feeds arbitrary Decrypt requests to the checks that
// run before any call to coffer: they never panic, and what they let
// through is a transit ciphertext whose version matches the key id.
func FuzzCheckDecrypt(f *testing.F) {
	body := base64.StdEncoding.EncodeToString(make([]byte, 60))
	f.Add([]byte("vault:v1:"+body), "transit/kube:v1", AnnotationFormat, []byte(FormatV1))
	f.Add([]byte("vault:v2:"+body), "transit/kube:v1", "", []byte(nil))
	f.Add([]byte("k8s:enc:kms:v2:x:"), "transit/kube:v1", AnnotationFormat, []byte("transit-v2"))
	p := &Plugin{key: keyName{mount: "transit", name: "kube"}}
	f.Fuzz(func(t *testing.T, ct []byte, keyID, annKey string, annVal []byte) {
		req := &service.DecryptRequest{Ciphertext: ct, KeyID: keyID, Annotations: map[string][]byte{annKey: annVal}}
		if err := p.checkDecrypt(req); err != nil {
			return
		}
		v, err := parseCiphertext(ct)
		if err != nil {
			t.Fatalf("let through a bad ciphertext: %v", err)
		}
		if kv, err := p.key.parseKeyID(keyID); err != nil || kv != v {
			t.Fatalf("let through key id %q for a v%d ciphertext (%v)", keyID, v, err)
		}
		if annKey == AnnotationFormat && string(annVal) != FormatV1 {
			t.Fatalf("let through format %q", annVal)
		}
	})
}
