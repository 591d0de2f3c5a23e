package kmsplugin

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// dekCache keeps recently used data keys (the apiserver's seeds) so that
// Decrypt keeps answering through short coffer outages and after an
// apiserver restart without a round trip per stored seed. It is an LRU of
// at most max entries, each dropped ttl after it was stored. Entries are
// keyed by the SHA-256 of the ciphertext; the plaintext is copied in and
// out and zeroed when it leaves the cache.
type dekCache struct {
	max int
	ttl time.Duration

	// mu guards ll and m.
	mu sync.Mutex
	ll *list.List // of *dekEntry, most recently used first
	m  map[[sha256.Size]byte]*list.Element
}

type dekEntry struct {
	key     [sha256.Size]byte
	dek     []byte
	expires time.Time
}

// newDEKCache returns a cache of max entries; max <= 0 or ttl <= 0 turns
// it off.
func newDEKCache(max int, ttl time.Duration) *dekCache {
	if ttl <= 0 {
		max = 0
	}
	return &dekCache{max: max, ttl: ttl, ll: list.New(), m: map[[sha256.Size]byte]*list.Element{}}
}

// get returns a copy of the data key stored for ciphertext ct.
func (c *dekCache) get(ct []byte) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	k := sha256.Sum256(ct)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*dekEntry)
	if !time.Now().Before(e.expires) {
		c.remove(el)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return append([]byte(nil), e.dek...), true
}

// put stores a copy of dek for ciphertext ct, evicting the least recently
// used entry when full. A key already present keeps its expiry: the same
// ciphertext always opens to the same data key.
func (c *dekCache) put(ct, dek []byte) {
	if c.max <= 0 {
		return
	}
	k := sha256.Sum256(ct)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.max {
		c.remove(c.ll.Back())
	}
	e := &dekEntry{key: k, dek: append([]byte(nil), dek...), expires: time.Now().Add(c.ttl)}
	c.m[k] = c.ll.PushFront(e)
}

// sweep drops expired entries.
func (c *dekCache) sweep() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.ll.Back(); el != nil; {
		prev := el.Prev()
		if !now.Before(el.Value.(*dekEntry).expires) {
			c.remove(el)
		}
		el = prev
	}
}

// purge drops every entry.
func (c *dekCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ll.Len() > 0 {
		c.remove(c.ll.Back())
	}
}

// len is the number of entries, expired ones included until swept.
func (c *dekCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// remove unlinks el and zeroes its key material. c.mu must be held.
func (c *dekCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*dekEntry)
	delete(c.m, e.key)
	clear(e.dek)
}
