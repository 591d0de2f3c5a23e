package transit

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

// encryptionTypes are the key types that encrypt. rsa-4096 is generated
// once per test that needs it: it takes a second or more.
var encryptionTypes = []string{"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-4096"}

func TestEncryptRoundTripEveryType(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, typ := range encryptionTypes {
		t.Run(typ, func(t *testing.T) {
			h := h.on(t)
			h.create(typ, typ)
			for _, pt := range []string{"", "hello coffer", strings.Repeat("\x00\xff", 50)} {
				out := h.ok(core.OpWrite, "encrypt/"+typ, map[string]any{"plaintext": b64(pt)})
				ct := str(t, out["ciphertext"])
				if !strings.HasPrefix(ct, "vault:v1:") || num(t, out["key_version"]) != 1 {
					t.Fatalf("encrypt answered %v", out)
				}
				if got := h.decrypt(typ, ct); got != pt {
					t.Fatalf("round trip gave %q, want %q", got, pt)
				}
				if ct2 := h.encrypt(typ, pt); ct2 == ct {
					t.Fatal("two encryptions of one plaintext are equal: the nonce repeats")
				}
			}
		})
	}
	// Signing-only types refuse to encrypt.
	h.create("ed", "ed25519")
	h.fails(core.OpWrite, "encrypt/ed", map[string]any{"plaintext": b64("x")}, 400, "key type ed25519 does not support encryption")
	h.fails(core.OpWrite, "decrypt/ed", map[string]any{"ciphertext": "vault:v1:AAAA"}, 400, "key type ed25519 does not support decryption")
}

func TestEncryptUpsert(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ct := h.encrypt("fresh", "x")
	if info := h.ok(core.OpRead, "keys/fresh", nil); info["type"] != "aes256-gcm96" || info["derived"] != false {
		t.Fatalf("upserted key: %v", info)
	}
	h.encrypt("fresh-cc", "x", "type", "chacha20-poly1305", "convergent_encryption", true, "context", b64("c"))
	if info := h.ok(core.OpRead, "keys/fresh-cc", nil); info["type"] != "chacha20-poly1305" || info["derived"] != true || info["convergent_encryption"] != true {
		t.Fatalf("upserted convergent key: %v", info)
	}
	h.fails(core.OpWrite, "encrypt/fresh-ec", map[string]any{"plaintext": b64("x"), "type": "ecdsa-p256"}, 400, "key type ecdsa-p256 not supported for this operation: create the key first")
	if got := h.decrypt("fresh", ct); got != "x" {
		t.Fatalf("decrypt = %q", got)
	}
}

