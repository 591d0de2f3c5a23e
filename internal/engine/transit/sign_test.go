package transit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

// sign signs input with key name and returns the signature.
func (h *harness) sign(name, path, input string, extra ...any) string {
	h.t.Helper()
	body := map[string]any{"input": b64(input)}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	return str(h.t, h.ok(core.OpWrite, path, body)["signature"])
}

// valid reports what verify answers.
func (h *harness) valid(path string, body map[string]any) bool {
	h.t.Helper()
	v, ok := h.ok(core.OpWrite, path, body)["valid"].(bool)
	if !ok {
		h.t.Fatalf("verify %s answered no valid field", path)
	}
	return v
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name, typ, hashPath string
		opts                map[string]any
	}{
		{"ed25519", "ed25519", "", nil},
		{"ed25519ph", "ed25519", "/sha2-512", map[string]any{"prehashed": true}},
		{"ecdsa asn1", "ecdsa-p256", "", nil},
		{"ecdsa jws sha2-384", "ecdsa-p256", "/sha2-384", map[string]any{"marshaling_algorithm": "jws"}},
		{"ecdsa p384 sha3", "ecdsa-p384", "", map[string]any{"hash_algorithm": "sha3-256"}},
		{"rsa pss", "rsa-2048", "", nil},
		{"rsa pss salt hash", "rsa-2048", "/sha2-512", map[string]any{"salt_length": "hash"}},
		{"rsa pss salt 20", "rsa-2048", "", map[string]any{"salt_length": "20"}},
		{"rsa pkcs1v15", "rsa-2048", "", map[string]any{"signature_algorithm": "pkcs1v15"}},
		{"rsa pkcs1v15 sha1", "rsa-2048", "/sha1", map[string]any{"signature_algorithm": "pkcs1v15"}},
		{"rsa pkcs1v15 none", "rsa-2048", "/none", map[string]any{"signature_algorithm": "pkcs1v15"}},
		{"rsa-4096 pss", "rsa-4096", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.on(t)
			key := strings.ReplaceAll(tc.name, " ", "-")
			h.create(key, tc.typ)
			h.create(key+"-other", tc.typ)
			input := "message to sign"
			if tc.opts["prehashed"] == true {
				// Ed25519ph signs a SHA-512 digest.
				input = strings.Repeat("d", 64)
			}
			body := func(extra ...any) map[string]any {
				b := map[string]any{"input": b64(input)}
				for k, v := range tc.opts {
					b[k] = v
				}
				for i := 0; i+1 < len(extra); i += 2 {
					b[extra[i].(string)] = extra[i+1]
				}
				return b
			}
			out := h.ok(core.OpWrite, "sign/"+key+tc.hashPath, body())
			sig := str(t, out["signature"])
			if !strings.HasPrefix(sig, "vault:v1:") || num(t, out["key_version"]) != 1 {
				t.Fatalf("sign answered %v", out)
			}
			if !h.valid("verify/"+key+tc.hashPath, body("signature", sig)) {
				t.Fatal("own signature does not verify")
			}
			if h.valid("verify/"+key+"-other"+tc.hashPath, body("signature", sig)) {
				t.Fatal("signature verifies under another key")
			}
			other := body("signature", sig)
			other["input"] = b64(strings.ToUpper(input))
			if h.valid("verify/"+key+tc.hashPath, other) {
				t.Fatal("signature verifies for another input")
			}
			// After a rotation the old signature still verifies and a new
			// one carries v2.
			h.ok(core.OpWrite, "keys/"+key+"/rotate", nil)
			if !h.valid("verify/"+key+tc.hashPath, body("signature", sig)) {
				t.Fatal("v1 signature does not verify after rotation")
			}
			if s2 := str(t, h.ok(core.OpWrite, "sign/"+key+tc.hashPath, body())["signature"]); !strings.HasPrefix(s2, "vault:v2:") {
				t.Fatalf("signature after rotation: %s", s2)
			}
			h.ok(core.OpWrite, "keys/"+key+"/config", map[string]any{"min_decryption_version": 2})
			h.fails(core.OpWrite, "verify/"+key+tc.hashPath, body("signature", sig), 400, msgTooOld)
		})
	}
}

