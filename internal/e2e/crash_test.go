package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestCrashLosesNoAcknowledgedWrite kills the server with SIGKILL during
// a concurrent write load, 20 times, and checks after every restart that
// each write the server acknowledged is there, and that the bbolt file
// passes its consistency check at the end.
func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	c, res := initServer(t, p, 3, 2)
	ctx := t.Context()
	mustWrite(t, ctx, c, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}})

	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[string]string{} // key -> value
	const rounds, writers = 20, 8
	for round := range rounds {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := client(t, p.Addr, res.RootToken)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("r%02d/w%d/k%04d", round, w, i)
					val := fmt.Sprintf("v-%d-%d-%d", round, w, i)
					wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := cl.Logical().Write(wctx, "secret/data/"+key, map[string]any{"data": map[string]any{"v": val}})
					cancel()
					if err != nil {
						return // the server died under us: this write is not acknowledged
					}
					mu.Lock()
					acked[key] = val
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		p.Kill()
		close(stop)
		wg.Wait()

		p.Restart(false)
		c = client(t, p.Addr, res.RootToken)
		unseal(t, c, res.KeysBase64[1:3])
		// Check this round's writes (and a sample of older ones) survived.
		checked := 0
		for k, v := range acked {
			if checked > 400 && k[:3] != fmt.Sprintf("r%02d", round)[:3] {
				continue
			}
			s, err := c.Logical().Read(ctx, "secret/data/"+k, nil)
			if err != nil || s == nil {
				t.Fatalf("round %d: acknowledged write %s lost (err %v)", round, k, err)
			}
			got := s.Data["data"].(map[string]any)["v"]
			if got != v {
				t.Fatalf("round %d: %s = %v, want %s", round, k, got, v)
			}
			checked++
		}
	}
	t.Logf("%d acknowledged writes across %d SIGKILLs, all present", len(acked), rounds)
	if len(acked) == 0 {
		t.Fatal("no write was ever acknowledged")
	}

	// A full check of every acknowledged write, then the file's own check.
	for k, v := range acked {
		s, err := c.Logical().Read(ctx, "secret/data/"+k, nil)
		if err != nil || s == nil || s.Data["data"].(map[string]any)["v"] != v {
			t.Fatalf("final: %s lost or wrong (%v)", k, err)
		}
	}
	p.Kill()
	db, err := bbolt.Open(filepath.Join(p.Dir, "coffer.db"), 0o600, &bbolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("open bolt file after crash: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bolt consistency check: %v", err)
	}
}
