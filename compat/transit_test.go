package compat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestHashiCorpTransit drives the transit engine through the HashiCorp
// client's Logical(): key create and read, encrypt, decrypt, rotate,
// rewrap, batch, sign and verify, and the errors it turns into
// *vault.ResponseError.
func TestHashiCorpTransit(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	c := vaultClient(t, p.Addr, "root")
	ctx := t.Context()
	if err := c.Sys().MountWithContext(ctx, "transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	l := c.Logical()
	if _, err := l.WriteWithContext(ctx, "transit/keys/app-key", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	key, err := l.ReadWithContext(ctx, "transit/keys/app-key")
	if err != nil || key == nil {
		t.Fatalf("read key: %v %v", key, err)
	}
	// The client decodes numbers as json.Number (UseNumber).
	if v, ok := key.Data["latest_version"].(json.Number); !ok || v.String() != "1" || key.Data["type"] != "aes256-gcm96" {
		t.Fatalf("key read: %v", key.Data)
	}

	pt := base64.StdEncoding.EncodeToString([]byte("hello coffer"))
	enc, err := l.WriteWithContext(ctx, "transit/encrypt/app-key", map[string]any{"plaintext": pt})
	if err != nil {
		t.Fatal(err)
	}
	ct1, _ := enc.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct1, "vault:v1:") || enc.Data["key_version"] != json.Number("1") {
		t.Fatalf("encrypt: %v", enc.Data)
	}
	dec, err := l.WriteWithContext(ctx, "transit/decrypt/app-key", map[string]any{"ciphertext": ct1})
	if err != nil || dec.Data["plaintext"] != pt {
		t.Fatalf("decrypt: %v %v", dec, err)
	}

	rot, err := l.WriteWithContext(ctx, "transit/keys/app-key/rotate", nil)
	if err != nil || rot.Data["latest_version"] != json.Number("2") {
		t.Fatalf("rotate: %v %v", rot, err)
	}
	rw, err := l.WriteWithContext(ctx, "transit/rewrap/app-key", map[string]any{"ciphertext": ct1})
	if err != nil {
		t.Fatal(err)
	}
	ct2, _ := rw.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") || rw.Data["key_version"] != json.Number("2") {
		t.Fatalf("rewrap: %v", rw.Data)
	}
	if dec, err := l.WriteWithContext(ctx, "transit/decrypt/app-key", map[string]any{"ciphertext": ct2}); err != nil || dec.Data["plaintext"] != pt {
		t.Fatalf("decrypt rewrapped: %v %v", dec, err)
	}

	batch, err := l.WriteWithContext(ctx, "transit/encrypt/app-key", map[string]any{
		"batch_input": []map[string]any{{"plaintext": "YQ==", "reference": "a"}, {"plaintext": "Yg=="}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := batch.Data["batch_results"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["reference"] != "a" || !strings.HasPrefix(res[1].(map[string]any)["ciphertext"].(string), "vault:v2:") {
		t.Fatalf("batch encrypt: %v", batch.Data)
	}

	// Errors come back as *vault.ResponseError with Vault's texts.
	_, err = l.WriteWithContext(ctx, "transit/decrypt/app-key", map[string]any{"ciphertext": "vault:v9:AAAA"})
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || len(re.Errors) != 1 || re.Errors[0] != "invalid ciphertext: version is too new" {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := l.WriteWithContext(ctx, "transit/keys/app-key/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteWithContext(ctx, "transit/decrypt/app-key", map[string]any{"ciphertext": ct1}); statusOf(err) != 400 {
		t.Fatalf("decrypt below min_decryption_version: %v", err)
	}
	// A missing key reads as nil, nil, as the client's callers expect.
	if s, err := l.ReadWithContext(ctx, "transit/keys/nope"); s != nil || err != nil {
		t.Fatalf("read of a missing key: %v %v", s, err)
	}

	// Sign and verify with an ECDSA key.
	if _, err := l.WriteWithContext(ctx, "transit/keys/signer", map[string]any{"type": "ecdsa-p256"}); err != nil {
		t.Fatal(err)
	}
	sig, err := l.WriteWithContext(ctx, "transit/sign/signer/sha2-256", map[string]any{"input": pt})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := l.WriteWithContext(ctx, "transit/verify/signer/sha2-256", map[string]any{"input": pt, "signature": sig.Data["signature"]})
	if err != nil || ver.Data["valid"] != true {
		t.Fatalf("verify: %v %v", ver, err)
	}
}
