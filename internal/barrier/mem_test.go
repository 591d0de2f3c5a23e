package barrier

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cofferhq/coffer/internal/storage"
)

// newPhys returns the physical store the tests run on.
//
// It is a minimal map-backed storage.Backend rather than storage/inmem:
// at the time of writing inmem's Txn compares only the first even number
// of bytes of a stored value in a CheckEqual (cur[:len(cur)/2*2]), so an
// odd-length record (every empty value seals to 33 bytes) never matches.
// Switch to inmem.New() once that is fixed.
func newPhys() storage.Backend { return &memBackend{vals: map[string][]byte{}} }

// memBackend is a map-backed storage.Backend for these tests.
type memBackend struct {
	mu   sync.Mutex // guards vals
	vals map[string][]byte
}

func (m *memBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	if !ok {
		return nil, fmt.Errorf("mem: get %q: %w", key, storage.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

func (m *memBackend) Put(ctx context.Context, key string, value []byte) error {
	return m.Txn(ctx, []storage.Op{storage.Put(key, value)})
}

func (m *memBackend) Delete(ctx context.Context, key string) error {
	return m.Txn(ctx, []storage.Op{storage.Delete(key)})
}

func (m *memBackend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	out := []string{}
	for k := range m.vals {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		if !seen[rest] {
			seen[rest] = true
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m *memBackend) Txn(ctx context.Context, ops []storage.Op) error {
	if err := storage.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		cur, ok := m.vals[op.Key]
		if op.Absent == ok || (!op.Absent && !bytes.Equal(cur, op.Value)) {
			return &storage.ConflictError{Key: op.Key}
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case storage.OpPut:
			m.vals[op.Key] = bytes.Clone(op.Value)
		case storage.OpDelete:
			delete(m.vals, op.Key)
		}
	}
	return nil
}
