package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/api"
	"github.com/cofferhq/coffer/internal/servertest"
)

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// transitData posts body to path and returns the status and the
// envelope's data (or errors).
func transitPost(t *testing.T, c *api.Client, path string, body any) (int, map[string]any, []string) {
	t.Helper()
	status, raw, err := c.Raw(t.Context(), "POST", path, nil, body, nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	var env struct {
		Data   map[string]any `json:"data"`
		Errors []string       `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("POST %s: %d %q", path, status, raw)
	}
	return status, env.Data, env.Errors
}

// TestTransitHTTP drives the transit engine through a real server: the
// Vault wire shapes of vault-api.md 4.8, the write-only principal, the
// bad-input catalogue, and keys that survive a restart with nothing
// secret on disk.
func TestTransitHTTP(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	c, res := initServer(t, p, 1, 1)
	ctx := t.Context()
	if err := c.Sys().Mount(ctx, "transit", api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}

	st, key, _ := transitPost(t, c, "transit/keys/app-key", map[string]any{"type": "aes256-gcm96"})
	if st != 200 || key["type"] != "aes256-gcm96" || key["latest_version"] != float64(1) || key["min_decryption_version"] != float64(1) ||
		key["exportable"] != false || key["supports_encryption"] != true || key["auto_rotate_period"] != float64(0) {
		t.Fatalf("key create: %d %v", st, key)
	}
	const secret = "hello coffer, MARKER-9d2e"
	st, enc, _ := transitPost(t, c, "transit/encrypt/app-key", map[string]any{"plaintext": b64s(secret)})
	ct1, _ := enc["ciphertext"].(string)
	if st != 200 || !strings.HasPrefix(ct1, "vault:v1:") || enc["key_version"] != float64(1) {
		t.Fatalf("encrypt: %d %v", st, enc)
	}
	if _, dec, _ := transitPost(t, c, "transit/decrypt/app-key", map[string]any{"ciphertext": ct1}); dec["plaintext"] != b64s(secret) {
		t.Fatalf("decrypt: %v", dec)
	}
	if _, rot, _ := transitPost(t, c, "transit/keys/app-key/rotate", nil); rot["latest_version"] != float64(2) || len(rot["keys"].(map[string]any)) != 2 {
		t.Fatalf("rotate: %v", rot)
	}
	_, rw, _ := transitPost(t, c, "transit/rewrap/app-key", map[string]any{"ciphertext": ct1})
	ct2, _ := rw["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") || rw["key_version"] != float64(2) {
		t.Fatalf("rewrap: %v", rw)
	}
	if _, dk, _ := transitPost(t, c, "transit/datakey/plaintext/app-key", map[string]any{"bits": 256}); dk["key_version"] != float64(2) || dk["plaintext"] == nil {
		t.Fatalf("datakey: %v", dk)
	}
	_, batch, _ := transitPost(t, c, "transit/encrypt/app-key", map[string]any{"batch_input": []any{map[string]any{"plaintext": "YQ=="}, map[string]any{"plaintext": "Yg=="}}})
	if res := batch["batch_results"].([]any); len(res) != 2 || res[1].(map[string]any)["reference"] != "" || res[1].(map[string]any)["key_version"] != float64(2) {
		t.Fatalf("batch encrypt: %v", batch)
	}
	// A batch with a bad item: 400, every item answered.
	st, bad, _ := transitPost(t, c, "transit/decrypt/app-key", map[string]any{"batch_input": []any{map[string]any{"ciphertext": ct2}, map[string]any{"ciphertext": "vault:v9:AAAA"}}})
	if res, _ := bad["batch_results"].([]any); st != 400 || len(res) != 2 || res[1].(map[string]any)["error"] != "invalid ciphertext: version is too new" {
		t.Fatalf("batch with a bad item: %d %v", st, bad)
	}

	// The write-only principal: it may encrypt with app-key, nothing else.
	mustWrite(t, ctx, c, "sys/policies/acl/encrypt-only", map[string]any{"policy": `path "transit/encrypt/app-key" { capabilities = ["update"] }`})
	tok, err := c.Logical().Write(ctx, "auth/token/create", map[string]any{"policies": []string{"encrypt-only"}, "ttl": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	w := client(t, p.Addr, tok.Auth.ClientToken)
	st, wenc, _ := transitPost(t, w, "transit/encrypt/app-key", map[string]any{"plaintext": b64s("write only")})
	if st != 200 || !strings.HasPrefix(wenc["ciphertext"].(string), "vault:v2:") {
		t.Fatalf("encrypt-only principal could not encrypt: %d %v", st, wenc)
	}
	for _, path := range []string{"transit/decrypt/app-key", "transit/rewrap/app-key", "transit/encrypt/other-key", "transit/keys/app-key/rotate", "transit/datakey/plaintext/app-key"} {
		st, _, errs := transitPost(t, w, path, map[string]any{"ciphertext": wenc["ciphertext"], "plaintext": b64s("x")})
		if st != 403 || len(errs) != 1 || !strings.Contains(errs[0], "permission denied") {
			t.Errorf("encrypt-only principal on %s: %d %v, want 403", path, st, errs)
		}
	}
	if st, _, _ := w.Raw(ctx, "GET", "transit/keys/app-key", nil, nil, nil); st != 403 {
		t.Errorf("encrypt-only principal read the key: %d", st)
	}
	// ... while the owner decrypts what it wrote.
	if _, dec, _ := transitPost(t, c, "transit/decrypt/app-key", map[string]any{"ciphertext": wenc["ciphertext"]}); dec["plaintext"] != b64s("write only") {
		t.Fatalf("owner decrypt of the write-only ciphertext: %v", dec)
	}

	// Bad input: each a clear 400 from the real server.
	items := make([]any, 10_000)
	for i := range items {
		items[i] = map[string]any{"plaintext": "YQ=="}
	}
	for _, tc := range []struct {
		name, path string
		body       any
		want       string
	}{
		{"unknown version", "transit/decrypt/app-key", map[string]any{"ciphertext": "vault:v7:AAAA"}, "invalid ciphertext: version is too new"},
		{"truncated", "transit/decrypt/app-key", map[string]any{"ciphertext": ct2[:len(ct2)-8]}, "cipher: message authentication failed"},
		{"foreign", "transit/decrypt/app-key", map[string]any{"ciphertext": "vault:v1:" + strings.Repeat("A", 64)}, "cipher: message authentication failed"},
		{"bad base64", "transit/decrypt/app-key", map[string]any{"ciphertext": "vault:v1:***"}, "invalid ciphertext: could not decode base64"},
		{"plaintext not base64", "transit/encrypt/app-key", map[string]any{"plaintext": "***"}, "failed to base64-decode plaintext: illegal base64 data at input byte 0"},
		{"plaintext over the limit", "transit/encrypt/app-key", map[string]any{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 1<<20+1))}, "plaintext is 1048577 bytes, more than this mount's limit of 1048576 bytes (mount option max_input_size)"},
		{"10,000 items", "transit/encrypt/app-key", map[string]any{"batch_input": items}, "batch_input has 10000 items; the limit is 1000 per request (mount option max_batch_size): split the batch"},
		{"slash in name", "transit/encrypt/a/b", map[string]any{"plaintext": "YQ=="}, `invalid key name "a/b": key names cannot contain "/"`},
		{"slash in key create", "transit/keys/team/app", map[string]any{}, `invalid key name "team/app": key names cannot contain "/"`},
	} {
		st, _, errs := transitPost(t, c, tc.path, tc.body)
		if st != 400 || len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("%s: %d %v, want 400 %q", tc.name, st, errs, tc.want)
		}
	}

	// Keys survive a restart; nothing secret reached the disk or the log.
	p.Restart(false)
	unseal(t, c, res.KeysBase64)
	for _, ct := range []string{ct1, ct2} {
		if _, dec, errs := transitPost(t, c, "transit/decrypt/app-key", map[string]any{"ciphertext": ct}); dec["plaintext"] != b64s(secret) {
			t.Fatalf("decrypt after restart: %v %v", dec, errs)
		}
	}
	p.Stop()
	db, err := os.ReadFile(filepath.Join(p.Dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{secret, b64s(secret), "write only", b64s("write only")} {
		if bytes.Contains(db, []byte(n)) || strings.Contains(p.Logs(), n) {
			t.Errorf("%q found in the database or the log", n)
		}
	}
}

// TestTransitCLI drives `coffer transit` against a real server: keys
// commands, encrypt and decrypt of an argument, a binary file and
// standard input, sign/verify and hmac.
func TestTransitCLI(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	cli := newCLISession(t, p.Addr, "root")
	run, ok, home := cli.run, cli.ok, cli.home
	ok("", "secrets", "enable", "transit")
	if r := ok("", "transit", "keys", "create", "-format=json", "app"); !strings.Contains(r.stdout, `"latest_version": 1`) {
		t.Fatalf("keys create: %s", r.stdout)
	}
	ok("", "transit", "keys", "create", "-type=ed25519", "signer")

	// An argument.
	ct := strings.TrimSpace(ok("", "transit", "encrypt", "app", "hello").stdout)
	if !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("encrypt: %q", ct)
	}
	if r := ok("", "transit", "decrypt", "app", ct); r.stdout != "hello" {
		t.Fatalf("decrypt: %q", r.stdout)
	}
	// A binary file, round trip through files.
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	in, enc, out := filepath.Join(home, "blob.bin"), filepath.Join(home, "blob.enc"), filepath.Join(home, "blob.out")
	if err := os.WriteFile(in, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	ok("", "transit", "encrypt", "-in", in, "-out", enc, "app")
	ok("", "transit", "decrypt", "-in", enc, "-out", out, "app")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, blob) {
		t.Fatal("file round trip changed the bytes")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Fatalf("decrypted file mode %v", fi.Mode())
	}
	// Standard input both ways, after a rotation.
	ok("", "transit", "keys", "rotate", "app")
	ct2 := ok("from stdin\x00\n", "transit", "encrypt", "app").stdout
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("stdin encrypt: %q", ct2)
	}
	if r := ok(ct2, "transit", "decrypt", "app", "-in", "-"); r.stdout != "from stdin\x00\n" {
		t.Fatalf("stdin decrypt: %q", r.stdout)
	}
	if r := ok(ct, "transit", "decrypt", "app"); r.stdout != "hello" {
		t.Fatalf("v1 after rotation: %q", r.stdout)
	}

	// keys read / list / config / delete.
	if r := ok("", "transit", "keys", "read", "-format=json", "app"); !strings.Contains(r.stdout, `"latest_version": 2`) {
		t.Fatalf("keys read: %s", r.stdout)
	}
	if r := ok("", "transit", "keys", "list", "-format=json"); !strings.Contains(r.stdout, `"app"`) || !strings.Contains(r.stdout, `"signer"`) {
		t.Fatalf("keys list: %s", r.stdout)
	}
	ok("", "transit", "keys", "config", "-min-decryption-version=2", "app")
	if r := run("", "transit", "decrypt", "app", ct); r.code != 1 || !strings.Contains(r.stderr, "disallowed by policy (too old)") {
		t.Fatalf("decrypt below min_decryption_version: %d %s", r.code, r.stderr)
	}
	if r := run("", "transit", "keys", "delete", "app"); r.code != 1 || !strings.Contains(r.stderr, "deletion is not allowed") {
		t.Fatalf("delete without deletion_allowed: %d %s", r.code, r.stderr)
	}
	ok("", "transit", "keys", "config", "-deletion-allowed", "app")
	ok("", "transit", "keys", "delete", "app")
	if r := run("", "transit", "keys", "read", "app"); r.code != 1 {
		t.Fatalf("read of a deleted key: %d %s", r.code, r.stderr)
	}

	// sign / verify / hmac.
	sig := strings.TrimSpace(ok("document", "transit", "sign", "signer").stdout)
	if r := ok("", "transit", "verify", "-signature", sig, "signer", "document"); r.stdout != "valid\n" {
		t.Fatalf("verify: %q", r.stdout)
	}
	if r := run("", "transit", "verify", "-signature", sig, "signer", "forged"); r.code != 1 || !strings.Contains(r.stderr, "does not match") {
		t.Fatalf("verify of another input: %d %q", r.code, r.stderr)
	}
	mac := strings.TrimSpace(ok("", "transit", "hmac", "-algorithm=sha2-512", "signer", "data").stdout)
	if r := ok("", "transit", "verify", "-hash-algorithm=sha2-512", "-hmac", mac, "signer", "data"); r.stdout != "valid\n" {
		t.Fatalf("hmac verify: %q", r.stdout)
	}
	if r := run("", "transit", "verify", "signer", "data"); r.code != 2 {
		t.Fatalf("verify without -signature: %d", r.code)
	}
	if r := run("", "transit", "encrypt", "-in", "/nonexistent", "signer"); r.code != 1 || !strings.Contains(r.stderr, "read -in") {
		t.Fatalf("encrypt of a missing file: %d %s", r.code, r.stderr)
	}
}
