package kv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/enginetest"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// t0 is the harness clock's start (the time of the write in vault-api.md).
var t0 = time.Date(2026, 11, 22, 13, 36, 40, 648750381, time.UTC)

// harness is one mount of the engine on a fresh in-memory store, driven
// through its routes the way the core drives it.
type harness struct {
	t      testing.TB
	e      *Engine
	store  storage.Backend // the mount's view
	routes []core.Route
	clock  *enginetest.Clock
}

func newHarness(t testing.TB, opts map[string]string) *harness {
	t.Helper()
	return newHarnessOn(t, storage.NewView(inmem.New(), "logical/6a1e0d2c/"), opts)
}

func newHarnessOn(t testing.TB, store storage.Backend, opts map[string]string) *harness {
	t.Helper()
	b, err := New(t.Context(), core.BackendConfig{Storage: store, MountPath: "secret/", Options: opts})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := b.(*Engine)
	h := &harness{t: t, e: e, store: store, routes: e.Routes(), clock: enginetest.NewClock(t0)}
	e.now = h.clock.Now
	t.Cleanup(func() { checkConsistency(t, store) })
	return h
}

// do runs one request through the engine's routes, as the core does.
func (h *harness) do(op core.Operation, path string, body any, query ...string) (*core.Response, error) {
	h.t.Helper()
	return enginetest.Do(h.t, h.routes, "secret/", op, path, body, query...)
}

// ok runs a request that must succeed and returns its data as a client
// decodes it (numbers as json.Number).
func (h *harness) ok(op core.Operation, path string, body any, query ...string) map[string]any {
	h.t.Helper()
	return enginetest.OK(h.t, h.routes, "secret/", op, path, body, query...)
}

// noContent runs a request that must answer 204.
func (h *harness) noContent(op core.Operation, path string, body any) {
	h.t.Helper()
	resp, err := h.do(op, path, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil {
		h.t.Fatalf("%s %s: want 204, got %+v", op, path, resp)
	}
}

// gone runs a request that must answer 404 with data and returns the data.
func (h *harness) gone(op core.Operation, path string, query ...string) map[string]any {
	h.t.Helper()
	resp, err := h.do(op, path, nil, query...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp == nil || !resp.NotFoundWithData {
		h.t.Fatalf("%s %s: want 404 with data, got %+v", op, path, resp)
	}
	return wire(h.t, resp.Data)
}

// fails runs a request that must fail with status and message (a prefix
// when msg ends in "...").
func (h *harness) fails(op core.Operation, path string, body any, status int, msg string, query ...string) {
	h.t.Helper()
	_, err := h.do(op, path, body, query...)
	checkErr(h.t, err, status, msg)
}

// Shorthands for the enginetest helpers.
var (
	checkErr = enginetest.CheckErr
	wire     = enginetest.Wire
	num      = enginetest.Num
)

// write stores data at path and returns the new version number.
func (h *harness) write(path string, data map[string]any) int {
	h.t.Helper()
	out := h.ok(core.OpWrite, "data/"+path, map[string]any{"data": data})
	return num(h.t, out["version"])
}

func obj(t testing.TB, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v (%T) is not an object", v, v)
	}
	return m
}

// checkConsistency asserts the storage invariants of the engine after a
// test: every stored version belongs to a metadata record that lists it
// as not destroyed, every such version has its data, and the version
// numbers lie between oldest_version and current_version.
func checkConsistency(t testing.TB, store storage.Backend) {
	t.Helper()
	ctx := context.Background()
	stored := map[string]bool{}
	var walk func(prefix string)
	walk = func(prefix string) {
		names, err := store.List(ctx, prefix)
		if err != nil {
			t.Errorf("consistency: list %q: %v", prefix, err)
			return
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(prefix + n)
			} else {
				stored[prefix+n] = true
			}
		}
	}
	walk(verPrefix)
	walk(metaPrefix)
	for key := range stored {
		p, ok := strings.CutPrefix(key, metaPrefix)
		if !ok {
			continue
		}
		raw, err := store.Get(ctx, key)
		if err != nil {
			t.Errorf("consistency: get %q: %v", key, err)
			continue
		}
		m, err := decodeKeyMeta(raw)
		if err != nil {
			t.Errorf("consistency: %v", err)
			continue
		}
		for n, v := range m.Versions {
			if n < m.OldestVersion || n > m.CurrentVersion || n == 0 {
				t.Errorf("consistency: %q version %d outside [%d, %d]", p, n, m.OldestVersion, m.CurrentVersion)
			}
			vk := versionKey(p, n)
			if v.Destroyed == stored[vk] {
				t.Errorf("consistency: %q version %d destroyed=%v but data stored=%v", p, n, v.Destroyed, stored[vk])
			}
			delete(stored, vk)
		}
	}
	for key := range stored {
		if strings.HasPrefix(key, verPrefix) {
			t.Errorf("consistency: version data %q belongs to no metadata record", key)
		}
	}
}

// TestStoreCheckEqual pins the one storage behaviour every write here
// relies on, so a store bug shows up as itself rather than as writes that
// "changed concurrently": a CheckEqual against the bytes just read holds,
// whatever their length.
func TestStoreCheckEqual(t *testing.T) {
	t.Parallel()
	store := newHarness(t, nil).store
	for _, v := range []string{"", "a", "ab", "abc", `{"current_version":1}`} {
		if err := store.Put(t.Context(), "probe", []byte(v)); err != nil {
			t.Fatal(err)
		}
		raw, err := store.Get(t.Context(), "probe")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Txn(t.Context(), []storage.Op{storage.CheckEqual("probe", raw)}); err != nil {
			t.Errorf("CheckEqual of the %d-byte value just read: %v", len(v), err)
		}
	}
}
