package storage

import (
	"context"
	"sync"
)

// NewCache returns a Backend that keeps recently read values of b in
// memory, up to maxBytes of values. It is correct only when every write
// to the keys it serves goes through it: the core gives each mount and the
// token store a view that nothing else writes, and wraps that view.
//
// Writes invalidate the keys they touch before and after they reach b,
// and a read stores what it fetched only if no write started or finished
// meanwhile (a generation counter), so a concurrent Get never caches a
// value older than a write that has returned.
func NewCache(b Backend, maxBytes int) Backend {
	return &cache{b: b, max: maxBytes, m: map[string][]byte{}}
}

type cache struct {
	b   Backend
	max int

	// mu guards m, size and gen.
	mu   sync.RWMutex
	m    map[string][]byte
	size int
	gen  uint64
}

var _ Backend = (*cache)(nil)

func (c *cache) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.RLock()
	v, ok := c.m[key]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return append([]byte(nil), v...), nil
	}
	v, err := c.b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(v) <= c.max/8 {
		c.mu.Lock()
		if c.gen == gen {
			if _, dup := c.m[key]; !dup {
				for c.size+len(v) > c.max && len(c.m) > 0 {
					for k, old := range c.m { // evict an arbitrary entry
						delete(c.m, k)
						c.size -= len(old)
						break
					}
				}
				c.m[key] = append([]byte(nil), v...)
				c.size += len(v)
			}
		}
		c.mu.Unlock()
	}
	return v, nil
}

// invalidate drops keys and bumps the generation.
func (c *cache) invalidate(keys ...string) {
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		if old, ok := c.m[k]; ok {
			delete(c.m, k)
			c.size -= len(old)
		}
	}
	c.mu.Unlock()
}

func (c *cache) Put(ctx context.Context, key string, value []byte) error {
	c.invalidate(key)
	defer c.invalidate(key)
	return c.b.Put(ctx, key, value)
}

func (c *cache) Delete(ctx context.Context, key string) error {
	c.invalidate(key)
	defer c.invalidate(key)
	return c.b.Delete(ctx, key)
}

func (c *cache) List(ctx context.Context, prefix string) ([]string, error) {
	return c.b.List(ctx, prefix)
}

func (c *cache) Txn(ctx context.Context, ops []Op) error {
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		if op.Kind != OpCheck {
			keys = append(keys, op.Key)
		}
	}
	c.invalidate(keys...)
	defer c.invalidate(keys...)
	return c.b.Txn(ctx, ops)
}
