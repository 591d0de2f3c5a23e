package token

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 13, 36, 30, 317075403, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	s     *Store
	b     storage.Backend
	clock *fakeClock
}

// newBackend returns the backend tests run on.
func newBackend() storage.Backend { return inmem.New() }

// newEnv returns a Store on a fresh backend with a fake clock, and
// checks the store's invariants when the test ends.
func newEnv(t testing.TB, opts Options) *testEnv {
	t.Helper()
	b := newBackend()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s, err := New(t.Context(), b, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { checkInvariants(t, b) })
	return &testEnv{s: s, b: b, clock: c}
}

func (env *testEnv) create(t testing.TB, req CreateRequest) (string, *Entry) {
	t.Helper()
	tok, e, err := env.s.Create(t.Context(), req)
	if err != nil {
		t.Fatalf("Create(%+v): %v", req, err)
	}
	return tok, e
}

// dump returns every key and value in b.
func dump(t testing.TB, b storage.Backend) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	var walk func(prefix string)
	walk = func(prefix string) {
		names, err := b.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(prefix + n)
				continue
			}
			v, err := b.Get(ctx, prefix+n)
			if err != nil {
				t.Fatalf("Get(%q): %v", prefix+n, err)
			}
			out[prefix+n] = v
		}
	}
	walk("")
	return out
}

// checkInvariants verifies that the index rows and entries agree: every
// entry has its accessor, expiry and parent rows; every row points at an
// entry that points back; no revocation is left pending; nothing else is
// stored.
func checkInvariants(t testing.TB, b storage.Backend) {
	t.Helper()
	all := dump(t, b)
	salt, ok := all[saltKey]
	if !ok || len(salt) != 32 {
		t.Errorf("invariant: salt missing or not 32 bytes")
	}
	hs := newHasher(salt)
	entries := map[string]*Entry{}
	for k, v := range all {
		h, ok := strings.CutPrefix(k, idPrefix)
		if !ok {
			continue
		}
		e := new(Entry)
		if err := json.Unmarshal(v, e); err != nil {
			t.Errorf("invariant: %s: %v", k, err)
			continue
		}
		if e.ID != h {
			t.Errorf("invariant: %s holds id %s", k, e.ID)
		}
		entries[h] = e
	}
	for h, e := range entries {
		if got := string(all[accessorKey(hs.accessor(e.Accessor))]); got != h {
			t.Errorf("invariant: accessor row of %s is %q", short(h), got)
		}
		if k := expiryKey(e.ExpireAt, h); k != "" {
			if _, ok := all[k]; !ok {
				t.Errorf("invariant: expiry row %s missing", k)
			}
		}
		if e.Parent != "" {
			if _, ok := entries[e.Parent]; !ok {
				t.Errorf("invariant: parent of %s is gone", short(h))
			}
			if _, ok := all[parentKey(e.Parent, h)]; !ok {
				t.Errorf("invariant: parent link of %s missing", short(h))
			}
		}
		if e.Revocation != "" {
			t.Errorf("invariant: %s left with revocation %q pending", short(h), e.Revocation)
		}
	}
	for k, v := range all {
		switch first, rest, _ := strings.Cut(k, "/"); first {
		case saltKey, "id":
		case "accessor":
			if e, ok := entries[string(v)]; !ok || hs.accessor(e.Accessor) != rest {
				t.Errorf("invariant: stale accessor row %s", k)
			}
		case "expiry":
			_, row, _ := strings.Cut(rest, "/")
			_, h, ok := parseExpiryRow(row)
			if e, found := entries[h]; !ok || !found || expiryKey(e.ExpireAt, h) != k {
				t.Errorf("invariant: stale expiry row %s", k)
			}
		case "parent":
			p, c, _ := strings.Cut(rest, "/")
			if e, ok := entries[c]; !ok || e.Parent != p {
				t.Errorf("invariant: stale parent link %s", k)
			}
		case "revoke":
			t.Errorf("invariant: revocation marker %s left behind", k)
		default:
			t.Errorf("invariant: unexpected key %s", k)
		}
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{"defaults", Options{}, nil},
		{"negative", Options{DefaultTTL: -1, TidyInterval: -time.Second}, []string{"default TTL -1ns is negative", "tidy interval -1s is negative"}},
		{"default over max", Options{DefaultTTL: 2 * time.Hour, MaxTTL: time.Hour}, []string{"default TTL 2h0m0s exceeds max TTL 1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(t.Context(), newBackend(), tt.opts)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if s.defaultTTL != DefaultTTL || s.maxTTL != DefaultMaxTTL || s.tidyInterval != DefaultTidyInterval {
					t.Errorf("defaults not applied: %v %v %v", s.defaultTTL, s.maxTTL, s.tidyInterval)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSaltSharedAcrossStores(t *testing.T) {
	t.Parallel()
	b := newBackend()
	s1, err := New(t.Context(), b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s1.Create(t.Context(), CreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(t.Context(), b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Lookup(t.Context(), tok); err != nil {
		t.Fatalf("second store cannot see the token: %v", err)
	}
	if err := b.Put(t.Context(), saltKey, []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), b, Options{}); err == nil {
		t.Error("New accepted a 5-byte salt")
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	for range 5 {
		env.create(t, CreateRequest{})
	}
	n, err := env.s.Count(t.Context())
	if err != nil || n != 5 {
		t.Fatalf("Count = %d, %v; want 5", n, err)
	}
}

// assertGone fails unless every token fails Lookup with ErrNotFound.
func assertGone(t *testing.T, s *Store, toks ...string) {
	t.Helper()
	for _, tok := range toks {
		if _, err := s.Lookup(t.Context(), tok); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup of a revoked token: err = %v, want ErrNotFound", err)
		}
	}
}

// assertLive fails unless every token passes Lookup.
func assertLive(t *testing.T, s *Store, toks ...string) {
	t.Helper()
	for _, tok := range toks {
		if _, err := s.Lookup(t.Context(), tok); err != nil {
			t.Errorf("Lookup of a live token: %v", err)
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
