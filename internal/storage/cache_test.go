package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
	"github.com/cofferhq/coffer/internal/storage/storagetest"
)

func TestCacheContract(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Backend { return storage.NewCache(inmem.New(), 1<<20) })
}

func FuzzCache(f *testing.F) {
	storagetest.Fuzz(f, func(t *testing.T) storage.Backend { return storage.NewCache(inmem.New(), 4096) })
}

// TestCacheNeverServesStale races readers against writers and checks
// that once a write has returned, no later read sees an older value.
func TestCacheNeverServesStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := storage.NewCache(inmem.New(), 1<<20)
	const writes = 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := -1 // last write that returned
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				floor := last
				mu.Unlock()
				v, err := c.Get(ctx, "k")
				if err != nil {
					continue
				}
				var n int
				fmt.Sscanf(string(v), "%d", &n)
				if n < floor {
					t.Errorf("read %d after write %d returned", n, floor)
					return
				}
			}
		}()
	}
	for i := range writes {
		if err := c.Put(ctx, "k", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		last = i
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
}

func TestCacheBoundedAndCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := inmem.New()
	c := storage.NewCache(b, 1024)
	for i := range 100 {
		_ = b.Put(ctx, fmt.Sprint("k", i), bytes.Repeat([]byte{'x'}, 100))
	}
	for i := range 100 {
		if _, err := c.Get(ctx, fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := c.Get(ctx, "k99")
	v[0] = 'y'
	if w, _ := c.Get(ctx, "k99"); w[0] != 'x' {
		t.Fatal("cached value aliased the caller's slice")
	}
}
