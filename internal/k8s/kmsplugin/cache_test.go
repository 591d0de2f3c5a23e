package kmsplugin

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// internal returns the slice the cache holds for ct, to check zeroing.
func (c *dekCache) internal(ct []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[sha256.Sum256(ct)]; ok {
		return el.Value.(*dekEntry).dek
	}
	return nil
}

func ct(i int) []byte  { return fmt.Appendf(nil, "vault:v1:ct-%d", i) }
func dek(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 32) }

func TestCacheLRU(t *testing.T) {
	t.Parallel()
	c := newDEKCache(3, time.Hour)
	for i := range 3 {
		c.put(ct(i), dek(i))
	}
	if _, ok := c.get(ct(0)); !ok { // 0 becomes the most recent; 1 the least
		t.Fatal("entry 0 missing")
	}
	held := c.internal(ct(1))
	c.put(ct(3), dek(3))
	if _, ok := c.get(ct(1)); ok {
		t.Error("the least recently used entry was not evicted")
	}
	if !bytes.Equal(held, make([]byte, 32)) {
		t.Errorf("evicted data key not zeroed: %x", held)
	}
	for _, i := range []int{0, 2, 3} {
		if got, ok := c.get(ct(i)); !ok || !bytes.Equal(got, dek(i)) {
			t.Errorf("entry %d = %x, %v", i, got, ok)
		}
	}
	if c.len() != 3 {
		t.Errorf("len = %d, want 3", c.len())
	}
}

func TestCacheCopies(t *testing.T) {
	t.Parallel()
	c := newDEKCache(2, time.Hour)
	in := dek(1)
	c.put(ct(1), in)
	clear(in) // the caller zeroes its copy
	out, _ := c.get(ct(1))
	if !bytes.Equal(out, dek(1)) {
		t.Fatalf("cache kept the caller's slice: %x", out)
	}
	clear(out)
	if again, _ := c.get(ct(1)); !bytes.Equal(again, dek(1)) {
		t.Fatalf("cache handed out its own slice: %x", again)
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newDEKCache(10, time.Minute)
		c.put(ct(1), dek(1))
		time.Sleep(30 * time.Second)
		c.put(ct(2), dek(2))
		c.put(ct(1), dek(1)) // a repeated put does not extend the life
		if _, ok := c.get(ct(1)); !ok {
			t.Fatal("entry expired early")
		}
		held := c.internal(ct(1))
		time.Sleep(31 * time.Second)
		if _, ok := c.get(ct(1)); ok {
			t.Error("entry served after its TTL")
		}
		if !bytes.Equal(held, make([]byte, 32)) {
			t.Error("expired data key not zeroed")
		}
		held = c.internal(ct(2))
		time.Sleep(30 * time.Second)
		c.sweep()
		if c.len() != 0 || !bytes.Equal(held, make([]byte, 32)) {
			t.Errorf("sweep left %d entries, zeroed=%v", c.len(), bytes.Equal(held, make([]byte, 32)))
		}
	})
}

func TestCachePurgeAndOff(t *testing.T) {
	t.Parallel()
	c := newDEKCache(10, time.Hour)
	c.put(ct(1), dek(1))
	held := c.internal(ct(1))
	c.purge()
	if c.len() != 0 || !bytes.Equal(held, make([]byte, 32)) {
		t.Error("purge did not empty and zero the cache")
	}
	for _, off := range []*dekCache{newDEKCache(-1, time.Hour), newDEKCache(10, 0)} {
		off.put(ct(1), dek(1))
		if _, ok := off.get(ct(1)); ok || off.len() != 0 {
			t.Error("a disabled cache stored an entry")
		}
	}
}