// TestSignaturesInterop checks signatures against the standard library's
// verifiers and the exported public keys, so they are what other tools
// expect, not only what this engine accepts.
func TestSignaturesInterop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	msg := []byte("interop")
	digest := sha256.Sum256(msg)
	pub := func(name string) any {
		t.Helper()
		s := str(t, h.ok(core.OpRead, "export/public-key/"+name+"/1", nil)["keys"].(map[string]any)["1"])
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return ed25519.PublicKey(b)
		}
		blk, _ := pem.Decode([]byte(s))
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	raw := func(sig string) []byte {
		_, b, err := parseVersioned(sig, "signature", base64.StdEncoding)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h.create("ed", "ed25519")
	if !ed25519.Verify(pub("ed").(ed25519.PublicKey), msg, raw(h.sign("ed", "sign/ed", "interop"))) {
		t.Error("ed25519 signature does not verify with crypto/ed25519")
	}
	h.create("ec", "ecdsa-p256")
	if !ecdsa.VerifyASN1(pub("ec").(*ecdsa.PublicKey), digest[:], raw(h.sign("ec", "sign/ec", "interop"))) {
		t.Error("ecdsa signature does not verify with crypto/ecdsa")
	}
	h.create("rsa", "rsa-2048")
	if err := rsa.VerifyPSS(pub("rsa").(*rsa.PublicKey), 0x5, digest[:], raw(h.sign("rsa", "sign/rsa", "interop")), nil); err != nil {
		t.Errorf("rsa pss signature: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(pub("rsa").(*rsa.PublicKey), 0x5, digest[:], raw(h.sign("rsa", "sign/rsa", "interop", "signature_algorithm", "pkcs1v15"))); err != nil {
		t.Errorf("rsa pkcs1v15 signature: %v", err)
	}
}

func TestSignDerivedEd25519(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("d", "ed25519", "derived", true)
	out := h.ok(core.OpWrite, "sign/d", map[string]any{"input": b64("m"), "context": b64("ctx-1")})
	pk, _ := base64.StdEncoding.DecodeString(str(t, out["public_key"]))
	_, sig, _ := parseVersioned(str(t, out["signature"]), "signature", base64.StdEncoding)
	if !ed25519.Verify(ed25519.PublicKey(pk), []byte("m"), sig) {
		t.Fatal("derived signature does not verify with the answered public key")
	}
	body := map[string]any{"input": b64("m"), "signature": out["signature"], "context": b64("ctx-1")}
	if !h.valid("verify/d", body) {
		t.Fatal("derived signature does not verify")
	}
	body["context"] = b64("ctx-2")
	if h.valid("verify/d", body) {
		t.Fatal("derived signature verifies under another context")
	}
	h.fails(core.OpWrite, "sign/d", map[string]any{"input": b64("m")}, 400, msgMissingContext)
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("ed", "ed25519")
	h.create("ec", "ecdsa-p256")
	h.create("aes", "aes256-gcm96")
	sig := h.sign("ec", "sign/ec", "m")
	for _, tc := range []struct {
		name string
		path string
		body string
		msg  string
	}{
		{"aes cannot sign", "sign/aes", `{"input":""}`, "key type aes256-gcm96 does not support signing"},
		{"unknown key", "sign/nope", `{"input":""}`, "signing key not found"},
		{"no input", "sign/ec", `{}`, "missing input to sign"},
		{"bad hash", "sign/ec/md5", `{"input":""}`, `unsupported hash algorithm "md5": use sha1, ...`},
		{"none for ecdsa", "sign/ec", `{"input":"","hash_algorithm":"none"}`, "hash algorithm none is only for RSA keys with signature_algorithm=pkcs1v15"},
		{"bad signature algorithm", "sign/ec", `{"input":"","signature_algorithm":"dsa"}`, `unsupported signature algorithm "dsa": use pss or pkcs1v15`},
		{"bad marshaling", "sign/ec", `{"input":"","marshaling_algorithm":"pem"}`, `unsupported marshaling algorithm "pem": use asn1 or jws`},
		{"prehashed wrong length", "sign/ec", `{"input":"AAAA","prehashed":true}`, "prehashed input is 3 bytes, but a sha2-256 digest is 32 bytes"},
		{"ed25519ph wrong hash", "sign/ed", `{"input":"","prehashed":true}`, "a prehashed ed25519 signature (Ed25519ph) needs hash_algorithm=sha2-512"},
		{"key_version too new", "sign/ec", `{"input":"","key_version":2}`, "requested version for encryption is higher than the latest key version"},
		{"verify without signature", "verify/ec", `{"input":""}`, "missing signature or hmac to verify"},
		{"verify both", "verify/ec", `{"input":"","signature":"x","hmac":"y"}`, "provide either signature or hmac, not both"},
		{"verify no prefix", "verify/ec", `{"input":"","signature":"abc"}`, "invalid signature: no prefix"},
		{"verify bad base64", "verify/ec", `{"input":"","signature":"vault:v1:!!"}`, "invalid signature: could not decode base64"},
		{"verify too new", "verify/ec", `{"input":"","signature":"vault:v3:AAAA"}`, "invalid signature: version is too new"},
		{"verify aes signature", "verify/aes", `{"input":"","signature":"vault:v1:AAAA"}`, "key type aes256-gcm96 does not support signing: verify an hmac instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.on(t)
			h.fails(core.OpWrite, tc.path, tc.body, 400, tc.msg)
		})
	}
	// A well-formed value that is not a signature is simply invalid.
	_, raw, _ := parseVersioned(sig, "signature", base64.StdEncoding)
	raw[len(raw)-1] ^= 1
	for _, s := range []string{"vault:v1:AAAA", formatVersioned(1, raw, base64.StdEncoding)} {
		if h.valid("verify/ec", map[string]any{"input": b64("m"), "signature": s}) {
			t.Fatalf("%s verifies", s)
		}
	}
	// A jws signature is base64url: a standard-base64 asn1 value is refused.
	h.fails(core.OpWrite, "verify/ec", map[string]any{"input": b64("m"), "signature": "vault:v1:ab+/", "marshaling_algorithm": "jws"}, 400, "invalid signature: could not decode base64")
	if h.valid("verify/ec", map[string]any{"input": b64("m"), "signature": "vault:v1:" + strings.Repeat("A", 86), "marshaling_algorithm": "jws"}) {
		t.Fatal("a zero jws signature verifies")
	}
}

