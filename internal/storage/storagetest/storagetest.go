// Package storagetest is the contract every storage.Backend must meet,
// written once and run by every implementation.
//
// A backend's tests call Run with a constructor that returns a fresh, empty
// backend for one test (and registers any cleanup, such as closing a file,
// with t.Cleanup):
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Backend { return inmem.New() })
//	}
//
// and a fuzz target calls Fuzz the same way:
//
//	func FuzzBackend(f *testing.F) {
//		storagetest.Fuzz(f, func(t *testing.T) storage.Backend { return inmem.New() })
//	}
//
// Run covers reads and writes, value aliasing, List's ordering and folder
// rules, key validation, Txn atomicity and check semantics, concurrent
// writers and cancelled contexts; each is a named subtest, run in parallel
// on its own backend. Fuzz decodes its input into a random sequence of
// operations and compares every result with a plain map.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

// NewBackend returns a fresh, empty backend for one test.
type NewBackend func(t *testing.T) storage.Backend

// contract is one named clause of the contract.
type contract struct {
	name string
	test func(t *testing.T, b storage.Backend)
}

// Run runs the contract suite against backends made by newBackend, each
// clause as a parallel subtest with its own backend.
func Run(t *testing.T, newBackend NewBackend) {
	t.Helper()
	var all []contract
	all = append(all, basicContracts...)
	all = append(all, listContracts...)
	all = append(all, keyContracts...)
	all = append(all, txnContracts...)
	all = append(all, concurrencyContracts...)
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newBackend(t))
		})
	}
}

// Helpers. They report the caller's line and stop the test on failure.

func mustPut(t *testing.T, b storage.Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustDelete(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	if err := b.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, b storage.Backend, key string, want []byte) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want an error wrapping ErrNotFound", key, got, err)
	}
}

func wantList(t *testing.T, b storage.Backend, prefix string, want []string) {
	t.Helper()
	got, err := b.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if got == nil {
		t.Fatalf("List(%q) = nil, want a non-nil slice", prefix)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

func wantConflict(t *testing.T, err error, key string) {
	t.Helper()
	ce, ok := errors.AsType[*storage.ConflictError](err)
	if !ok {
		t.Fatalf("Txn error = %v, want a *ConflictError at %q", err, key)
	}
	if ce.Key != key {
		t.Fatalf("ConflictError.Key = %q, want %q", ce.Key, key)
	}
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Txn error %v does not wrap ErrConflict", err)
	}
}

func mustTxn(t *testing.T, b storage.Backend, ops ...storage.Op) {
	t.Helper()
	if err := b.Txn(t.Context(), ops); err != nil {
		t.Fatalf("Txn: %v", err)
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
