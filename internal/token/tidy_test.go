package token

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

func TestTidy(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	short, se := env.create(t, CreateRequest{TTL: time.Minute})
	child, _ := env.create(t, CreateRequest{TTL: 10 * time.Hour, Parent: se})
	grandchild, _ := env.create(t, CreateRequest{TTL: 10 * time.Hour, Parent: mustLookup(t, env.s, child)})
	twoHours, _ := env.create(t, CreateRequest{TTL: 2 * time.Hour})
	renewed, re := env.create(t, CreateRequest{TTL: 2 * time.Hour})
	threeHours, _ := env.create(t, CreateRequest{TTL: 3 * time.Hour})
	root, _ := env.create(t, CreateRequest{Policies: []string{"root"}})
	periodic, pe := env.create(t, CreateRequest{Period: time.Hour})

	if n, err := env.s.Tidy(ctx); err != nil || n != 0 {
		t.Fatalf("Tidy before anything expired = %d, %v", n, err)
	}
	env.clock.Add(50 * time.Minute)
	if _, err := env.s.Renew(ctx, re, 4*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := env.s.Renew(ctx, pe, 0); err != nil {
		t.Fatal(err)
	}
	env.clock.Add(100 * time.Minute) // 2h30m after creation; the periodic token expired at 1h50m
	n, err := env.s.Tidy(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Tidy = %d, %v; want 3 (the 1m, 2h and periodic tokens)", n, err)
	}
	// The expired tokens and the child tree of the 1m token are gone from
	// storage, with their index rows (checkInvariants checks the rows).
	for _, tok := range []string{short, child, grandchild, twoHours, periodic} {
		if _, err := env.b.Get(ctx, idKey(env.s.hash.token(tok))); err == nil {
			t.Errorf("expired token still stored")
		}
	}
	assertLive(t, env.s, renewed, threeHours, root)
	if n, _ := env.s.Count(ctx); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
	if n, err := env.s.Tidy(ctx); err != nil || n != 0 {
		t.Errorf("second Tidy = %d, %v; want 0", n, err)
	}
}

func mustLookup(t *testing.T, s *Store, tok string) *Entry {
	t.Helper()
	e, err := s.Lookup(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// countingBackend counts List calls.
type countingBackend struct {
	storage.Backend
	lists atomic.Int64
}

func (c *countingBackend) List(ctx context.Context, prefix string) ([]string, error) {
	c.lists.Add(1)
	return c.Backend.List(ctx, prefix)
}

// TestTidyReadsOnlyWhatIsDue shows that tidy's cost follows the expired
// tokens, not the stored ones: with nothing due it makes one List call,
// whatever the number of tokens.
func TestTidyReadsOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	cb := &countingBackend{Backend: newBackend()}
	t.Cleanup(func() { checkInvariants(t, cb.Backend) })
	clock := newClock()
	s, err := New(t.Context(), cb, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, _, err := s.Create(t.Context(), CreateRequest{TTL: time.Duration(i+1) * 10 * time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	cb.lists.Store(0)
	if n, err := s.Tidy(t.Context()); err != nil || n != 0 {
		t.Fatalf("Tidy = %d, %v", n, err)
	}
	if got := cb.lists.Load(); got > 2 {
		t.Errorf("Tidy with nothing due made %d List calls, want at most 2", got)
	}
	clock.Add(35 * time.Minute) // three tokens due
	cb.lists.Store(0)
	if n, err := s.Tidy(t.Context()); err != nil || n != 3 {
		t.Fatalf("Tidy = %d, %v; want 3", n, err)
	}
	// buckets + at most two due buckets + one children list per revoked token
	if got := cb.lists.Load(); got > 1+2+3 {
		t.Errorf("Tidy of 3 tokens made %d List calls", got)
	}
}

// TestRun drives Run on a fake clock: it finishes an interrupted
// revocation at start, then tidies expired tokens every interval, and
// returns nil when its context ends.
func TestRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := newBackend()
		s, err := New(t.Context(), b, Options{TidyInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		pending, pe, err := s.Create(ctx, CreateRequest{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, revokeKey(pe.ID), markerValue(revokeTree, time.Now())); err != nil {
			t.Fatal(err)
		}
		soon, _, err := s.Create(ctx, CreateRequest{TTL: 90 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		later, _, err := s.Create(ctx, CreateRequest{TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}

		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- s.Run(runCtx) }()
		synctest.Wait()
		if _, err := b.Get(ctx, idKey(pe.ID)); err == nil {
			t.Error("Run did not finish the interrupted revocation at start")
		}
		assertGone(t, s, pending)

		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		if _, err := b.Get(ctx, idKey(s.hash.token(soon))); err == nil {
			t.Error("Run did not tidy the expired token")
		}
		assertLive(t, s, later)
		if n, _ := s.Count(ctx); n != 1 {
			t.Errorf("Count = %d, want 1", n)
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		checkInvariants(t, b)
	})
}

// TestTidyDropsStaleRows removes an index row that no token owns.
func TestTidyDropsStaleRows(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	_, e := env.create(t, CreateRequest{TTL: 2 * time.Hour})
	ghost := strings.Repeat("ab", 32)
	stale := []string{
		expiryKey(env.clock.Now().Add(time.Minute), ghost), // no such token
		expiryKey(env.clock.Now().Add(time.Minute), e.ID),  // the token's old row
	}
	for _, k := range stale {
		if err := env.b.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	env.clock.Add(time.Hour)
	if n, err := env.s.Tidy(ctx); err != nil || n != 0 {
		t.Fatalf("Tidy = %d, %v", n, err)
	}
	for _, k := range stale {
		if _, err := env.b.Get(ctx, k); err == nil {
			t.Errorf("stale row %s kept", k)
		}
	}
}