func TestHMAC(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	h.create("ec", "ecdsa-p256")
	h.create("other", "aes256-gcm96")
	mac := func(path string, body map[string]any) string { return str(t, h.ok(core.OpWrite, path, body)["hmac"]) }
	m256 := mac("hmac/k", map[string]any{"input": b64("data")})
	if !strings.HasPrefix(m256, "vault:v1:") || len(m256) != len("vault:v1:")+44 {
		t.Fatalf("hmac = %s", m256)
	}
	if m := mac("hmac/k", map[string]any{"input": b64("data")}); m != m256 {
		t.Fatal("hmac is not deterministic")
	}
	m512 := mac("hmac/k/sha2-512", map[string]any{"input": b64("data")})
	if m := mac("hmac/k", map[string]any{"input": b64("data"), "algorithm": "sha2-512"}); m != m512 || len(m512) != len("vault:v1:")+88 {
		t.Fatalf("sha2-512 hmac: %s vs %s", m, m512)
	}
	mac("hmac/ec", map[string]any{"input": b64("data")}) // every type has an hmac key
	for _, tc := range []struct {
		path  string
		body  map[string]any
		valid bool
	}{
		{"verify/k", map[string]any{"input": b64("data"), "hmac": m256}, true},
		{"verify/k/sha2-512", map[string]any{"input": b64("data"), "hmac": m512}, true},
		{"verify/k", map[string]any{"input": b64("data"), "hmac": m512}, false},
		{"verify/k", map[string]any{"input": b64("other"), "hmac": m256}, false},
		{"verify/other", map[string]any{"input": b64("data"), "hmac": m256}, false},
	} {
		if got := h.valid(tc.path, tc.body); got != tc.valid {
			t.Errorf("%s %v: valid = %v, want %v", tc.path, tc.body, got, tc.valid)
		}
	}
	h.ok(core.OpWrite, "keys/k/rotate", nil)
	if m := mac("hmac/k", map[string]any{"input": b64("data")}); !strings.HasPrefix(m, "vault:v2:") || m == m256 {
		t.Fatalf("hmac after rotation: %s", m)
	}
	if !h.valid("verify/k", map[string]any{"input": b64("data"), "hmac": m256}) {
		t.Fatal("v1 hmac does not verify after rotation")
	}
	out := h.ok(core.OpWrite, "hmac/k", map[string]any{"batch_input": []any{
		map[string]any{"input": b64("data"), "reference": "r"},
	}, "key_version": 1})
	if r := out["batch_results"].([]any)[0].(map[string]any); r["hmac"] != m256 || r["reference"] != "r" {
		t.Fatalf("hmac batch with key_version 1: %v", r)
	}
	resp, err := h.do(core.OpWrite, "hmac/k", map[string]any{"batch_input": []any{map[string]any{"input": b64("a"), "reference": "r"}, map[string]any{"input": "!"}}})
	if err != nil || resp.Status != 400 {
		t.Fatalf("hmac batch with a bad item: %v %v", resp, err)
	}
	h.fails(core.OpWrite, "hmac/k/none", map[string]any{"input": ""}, 400, "hash algorithm none cannot be used for an hmac")
	h.fails(core.OpWrite, "hmac/k", map[string]any{}, 400, "missing input for HMAC")
}

