package kv

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// storedMeta reads a key's metadata record straight from storage.
func (h *harness) storedMeta(p string) *keyMeta {
	h.t.Helper()
	m, _, err := h.e.loadMeta(h.t.Context(), p)
	if err != nil || m == nil {
		h.t.Fatalf("load metadata %q: %v, %v", p, m, err)
	}
	return m
}

func (h *harness) stats() Stats {
	h.t.Helper()
	s, err := h.e.Stats(h.t.Context())
	if err != nil {
		h.t.Fatalf("Stats: %v", err)
	}
	return s
}

func TestHardExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.noContent(core.OpWrite, "metadata/exp", `{"expire_after":"1h"}`)
	out := h.ok(core.OpWrite, "data/exp", map[string]any{"data": map[string]any{"token": "t"}})
	if out["expires_at"] != "2026-11-22T14:36:40.648750381Z" || out["deletion_time"] != "" {
		t.Fatalf("write = %v", out)
	}
	h.write("plain", map[string]any{"a": "b"}) // no expiry: no expires_at on the wire
	if _, ok := h.ok(core.OpRead, "data/plain", nil)["metadata"].(map[string]any)["expires_at"]; ok {
		t.Fatal("expires_at on a version without expiry")
	}
	if s := h.stats(); s != (Stats{Keys: 2, Versions: 2}) {
		t.Fatalf("stats before expiry = %+v", s)
	}

	h.clock.Advance(time.Hour)
	got := h.gone(core.OpRead, "data/exp")
	if meta := obj(t, got["metadata"]); got["data"] != nil || meta["destroyed"] != true || meta["expires_at"] != "2026-11-22T14:36:40.648750381Z" {
		t.Fatalf("expired read = %v", got)
	}
	if v := obj(t, obj(t, h.ok(core.OpRead, "metadata/exp", nil)["versions"])["1"]); v["destroyed"] != true {
		t.Fatalf("expired version in metadata = %v", v)
	}
	if resp, err := h.do(core.OpPatch, "data/exp", `{"data":{"a":1}}`); err != nil || !resp.NotFoundWithData {
		t.Fatalf("patch of expired = %+v, %v; want 404 with data", resp, err)
	}
	h.noContent(core.OpWrite, "undelete/exp", `{"versions":[1]}`)
	h.gone(core.OpRead, "data/exp")
	if s := h.stats(); s != (Stats{Keys: 2, Versions: 2, Expired: 1}) {
		t.Fatalf("stats after expiry = %+v", s)
	}

	if err := h.e.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := h.storedMeta("exp"); !m.Versions[1].Destroyed {
		t.Fatal("sweep did not destroy the expired version")
	}
	if s := h.stats(); s != (Stats{Keys: 2, Versions: 1}) {
		t.Fatalf("stats after sweep = %+v", s)
	}
	// A new version gets its own expiry.
	if out := h.ok(core.OpWrite, "data/exp", map[string]any{"data": map[string]any{"token": "u"}}); out["expires_at"] != "2026-11-22T15:36:40.648750381Z" {
		t.Fatalf("second write = %v", out)
	}
}

func TestRotationPeriod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.noContent(core.OpWrite, "metadata/rot", `{"rotation_period":"24h"}`)
	if got := h.ok(core.OpRead, "metadata/rot", nil)["next_rotation"]; got != "" {
		t.Fatalf("next_rotation without a version = %v", got)
	}
	h.write("rot", map[string]any{"k": "v1"})
	if got := h.ok(core.OpRead, "metadata/rot", nil)["next_rotation"]; got != "2026-11-23T13:36:40.648750381Z" {
		t.Fatalf("next_rotation = %v", got)
	}
	h.clock.Advance(25 * time.Hour)
	if s := h.stats(); s.PastRotation != 1 {
		t.Fatalf("stats = %+v, want one key past rotation", s)
	}
	h.write("rot", map[string]any{"k": "v2"})
	if got := h.ok(core.OpRead, "metadata/rot", nil)["next_rotation"]; got != "2026-11-24T14:36:40.648750381Z" {
		t.Fatalf("next_rotation after rotating = %v", got)
	}
	if s := h.stats(); s.PastRotation != 0 {
		t.Fatalf("stats after rotating = %+v", s)
	}
}

func TestLastReadFlush(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.write("lr", map[string]any{"a": "1"})
	h.write("lr", map[string]any{"a": "2"})
	h.clock.Advance(time.Minute)
	h.ok(core.OpRead, "data/lr", nil, "version", "1")
	h.ok(core.OpRead, "subkeys/lr", nil) // not a read of the values

	versions := obj(t, h.ok(core.OpRead, "metadata/lr", nil)["versions"])
	if got := obj(t, versions["1"])["last_read"]; got != "2026-11-22T13:37:40.648750381Z" {
		t.Fatalf("pending last_read = %v", got)
	}
	if got := obj(t, versions["2"])["last_read"]; got != "" {
		t.Fatalf("unread version last_read = %v", got)
	}
	if !h.storedMeta("lr").Versions[1].LastRead.IsZero() {
		t.Fatal("a read wrote to storage")
	}
	if err := h.e.flushReads(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := h.storedMeta("lr").Versions[1].LastRead; !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("flushed last_read = %v", got)
	}
	if len(h.e.reads.snapshotOnly()) != 0 {
		t.Fatal("flushed reads still pending")
	}

	// A read of a key deleted before the flush is dropped, not resurrected.
	h.ok(core.OpRead, "data/lr", nil)
	h.noContent(core.OpDelete, "metadata/lr", nil)
	if err := h.e.flushReads(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.fails(core.OpRead, "metadata/lr", nil, 404, "")
}

// snapshotOnly is snapshot without its drop count.
func (t *readTracker) snapshotOnly() map[string]map[uint64]time.Time {
	s, _ := t.snapshot()
	return s
}

// TestRun drives the background loop on a fake clock: last_read flushes
// every interval and when the context ends, expired versions are
// destroyed every sweep.
func TestRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.e.now = time.Now // the bubble's clock
		h.noContent(core.OpWrite, "metadata/exp", `{"expire_after":"90s"}`)
		h.write("exp", map[string]any{"a": "b"})
		h.write("k", map[string]any{"a": "b"})

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.e.Run(ctx) }()

		h.ok(core.OpRead, "data/k", nil)
		first := time.Now()
		time.Sleep(h.e.flushInterval)
		synctest.Wait()
		if got := h.storedMeta("k").Versions[1].LastRead; !got.Equal(first) {
			t.Fatalf("after one interval stored last_read = %v, want %v", got, first)
		}

		time.Sleep(time.Second)
		h.ok(core.OpRead, "data/k", nil)
		second := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := h.storedMeta("k").Versions[1].LastRead; !got.Equal(second) {
			t.Fatalf("after cancel stored last_read = %v, want %v", got, second)
		}

		// The sweep destroys the expired version.
		ctx, cancel = context.WithCancel(t.Context())
		go func() { done <- h.e.Run(ctx) }()
		time.Sleep(2 * h.e.sweepInterval)
		synctest.Wait()
		if !h.storedMeta("exp").Versions[1].Destroyed {
			t.Fatal("expired version not destroyed by the sweep")
		}
		cancel()
		<-done
	})
}
