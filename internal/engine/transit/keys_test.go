package transit

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

func TestKeyCreateRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	info := h.ok(core.OpWrite, "keys/app-key", nil)
	want := map[string]any{
		"name": "app-key", "type": "aes256-gcm96",
		"keys":           map[string]any{"1": json.Number("1795354600")},
		"latest_version": json.Number("1"), "min_available_version": json.Number("0"),
		"min_decryption_version": json.Number("1"), "min_encryption_version": json.Number("0"),
		"deletion_allowed": false, "exportable": false, "allow_plaintext_backup": false,
		"derived": false, "imported_key": false, "auto_rotate_period": json.Number("0"), "soft_deleted": false,
		"supports_encryption": true, "supports_decryption": true, "supports_derivation": true, "supports_signing": false,
	}
	if !reflect.DeepEqual(info, want) {
		t.Fatalf("create answered\n%v\nwant\n%v", info, want)
	}
	if got := h.ok(core.OpRead, "keys/app-key", nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("read answered\n%v\nwant\n%v", got, want)
	}

	// Creating again changes nothing and warns, as Vault.
	resp, err := h.do(core.OpWrite, "keys/app-key", map[string]any{"type": "rsa-2048"})
	if err != nil {
		t.Fatal(err)
	}
	if got := wire(t, resp.Data); got["type"] != "aes256-gcm96" || !reflect.DeepEqual(resp.Warnings, []string{"key app-key already existed"}) {
		t.Fatalf("second create: %v %v", got["type"], resp.Warnings)
	}

	// Derived and convergent keys report their KDF.
	d := h.create("conv", "chacha20-poly1305", "derived", true, "convergent_encryption", "true")
	if d["kdf"] != "hkdf_sha256" || d["convergent_encryption"] != true || num(t, d["convergent_encryption_version"]) != 3 || d["derived"] != true {
		t.Fatalf("derived key info: %v", d)
	}

	// Asymmetric keys show public keys.
	ed := h.create("ed", "ed25519")
	v1 := ed["keys"].(map[string]any)["1"].(map[string]any)
	if v1["name"] != "ed25519" || len(str(t, v1["public_key"])) != 44 || v1["creation_time"] != "2026-11-22T13:36:40Z" {
		t.Fatalf("ed25519 version info: %v", v1)
	}
	if ed["supports_signing"] != true || ed["supports_encryption"] != false {
		t.Fatalf("ed25519 supports: %v", ed)
	}
	ec := h.create("ec", "ecdsa-p256")
	if v := ec["keys"].(map[string]any)["1"].(map[string]any); v["name"] != "P-256" || !strings.HasPrefix(str(t, v["public_key"]), "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("ecdsa version info: %v", v)
	}

	// A derived ed25519 key shows a public key only for a context.
	h.create("ed-derived", "ed25519", "derived", true)
	pk := func(q ...string) string {
		resp, err := h.do(core.OpRead, "keys/ed-derived", nil, q...)
		if err != nil {
			t.Fatal(err)
		}
		return wire(t, resp.Data)["keys"].(map[string]any)["1"].(map[string]any)["public_key"].(string)
	}
	if pk() != "" || pk("context", b64("a")) == "" || pk("context", b64("a")) == pk("context", b64("b")) {
		t.Fatal("derived ed25519 public keys: want none without context, one per context")
	}

	// Missing keys are 404s.
	h.fails(core.OpRead, "keys/nope", nil, 404, "")
}

func TestKeyCreateErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		path string
		body string
		msg  string
	}{
		{"unknown type", "keys/k", `{"type":"des"}`, `unknown key type "des" (known: ...`},
		{"convergent without derived", "keys/k", `{"convergent_encryption":true}`, "convergent encryption requires derivation to be enabled, so set derived=true too"},
		{"derived ecdsa", "keys/k", `{"type":"ecdsa-p256","derived":true}`, "key derivation not supported for keys of type ecdsa-p256"},
		{"convergent ed25519", "keys/k", `{"type":"ed25519","derived":true,"convergent_encryption":true}`, "convergent encryption not supported for keys of type ed25519"},
		{"rotate too often", "keys/k", `{"auto_rotate_period":"30m"}`, "auto rotate period must be 0 to disable or at least an hour, got 30m0s"},
		{"bad bool", "keys/k", `{"derived":"maybe"}`, `error converting input for field "derived": cannot parse "maybe" as a boolean`},
		{"slash in name", "keys/a/b", `{}`, `invalid key name "a/b": key names cannot contain "/"`},
		{"bad char", "keys/a%b", `{}`, `invalid key name "a%b": use letters, digits, ...`},
		{"leading dash", "keys/-a", `{}`, `invalid key name "-a": use letters, digits, ...`},
		{"trailing dot", "keys/a.", `{}`, `invalid key name "a.": use letters, digits, ...`},
		{"too long", "keys/" + strings.Repeat("a", 257), `{}`, `invalid key name "aaaa...`},
		{"not json object", "keys/k", `[1]`, `error converting input for field "(body)": ...`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.on(t)
			h.fails(core.OpWrite, tc.path, tc.body, 400, tc.msg)
		})
	}
	for _, ok := range []string{"a", "_", "a.b-c_d", "A1", strings.Repeat("z", 256)} {
		h.ok(core.OpWrite, "keys/"+ok, nil)
	}
}

func TestKeysListDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fails(core.OpList, "keys", nil, 404, "")
	for _, n := range []string{"b", "a", "c"} {
		h.ok(core.OpWrite, "keys/"+n, nil)
	}
	if got := h.ok(core.OpList, "keys", nil)["keys"]; !reflect.DeepEqual(got, []any{"a", "b", "c"}) {
		t.Fatalf("list = %v", got)
	}
	h.fails(core.OpDelete, "keys/a", nil, 400, "deletion is not allowed for this key: set deletion_allowed=true with keys/a/config first")
	if got := h.ok(core.OpWrite, "keys/a/config", map[string]any{"deletion_allowed": true}); got["deletion_allowed"] != true {
		t.Fatalf("config answered %v", got)
	}
	if resp, err := h.do(core.OpDelete, "keys/a", nil); err != nil || resp != nil {
		t.Fatalf("delete: %v %v", resp, err)
	}
	h.fails(core.OpRead, "keys/a", nil, 404, "")
	h.fails(core.OpDelete, "keys/a", nil, 404, "")
	h.fails(core.OpWrite, "decrypt/a", map[string]any{"ciphertext": "vault:v1:AAAA"}, 400, "encryption key not found")
	if got := h.ok(core.OpList, "keys", nil)["keys"]; !reflect.DeepEqual(got, []any{"b", "c"}) {
		t.Fatalf("list after delete = %v", got)
	}
}

func TestKeyRotateConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.ok(core.OpWrite, "keys/k", nil)
	for i := 2; i <= 4; i++ {
		h.clock.Advance(time.Hour)
		info := h.ok(core.OpWrite, "keys/k/rotate", nil)
		if num(t, info["latest_version"]) != i || len(info["keys"].(map[string]any)) != i {
			t.Fatalf("rotate %d: %v", i, info)
		}
	}
	h.fails(core.OpWrite, "keys/nope/rotate", nil, 400, "key not found")

	for _, tc := range []struct {
		name   string
		body   string
		status int
		msg    string
	}{
		{"min decrypt past latest", `{"min_decryption_version":5}`, 400, "cannot set min decryption version of 5, latest key version is 4"},
		{"min decrypt negative", `{"min_decryption_version":-1}`, 400, "min decryption version cannot be negative"},
		{"min encrypt past latest", `{"min_encryption_version":9}`, 400, "cannot set min encryption version of 9, latest key version is 4"},
		{"min encrypt negative", `{"min_encryption_version":-2}`, 400, "min encryption version cannot be negative"},
		{"encrypt below decrypt", `{"min_decryption_version":3,"min_encryption_version":2}`, 400, "min encryption version (2) should not be less than min decryption version (3)"},
		{"rotate period", `{"auto_rotate_period":"59m"}`, 400, "auto rotate period must be 0 to disable or at least an hour, got 59m0s"},
		{"bad int", `{"min_decryption_version":"two"}`, 400, `error converting input for field "min_decryption_version": cannot parse "two" as an integer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.on(t)
			h.fails(core.OpWrite, "keys/k/config", tc.body, tc.status, tc.msg)
		})
	}
	h.fails(core.OpWrite, "keys/nope/config", `{}`, 400, "no existing key named nope could be found")

	info := h.ok(core.OpWrite, "keys/k/config", map[string]any{
		"min_decryption_version": "2", "min_encryption_version": 3, "exportable": true, "auto_rotate_period": "24h",
	})
	if num(t, info["min_decryption_version"]) != 2 || num(t, info["min_encryption_version"]) != 3 ||
		info["exportable"] != true || num(t, info["auto_rotate_period"]) != 86400 {
		t.Fatalf("config answered %v", info)
	}
	h.fails(core.OpWrite, "keys/k/config", `{"exportable":false}`, 400, "exportability cannot be disabled after enabling")
	resp, err := h.do(core.OpWrite, "keys/k/config", `{"min_decryption_version":0,"colour":"red"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Endpoint ignored these unrecognized parameters: [colour]", "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"}
	if !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	// Changes survive a restart: a new engine on the same storage.
	e2, err := New(t.Context(), core.BackendConfig{Storage: h.store})
	if err != nil {
		t.Fatal(err)
	}
	k, err := e2.(*Engine).loadKey(t.Context(), "k")
	if err != nil || k.minDecrypt != 1 || k.minEncrypt != 3 || !k.exportable || k.autoRotate != 24*time.Hour || k.latest() != 4 {
		t.Fatalf("reloaded key: %+v %v", k, err)
	}
}

// TestAutoRotate runs Run in a synctest bubble: a key with a 1h period
// gets a version each hour, one without never does, and when Run ends
// the cached material is zeroed and requests are refused.
func TestAutoRotate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := storage.NewView(inmem.New(), "logical/x/")
		b, err := New(t.Context(), core.BackendConfig{Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		e := b.(*Engine)
		h := &harness{t: t, e: e, store: store, routes: e.Routes()}
		h.ok(core.OpWrite, "keys/hourly", map[string]any{"auto_rotate_period": "1h"})
		h.ok(core.OpWrite, "keys/still", nil)
		ct := h.encrypt("hourly", "before")

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		time.Sleep(3*time.Hour + 30*time.Second)
		synctest.Wait()
		if v := num(t, h.ok(core.OpRead, "keys/hourly", nil)["latest_version"]); v != 4 {
			t.Errorf("hourly key at version %d after 3h, want 4", v)
		}
		if v := num(t, h.ok(core.OpRead, "keys/still", nil)["latest_version"]); v != 1 {
			t.Errorf("key without a period rotated to %d", v)
		}
		if got := h.decrypt("hourly", ct); got != "before" {
			t.Errorf("old ciphertext decrypts to %q", got)
		}
		k, _ := e.loadKey(t.Context(), "hourly")
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, v := range k.versions {
			for _, b := range v.key.bytes() {
				if b != 0 {
					t.Fatal("key material not zeroed after Run ended")
				}
			}
		}
		if _, err := h.do(core.OpWrite, "encrypt/hourly", map[string]any{"plaintext": b64("x")}); err != core.ErrSealed {
			t.Fatalf("encrypt after close: %v", err)
		}
	})
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts map[string]string
		err  string
	}{
		{map[string]string{"max_input_size": "0", "colour": "red", "max_batch_size": "x"}, `transit: unknown option "colour" (known: max_input_size, max_batch_size)
option max_batch_size="x": want a positive number
option max_input_size="0": want a positive number`},
		{map[string]string{"max_input_size": "10", "max_batch_size": "2"}, ""},
	} {
		_, err := New(t.Context(), core.BackendConfig{Storage: storage.NewView(inmem.New(), "x/"), Options: tc.opts})
		if got := fmt.Sprint(err); tc.err != "" && got != tc.err || tc.err == "" && err != nil {
			t.Errorf("New(%v) = %v, want %q", tc.opts, err, tc.err)
		}
	}
}