func TestExport(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("sealed", "aes256-gcm96")
	h.fails(core.OpRead, "export/encryption-key/sealed", nil, 400, "private key material is not exportable: create the key with exportable=true")
	h.fails(core.OpRead, "export/public-key/sealed", nil, 400, "public key not available for key type aes256-gcm96")
	h.create("open", "aes256-gcm96", "exportable", true)
	ct := h.encrypt("open", "p")
	out := h.ok(core.OpRead, "export/encryption-key/open", nil)
	kb, _ := base64.StdEncoding.DecodeString(str(t, out["keys"].(map[string]any)["1"]))
	if out["name"] != "open" || out["type"] != "aes256-gcm96" || len(kb) != 32 {
		t.Fatalf("export answered %v", out)
	}
	// The exported key decrypts the engine's ciphertext.
	_, body, _ := parseVersioned(ct, "ciphertext", base64.StdEncoding)
	aead, _ := newAEAD(typeAES256GCM96, kb)
	if pt, err := aead.Open(nil, body[:12], body[12:], nil); err != nil || string(pt) != "p" {
		t.Fatalf("exported key does not open the ciphertext: %v", err)
	}
	h.create("ec", "ecdsa-p256", "exportable", true)
	if s := str(t, h.ok(core.OpRead, "export/signing-key/ec/latest", nil)["keys"].(map[string]any)["1"]); !strings.HasPrefix(s, "-----BEGIN EC PRIVATE KEY-----") {
		t.Fatalf("ecdsa signing key export: %.40s", s)
	}
	h.fails(core.OpRead, "export/encryption-key/ec", nil, 400, "encryption key not supported by key type ecdsa-p256")
	h.fails(core.OpRead, "export/signing-key/ec/2", nil, 400, `invalid version "2": key ec has versions 1 to 1`)
	h.fails(core.OpRead, "export/secret/ec", nil, 400, `invalid export type "secret": use encryption-key, signing-key, hmac-key or public-key`)
	if out := h.ok(core.OpRead, "export/hmac-key/open", nil); len(out["keys"].(map[string]any)) != 1 {
		t.Fatalf("hmac-key export: %v", out)
	}
}
