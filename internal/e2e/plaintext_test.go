package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestNothingSecretInPlaintext writes secrets, tokens and shares through
// a real server on bbolt, then greps the database file and the server's
// debug log for every one of them.
func TestNothingSecretInPlaintext(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	c, res := initServer(t, p, 5, 3)
	ctx := t.Context()
	const marker = "s3cr3t-MARKER-value-7f1c"
	const keyMarker = "MARKER_KEY_NAME_IS_FINE"
	mustWrite(t, ctx, c, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}})
	mustWrite(t, ctx, c, "secret/data/app/db", map[string]any{"data": map[string]any{"password": marker, keyMarker: marker + "-2"}})
	mustWrite(t, ctx, c, "cubbyhole/note", map[string]any{"text": marker + "-cubby"})
	tok, err := c.Logical().Write(ctx, "auth/token/create", map[string]any{"policies": []string{"default"}, "ttl": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	child := tok.Auth.ClientToken
	if err := c.Sys().Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ctx, c, "secret/data/app/db2", map[string]any{"data": map[string]any{"password": marker + "-after-rotate"}})
	p.Stop()

	db, err := os.ReadFile(filepath.Join(p.Dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	logs := []byte(p.Logs())
	needles := map[string][]byte{
		"secret value":     []byte(marker),
		"root token":       []byte(res.RootToken),
		"child token":      []byte(child),
		"child accessor":   []byte(tok.Auth.Accessor),
		"key name in data": []byte(keyMarker),
	}
	for i, k := range res.Keys {
		raw, _ := hex.DecodeString(k)
		needles["share hex "+string(rune('1'+i))] = []byte(k)
		needles["share b64 "+string(rune('1'+i))] = []byte(res.KeysBase64[i])
		needles["share raw "+string(rune('1'+i))] = raw[:len(raw)-1]
	}
	for name, n := range needles {
		if bytes.Contains(db, n) {
			t.Errorf("%s found in plaintext in the bbolt file", name)
		}
		if name != "key name in data" && bytes.Contains(logs, n) {
			t.Errorf("%s found in the server log", name)
		}
		// also base64 forms of secrets, as a careless encoder would write them
		if b64 := base64.StdEncoding.EncodeToString(n); len(n) > 8 && bytes.Contains(db, []byte(b64)) {
			t.Errorf("%s found base64-encoded in the bbolt file", name)
		}
	}
	if !strings.Contains(p.Logs(), "mount enabled") {
		t.Errorf("expected debug/info logs to be captured; got %d bytes", len(logs))
	}
}
