// Package inmem is an in-memory storage.Backend for dev servers and tests.
//
// Keys are held in a sorted slice beside a map of values, so Get is a map
// lookup and List seeks with a binary search and skips whole subtrees, the
// same way the bolt backend walks its B+tree. Values are copied on the way
// in and on the way out: a caller can never change stored bytes by
// mutating a slice it passed to Put or got from Get.
//
// Nothing is persisted; a Backend's contents vanish with it.
package inmem

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cofferhq/coffer/internal/storage"
)

// Backend is an in-memory storage.Backend. The zero value is an empty
// Backend, as is New().
type Backend struct {
	// mu guards keys and vals. Readers take it shared.
	mu   sync.RWMutex
	keys []string          // every stored key, sorted
	vals map[string][]byte // key -> value; owned by the Backend, never handed out
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty Backend.
func New() *Backend {
	return &Backend{vals: make(map[string][]byte)}
}

// Get returns a copy of the value at key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	v, ok := b.vals[key]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("inmem: get %q: %w", key, storage.ErrNotFound)
	}
	return bytes.Clone(nonNil(v)), nil
}

// Put stores a copy of value at key.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v := bytes.Clone(nonNil(value))
	b.mu.Lock()
	b.put(key, v)
	b.mu.Unlock()
	return nil
}

// Delete removes key.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	b.delete(key)
	b.mu.Unlock()
	return nil
}

// List returns the sorted immediate children of prefix.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()

	out := []string{}
	i := b.seek(prefix)
	for i < len(b.keys) && strings.HasPrefix(b.keys[i], prefix) {
		rest := b.keys[i][len(prefix):]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			out = append(out, rest)
			i++
			continue
		}
		// rest[:slash+1] is a folder. Every key in its subtree starts with
		// prefix+rest[:slash]+"/", and the smallest string above all of
		// them is the same with "/" replaced by "0" (the next byte), so
		// seeking there skips the subtree without visiting it.
		out = append(out, rest[:slash+1])
		i = b.seek(prefix + rest[:slash] + "0")
	}
	return out, nil
}

// Txn applies ops atomically. Checks see the state before the Txn.
func (b *Backend) Txn(ctx context.Context, ops []storage.Op) error {
	if err := storage.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Copy values before taking the lock, so the critical section is short
	// and the stored bytes are the Backend's own.
	vals := make([][]byte, len(ops))
	for i, op := range ops {
		if op.Kind == storage.OpPut {
			vals[i] = bytes.Clone(nonNil(op.Value))
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		cur, ok := b.vals[op.Key]
		if op.Absent {
			if ok {
				return &storage.ConflictError{Key: op.Key}
			}
		} else if !ok || !bytes.Equal(cur, op.Value) {
			return &storage.ConflictError{Key: op.Key}
		}
	}
	for i, op := range ops {
		switch op.Kind {
		case storage.OpPut:
			b.put(op.Key, vals[i])
		case storage.OpDelete:
			b.delete(op.Key)
		}
	}
	return nil
}

// seek returns the index of the first key >= from. b.mu must be held.
func (b *Backend) seek(from string) int {
	return sort.SearchStrings(b.keys, from)
}

// put stores v, which the caller has already copied. b.mu must be held
// for writing.
func (b *Backend) put(key string, v []byte) {
	if b.vals == nil {
		b.vals = make(map[string][]byte)
	}
	if _, ok := b.vals[key]; !ok {
		i := b.seek(key)
		b.keys = slices.Insert(b.keys, i, key)
	}
	b.vals[key] = v
}

// delete removes key if present. b.mu must be held for writing.
func (b *Backend) delete(key string) {
	if _, ok := b.vals[key]; !ok {
		return
	}
	delete(b.vals, key)
	i := b.seek(key)
	b.keys = slices.Delete(b.keys, i, i+1)
}

// nonNil maps nil to an empty slice, so an empty value reads back as
// []byte{} rather than nil.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
