package token

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/cofferhq/coffer/internal/storage"
)

// refBackend is a deliberately simple map-backed storage.Backend, a
// reference to check the token store against while storage/inmem is
// under construction.
type refBackend struct {
	mu sync.Mutex // guards m
	m  map[string][]byte
}

func newRefBackend() *refBackend { return &refBackend{m: map[string][]byte{}} }

func (r *refBackend) Get(ctx context.Context, key string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (r *refBackend) Put(ctx context.Context, key string, value []byte) error {
	return r.Txn(ctx, []storage.Op{storage.Put(key, value)})
}

func (r *refBackend) Delete(ctx context.Context, key string) error {
	return r.Txn(ctx, []storage.Op{storage.Delete(key)})
}

func (r *refBackend) List(ctx context.Context, prefix string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	out := []string{}
	for k := range r.m {
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

func (r *refBackend) Txn(ctx context.Context, ops []storage.Op) error {
	if err := storage.ValidateOps(ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		cur, ok := r.m[op.Key]
		if op.Absent == ok || (!op.Absent && !bytes.Equal(cur, op.Value)) {
			return &storage.ConflictError{Key: op.Key}
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case storage.OpPut:
			r.m[op.Key] = append([]byte{}, op.Value...)
		case storage.OpDelete:
			delete(r.m, op.Key)
		}
	}
	return nil
}
