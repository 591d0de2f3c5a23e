package barrier

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// newPhys returns the physical store the tests run on.
func newPhys() storage.Backend { return inmem.New() }

// fixedNow is the clock tests give the barrier.
var fixedNow = time.Date(2025, 11, 23, 9, 0, 0, 0, time.UTC)

// newTestBarrier returns an initialized, unsealed barrier over a fresh
// in-memory store, the store, and the root key. After the test it runs
// checkConsistent on the store unless the test called skipCheck.
func newTestBarrier(t *testing.T) (*Barrier, *hookBackend, []byte) {
	t.Helper()
	phys := &hookBackend{Backend: newPhys()}
	root, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b := New(phys, Options{Now: func() time.Time { return fixedNow }})
	if err := b.Initialize(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !phys.noCheck {
			checkConsistent(t, phys.Backend, root)
		}
	})
	return b, phys, root
}

// reopen returns a second barrier over phys, unsealed with root, as a
// restarted server would have.
func reopen(t *testing.T, phys storage.Backend, root []byte) *Barrier {
	t.Helper()
	b := New(phys, Options{})
	if err := b.Unseal(t.Context(), root); err != nil {
		t.Fatalf("unseal after restart: %v", err)
	}
	return b
}

// checkConsistent is the barrier's invariant, checked after every test
// that did not deliberately damage its store: a fresh barrier unseals with
// the root key, the keyring's terms run 1..active, and every record opens
// and names a term of the keyring.
func checkConsistent(t *testing.T, phys storage.Backend, root []byte) {
	t.Helper()
	ctx := context.Background()
	b := New(phys, Options{})
	if err := b.Unseal(ctx, root); err != nil {
		t.Errorf("consistency: unseal: %v", err)
		return
	}
	defer b.Seal()
	for id := uint32(1); id <= b.k.active.id; id++ {
		if b.k.terms[id] == nil {
			t.Errorf("consistency: keyring lacks term %d of 1..%d", id, b.k.active.id)
		}
	}
	if len(b.k.terms) != int(b.k.active.id) {
		t.Errorf("consistency: keyring has %d terms, active term %d", len(b.k.terms), b.k.active.id)
	}
	err := b.walk(ctx, dataPrefix, "", func(ctx context.Context, path string) error {
		if _, err := b.Get(ctx, strings.TrimPrefix(path, dataPrefix)); err != nil {
			t.Errorf("consistency: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("consistency: walk: %v", err)
	}
}

// hookBackend wraps a real backend to inject interleavings and failures
// that cannot be caused on demand otherwise, and to count reads.
type hookBackend struct {
	storage.Backend

	// mu guards the hooks and counters below.
	mu        sync.Mutex
	beforeTxn func(ops []storage.Op) error // runs before each Txn; an error fails it
	beforePut func(key string) error       // runs before each Put; an error fails it
	dataGets  int                          // Gets of "v/" keys

	noCheck bool // set before the test ends: skip checkConsistent
}

var errInjected = errors.New("injected failure")

func (h *hookBackend) setBeforeTxn(f func(ops []storage.Op) error) {
	h.mu.Lock()
	h.beforeTxn = f
	h.mu.Unlock()
}

func (h *hookBackend) setBeforePut(f func(key string) error) {
	h.mu.Lock()
	h.beforePut = f
	h.mu.Unlock()
}

func (h *hookBackend) gets() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dataGets
}

func (h *hookBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, dataPrefix) {
		h.mu.Lock()
		h.dataGets++
		h.mu.Unlock()
	}
	return h.Backend.Get(ctx, key)
}

func (h *hookBackend) Put(ctx context.Context, key string, value []byte) error {
	h.mu.Lock()
	f := h.beforePut
	h.mu.Unlock()
	if f != nil {
		if err := f(key); err != nil {
			return err
		}
	}
	return h.Backend.Put(ctx, key, value)
}

func (h *hookBackend) Txn(ctx context.Context, ops []storage.Op) error {
	h.mu.Lock()
	f := h.beforeTxn
	h.mu.Unlock()
	if f != nil {
		if err := f(ops); err != nil {
			return err
		}
	}
	return h.Backend.Txn(ctx, ops)
}

// physTerm returns the term of the physical record at logical key.
func physTerm(t *testing.T, phys storage.Backend, key string) uint32 {
	t.Helper()
	rec, err := phys.Get(t.Context(), dataPrefix+key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := recordTerm(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// mustPut stores value at key or fails the test.
func mustPut(t testing.TB, b *Barrier, key, value string) {
	t.Helper()
	if err := b.Put(context.Background(), key, []byte(value)); err != nil {
		t.Fatal(err)
	}
}

// mustGet returns the value at key or fails the test.
func mustGet(t testing.TB, b *Barrier, key string) string {
	t.Helper()
	v, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}
