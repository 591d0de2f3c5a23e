package transit

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

// TestConcurrentUseAndRotation encrypts and decrypts from several
// goroutines while another rotates and reconfigures the key: every
// ciphertext decrypts afterwards, versions are numbered without gaps,
// and the cache ends equal to storage (the harness's cleanup check).
func TestConcurrentUseAndRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.create("k", "chacha20-poly1305")
	const workers, each, rotations = 4, 50, 10
	cts := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				resp, err := h.do(core.OpWrite, "encrypt/k", map[string]any{"plaintext": b64(fmt.Sprintf("%d-%d", w, i))})
				if err != nil {
					t.Error(err)
					return
				}
				cts[w] = append(cts[w], wire(t, resp.Data)["ciphertext"].(string))
			}
		})
	}
	wg.Go(func() {
		for i := range rotations {
			if _, err := h.do(core.OpWrite, "keys/k/rotate", nil); err != nil {
				t.Error(err)
			}
			if _, err := h.do(core.OpWrite, "keys/k/config", map[string]any{"deletion_allowed": i%2 == 0}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	info := h.ok(core.OpRead, "keys/k", nil)
	if num(t, info["latest_version"]) != rotations+1 || len(info["keys"].(map[string]any)) != rotations+1 {
		t.Fatalf("after %d concurrent rotations: %v", rotations, info)
	}
	for w := range workers {
		for i, ct := range cts[w] {
			if got := h.decrypt("k", ct); got != fmt.Sprintf("%d-%d", w, i) {
				t.Fatalf("%s decrypts to %q", ct, got)
			}
		}
	}
}
