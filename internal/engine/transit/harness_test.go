package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/enginetest"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// t0 is the harness clock's start.
var t0 = time.Date(2026, 11, 22, 13, 36, 40, 0, time.UTC)

// harness is one mount of the engine on a fresh in-memory store, driven
// through its routes the way the core drives it.
type harness struct {
	t      testing.TB
	e      *Engine
	store  storage.Backend
	routes []core.Route
	clock  *enginetest.Clock
}

func newHarness(t testing.TB, opts map[string]string) *harness {
	t.Helper()
	store := storage.NewView(inmem.New(), "logical/7c1f0e2d/")
	b, err := New(t.Context(), core.BackendConfig{Storage: store, MountPath: "transit/", Options: opts})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := b.(*Engine)
	h := &harness{t: t, e: e, store: store, routes: e.Routes(), clock: enginetest.NewClock(t0)}
	e.now = h.clock.Now
	t.Cleanup(func() { checkConsistency(t, e) })
	return h
}

// on returns h reporting to t, a subtest's.
func (h *harness) on(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// do runs one request through the engine's routes, as the core does.
func (h *harness) do(op core.Operation, path string, body any, query ...string) (*core.Response, error) {
	h.t.Helper()
	return enginetest.Do(h.t, h.routes, "transit/", op, path, body, query...)
}

// ok runs a request that must succeed and returns its data as a client
// decodes it (numbers as json.Number).
func (h *harness) ok(op core.Operation, path string, body any, query ...string) map[string]any {
	h.t.Helper()
	return enginetest.OK(h.t, h.routes, "transit/", op, path, body, query...)
}

// fails runs a request that must fail with status and message (a prefix
// when msg ends in "...").
func (h *harness) fails(op core.Operation, path string, body any, status int, msg string) {
	h.t.Helper()
	_, err := h.do(op, path, body)
	checkErr(h.t, err, status, msg)
}

// Shorthands for the enginetest helpers.
var (
	checkErr = enginetest.CheckErr
	wire     = enginetest.Wire
	num      = enginetest.Num
)

func str(t testing.TB, v any) string {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v (%T) is not a string", v, v)
	}
	return s
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// create makes a key of type typ (plus extra fields) and returns its info.
func (h *harness) create(name, typ string, extra ...any) map[string]any {
	h.t.Helper()
	body := map[string]any{"type": typ}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	return h.ok(core.OpWrite, "keys/"+name, body)
}

// encrypt encrypts pt with key name and returns the ciphertext.
func (h *harness) encrypt(name, pt string, extra ...any) string {
	h.t.Helper()
	body := map[string]any{"plaintext": b64(pt)}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	return str(h.t, h.ok(core.OpWrite, "encrypt/"+name, body)["ciphertext"])
}

// decrypt decrypts ct with key name and returns the plaintext.
func (h *harness) decrypt(name, ct string, extra ...any) string {
	h.t.Helper()
	body := map[string]any{"ciphertext": ct}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	pt, err := base64.StdEncoding.DecodeString(str(h.t, h.ok(core.OpWrite, "decrypt/"+name, body)["plaintext"]))
	if err != nil {
		h.t.Fatalf("decrypt answered bad base64: %v", err)
	}
	return string(pt)
}

// checkConsistency asserts, after a test, that every stored key record
// decodes under its own name and that every cached key is exactly what
// storage holds: the cache never serves a key a write did not store.
func checkConsistency(t testing.TB, e *Engine) {
	t.Helper()
	ctx := context.Background()
	names, err := e.store.List(ctx, keyPrefix)
	if err != nil {
		t.Errorf("consistency: list: %v", err)
		return
	}
	stored := map[string][]byte{}
	for _, n := range names {
		raw, err := e.store.Get(ctx, keyPrefix+n)
		if err != nil {
			t.Errorf("consistency: get %q: %v", n, err)
			continue
		}
		k, err := decodeKey(raw)
		if err != nil {
			t.Errorf("consistency: %q: %v", n, err)
			continue
		}
		if k.name != n {
			t.Errorf("consistency: record at %q names %q", n, k.name)
		}
		stored[n] = raw
	}
	e.cacheMu.RLock()
	defer e.cacheMu.RUnlock()
	for n, k := range e.cache {
		if raw, ok := stored[n]; !ok || !bytes.Equal(raw, k.raw) {
			t.Errorf("consistency: cached key %q differs from storage (stored: %v)", n, ok)
		}
	}
}