func TestRotateCrossVersionAndMinVersions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	var cts []string
	for v := 1; v <= 3; v++ {
		if v > 1 {
			h.ok(core.OpWrite, "keys/k/rotate", nil)
		}
		cts = append(cts, h.encrypt("k", fmt.Sprintf("secret %d", v)))
		if !strings.HasPrefix(cts[v-1], fmt.Sprintf("vault:v%d:", v)) {
			t.Fatalf("encryption after %d rotations: %s", v-1, cts[v-1])
		}
	}
	for i, ct := range cts {
		if got := h.decrypt("k", ct); got != fmt.Sprintf("secret %d", i+1) {
			t.Fatalf("version %d decrypts to %q", i+1, got)
		}
	}
	// Encrypt with an older version on request.
	if out := h.ok(core.OpWrite, "encrypt/k", map[string]any{"plaintext": b64("old"), "key_version": 1}); num(t, out["key_version"]) != 1 {
		t.Fatalf("key_version 1: %v", out)
	}
	h.fails(core.OpWrite, "encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 4}, 400, "requested version for encryption is higher than the latest key version")

	// Rewrap moves v1 to v3 without showing the plaintext.
	out := h.ok(core.OpWrite, "rewrap/k", map[string]any{"ciphertext": cts[0]})
	if num(t, out["key_version"]) != 3 || !strings.HasPrefix(str(t, out["ciphertext"]), "vault:v3:") || out["plaintext"] != nil {
		t.Fatalf("rewrap answered %v", out)
	}
	if got := h.decrypt("k", str(t, out["ciphertext"])); got != "secret 1" {
		t.Fatalf("rewrapped decrypts to %q", got)
	}

	// min_decryption_version retires old ciphertexts; lowering it again
	// brings them back (the material is kept).
	h.ok(core.OpWrite, "keys/k/config", map[string]any{"min_decryption_version": 2})
	h.fails(core.OpWrite, "decrypt/k", map[string]any{"ciphertext": cts[0]}, 400, "ciphertext or signature version is disallowed by policy (too old)")
	h.fails(core.OpWrite, "rewrap/k", map[string]any{"ciphertext": cts[0]}, 400, "ciphertext or signature version is disallowed by policy (too old)")
	h.fails(core.OpWrite, "encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 1}, 400, "requested version for encryption is less than the minimum decryption version, so the result could not be decrypted")
	if got := h.decrypt("k", cts[1]); got != "secret 2" {
		t.Fatalf("v2 after min_decryption_version=2: %q", got)
	}
	h.ok(core.OpWrite, "keys/k/config", map[string]any{"min_encryption_version": 3})
	h.fails(core.OpWrite, "encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 2}, 400, "requested version for encryption is less than the minimum encryption key version")
	h.ok(core.OpWrite, "keys/k/config", map[string]any{"min_decryption_version": 1, "min_encryption_version": 0})
	if got := h.decrypt("k", cts[0]); got != "secret 1" {
		t.Fatalf("v1 after lowering min_decryption_version: %q", got)
	}
}

func TestDerivedAndConvergent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, typ := range []string{"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"} {
		t.Run(typ, func(t *testing.T) {
			h := h.on(t)
			name := "conv-" + typ
			h.create(name, typ, "derived", true, "convergent_encryption", true)
			ctxA, ctxB := b64("tenant-a"), b64("tenant-b")
			a1 := h.encrypt(name, "same", "context", ctxA)
			if a2 := h.encrypt(name, "same", "context", ctxA); a2 != a1 {
				t.Fatalf("convergent encryption differs: %s vs %s", a1, a2)
			}
			if b := h.encrypt(name, "same", "context", ctxB); b == a1 {
				t.Fatal("two contexts give the same ciphertext")
			}
			if o := h.encrypt(name, "other", "context", ctxA); o == a1 {
				t.Fatal("two plaintexts give the same ciphertext")
			}
			if ad := h.encrypt(name, "same", "context", ctxA, "associated_data", b64("row 7")); ad == a1 || ad[9:9+16] == a1[9:9+16] {
				t.Fatal("associated data does not change the convergent nonce")
			}
			if got := h.decrypt(name, a1, "context", ctxA); got != "same" {
				t.Fatalf("decrypt = %q", got)
			}
			h.fails(core.OpWrite, "decrypt/"+name, map[string]any{"ciphertext": a1, "context": ctxB}, 400, msgAuthFailed)
			h.fails(core.OpWrite, "decrypt/"+name, map[string]any{"ciphertext": a1}, 400, msgMissingContext)
			h.fails(core.OpWrite, "encrypt/"+name, map[string]any{"plaintext": b64("x")}, 400, msgMissingContext)
			// After a rotation the same plaintext converges on the new version.
			h.ok(core.OpWrite, "keys/"+name+"/rotate", nil)
			v2 := h.encrypt(name, "same", "context", ctxA)
			if !strings.HasPrefix(v2, "vault:v2:") || v2 != h.encrypt(name, "same", "context", ctxA) {
				t.Fatalf("after rotation: %s", v2)
			}
		})
	}
	// A derived, non-convergent key: random nonces, per-context keys.
	h.create("derived", "aes256-gcm96", "derived", true)
	c := h.encrypt("derived", "p", "context", b64("c1"))
	if c == h.encrypt("derived", "p", "context", b64("c1")) {
		t.Fatal("non-convergent derived key repeats a ciphertext")
	}
	h.fails(core.OpWrite, "decrypt/derived", map[string]any{"ciphertext": c, "context": b64("c2")}, 400, msgAuthFailed)
}

func TestAssociatedData(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	ct := h.encrypt("k", "p", "associated_data", b64("row 1"))
	if got := h.decrypt("k", ct, "associated_data", b64("row 1")); got != "p" {
		t.Fatalf("decrypt = %q", got)
	}
	h.fails(core.OpWrite, "decrypt/k", map[string]any{"ciphertext": ct, "associated_data": b64("row 2")}, 400, msgAuthFailed)
	h.fails(core.OpWrite, "decrypt/k", map[string]any{"ciphertext": ct}, 400, msgAuthFailed)
}

func TestDatakey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	for _, tc := range []struct {
		kind string
		bits any
		n    int
	}{{"plaintext", nil, 32}, {"plaintext", 128, 16}, {"plaintext", "512", 64}, {"wrapped", nil, 32}} {
		body := map[string]any{}
		if tc.bits != nil {
			body["bits"] = tc.bits
		}
		out := h.ok(core.OpWrite, "datakey/"+tc.kind+"/k", body)
		pt := h.decrypt("k", str(t, out["ciphertext"]))
		if len(pt) != tc.n || num(t, out["key_version"]) != 1 {
			t.Fatalf("%s %v: %d-byte key, answer %v", tc.kind, tc.bits, len(pt), out)
		}
		if tc.kind == "plaintext" {
			if raw, _ := base64.StdEncoding.DecodeString(str(t, out["plaintext"])); string(raw) != pt {
				t.Fatal("datakey plaintext does not match its ciphertext")
			}
		} else if out["plaintext"] != nil {
			t.Fatal("wrapped datakey answered the plaintext")
		}
	}
	h.fails(core.OpWrite, "datakey/plaintext/k", map[string]any{"bits": 64}, 400, "invalid bits value 64: use 128, 256 or 512")
	h.fails(core.OpWrite, "datakey/raw/k", nil, 400, `invalid datakey type "raw": use datakey/plaintext/<key> or datakey/wrapped/<key>`)
	h.fails(core.OpWrite, "datakey/wrapped/nope", nil, 400, "encryption key not found")
}

// TestBadInput is the bad-input catalogue: every one is a clear 400.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"max_input_size": "1024"})
	h.create("k", "aes256-gcm96")
	h.create("other", "aes256-gcm96")
	good := h.encrypt("k", "hello")
	foreign := h.encrypt("other", "hello")
	_, body, _ := parseVersioned(good, "ciphertext", base64.StdEncoding)
	truncated := formatVersioned(1, body[:len(body)-1], base64.StdEncoding)
	short := formatVersioned(1, body[:8], base64.StdEncoding)
	for _, tc := range []struct {
		name string
		path string
		body any
		msg  string
	}{
		{"no plaintext", "encrypt/k", `{}`, "missing plaintext to encrypt"},
		{"plaintext not base64", "encrypt/k", `{"plaintext":"not base64!"}`, "failed to base64-decode plaintext: illegal base64 data at input byte 3"},
		{"plaintext object", "encrypt/k", `{"plaintext":{}}`, `error converting input for field "plaintext": '' expected type 'string', got unconvertible type 'map[string]interface {}'`},
		{"plaintext over limit", "encrypt/k", map[string]any{"plaintext": b64(strings.Repeat("x", 1025))}, "plaintext is 1025 bytes, more than this mount's limit of 1024 bytes (mount option max_input_size)"},
		{"plaintext far over limit", "encrypt/k", map[string]any{"plaintext": b64(strings.Repeat("x", 4096))}, "plaintext is larger than this mount's limit of 1024 bytes (mount option max_input_size)"},
		{"context not base64", "encrypt/k", `{"plaintext":"","context":"%%"}`, "failed to base64-decode context: ..."},
		{"nonce", "encrypt/k", `{"plaintext":"","nonce":"AAAA"}`, "nonce is not accepted: convergent keys derive their nonce from the plaintext (convergent encryption version 3)"},
		{"pkcs1v15 padding", "encrypt/k", `{"plaintext":"","padding_scheme":"pkcs1v15"}`, `padding_scheme "pkcs1v15" is not supported: RSA keys encrypt with OAEP (SHA-256)`},
		{"bad key_version", "encrypt/k", `{"plaintext":"","key_version":"x"}`, `error converting input for field "key_version": cannot parse "x" as an integer`},
		{"negative key_version", "encrypt/k", `{"plaintext":"","key_version":-1}`, "key_version -1 is out of range"},
		{"no ciphertext", "decrypt/k", `{}`, "missing ciphertext to decrypt"},
		{"no prefix", "decrypt/k", `{"ciphertext":"abc"}`, "invalid ciphertext: no prefix"},
		{"no version field", "decrypt/k", `{"ciphertext":"vault:v1"}`, "invalid ciphertext: wrong number of fields"},
		{"version not a number", "decrypt/k", `{"ciphertext":"vault:vX:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"version zero", "decrypt/k", `{"ciphertext":"vault:v0:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"huge version", "decrypt/k", `{"ciphertext":"vault:v99999999999999999999:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"unknown version", "decrypt/k", `{"ciphertext":"vault:v7:AAAA"}`, "invalid ciphertext: version is too new"},
		{"bad base64", "decrypt/k", `{"ciphertext":"vault:v1:@@@@"}`, "invalid ciphertext: could not decode base64"},
		{"truncated", "decrypt/k", map[string]any{"ciphertext": truncated}, msgAuthFailed},
		{"shorter than a nonce", "decrypt/k", map[string]any{"ciphertext": short}, "invalid ciphertext: too short"},
		{"foreign key", "decrypt/k", map[string]any{"ciphertext": foreign}, msgAuthFailed},
		{"ciphertext over limit", "decrypt/k", map[string]any{"ciphertext": "vault:v1:" + strings.Repeat("A", 4096)}, "ciphertext is longer than any this mount produces (mount option max_input_size is 1024 bytes)"},
		{"slash in name", "decrypt/a/b", `{"ciphertext":"vault:v1:AAAA"}`, `invalid key name "a/b": key names cannot contain "/"`},
		{"unknown key", "decrypt/nope", `{"ciphertext":"vault:v1:AAAA"}`, "encryption key not found"},
		{"batch not a list", "encrypt/k", `{"batch_input":{"plaintext":""}}`, `error converting input for field "batch_input": '' expected type '[]interface {}', got unconvertible type 'map[string]interface {}'`},
		{"batch item not an object", "decrypt/k", `{"batch_input":["x"]}`, `error converting input for field "batch_input": item 0: ...`},
		{"empty batch", "encrypt/k", `{"batch_input":[]}`, "missing batch input to process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.on(t)
			h.fails(core.OpWrite, tc.path, tc.body, 400, tc.msg)
		})
	}
	if got := h.decrypt("k", good); got != "hello" {
		t.Fatalf("good ciphertext after the bad ones: %q", got)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	out := h.ok(core.OpWrite, "encrypt/k", map[string]any{"batch_input": []any{
		map[string]any{"plaintext": b64("a"), "reference": "one"},
		map[string]any{"plaintext": b64("b")},
	}})
	res := out["batch_results"].([]any)
	if len(res) != 2 {
		t.Fatalf("batch_results = %v", res)
	}
	var cts []any
	for i, r := range res {
		m := r.(map[string]any)
		if num(t, m["key_version"]) != 1 || m["reference"] != []string{"one", ""}[i] || m["error"] != nil {
			t.Fatalf("item %d: %v", i, m)
		}
		cts = append(cts, map[string]any{"ciphertext": m["ciphertext"], "reference": fmt.Sprint(i)})
	}

	// One bad item: 400 with every item answered, the bad one in place.
	cts = append(cts, map[string]any{"ciphertext": "vault:v9:AAAA", "reference": "bad"})
	resp, err := h.do(core.OpWrite, "decrypt/k", map[string]any{"batch_input": cts})
	if err != nil {
		t.Fatal(err)
	}
	got := wire(t, resp.Data)["batch_results"].([]any)
	want := []any{
		map[string]any{"plaintext": b64("a"), "reference": "0"},
		map[string]any{"plaintext": b64("b"), "reference": "1"},
		map[string]any{"plaintext": "", "error": "invalid ciphertext: version is too new", "reference": "bad"},
	}
	if resp.Status != 400 || !reflect.DeepEqual(got, want) {
		t.Fatalf("partial failure: status %d\n%v\nwant\n%v", resp.Status, got, want)
	}
	// partial_failure_response_code overrides the status when some succeeded.
	resp, err = h.do(core.OpWrite, "decrypt/k", map[string]any{"batch_input": cts, "partial_failure_response_code": 207})
	if err != nil || resp.Status != 207 {
		t.Fatalf("partial_failure_response_code: %v %v", resp, err)
	}
	resp, err = h.do(core.OpWrite, "decrypt/k", map[string]any{"batch_input": cts[2:], "partial_failure_response_code": 207})
	if err != nil || resp.Status != 400 {
		t.Fatalf("all failed with partial_failure_response_code: %v %v", resp, err)
	}

	// Rewrap batches too.
	out = h.ok(core.OpWrite, "rewrap/k", map[string]any{"batch_input": cts[:2]})
	if n := len(out["batch_results"].([]any)); n != 2 {
		t.Fatalf("rewrap batch: %v", out)
	}
}

func TestBatchLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	items := make([]any, 10_000)
	for i := range items {
		items[i] = map[string]any{"plaintext": b64("x")}
	}
	h.fails(core.OpWrite, "encrypt/k", map[string]any{"batch_input": items}, 400,
		"batch_input has 10000 items; the limit is 1000 per request (mount option max_batch_size): split the batch")
	h.fails(core.OpWrite, "decrypt/k", map[string]any{"batch_input": items}, 400, "batch_input has 10000 items; ...")

	// At the limit every item is processed, each bad one on its own.
	big := newHarness(t, map[string]string{"max_batch_size": "10000"})
	big.create("k", "aes256-gcm96")
	for i := range items {
		if i%1000 == 999 {
			items[i] = map[string]any{"plaintext": "!"}
		}
	}
	resp, err := big.do(core.OpWrite, "encrypt/k", map[string]any{"batch_input": items})
	if err != nil {
		t.Fatal(err)
	}
	res := wire(t, resp.Data)["batch_results"].([]any)
	failed := 0
	for _, r := range res {
		if r.(map[string]any)["error"] != nil {
			failed++
		}
	}
	if resp.Status != 400 || len(res) != 10_000 || failed != 10 {
		t.Fatalf("10,000-item batch: status %d, %d results, %d failed", resp.Status, len(res), failed)
	}
}

// TestWarnings: fields the endpoint knows raise no warning, others do.
func TestWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "aes256-gcm96")
	resp, err := h.do(core.OpWrite, "encrypt/k", map[string]any{"plaintext": "", "type": "aes256-gcm96", "reference": "r", "padding_scheme": "oaep", "colour": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Endpoint ignored these unrecognized parameters: [colour]"}; !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
}
