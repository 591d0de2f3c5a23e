package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// TestConcurrentWriters: parallel writers of one key each get their own
// version, and every version holds what its writer wrote.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.noContent(core.OpWrite, "config", `{"max_versions":1000}`)
	const writers, each = 8, 25
	var mu sync.Mutex
	owner := map[int]string{} // version -> "writer/seq"
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tag := fmt.Sprintf("%d/%d", w, i)
				resp, err := h.do(core.OpWrite, "data/hot", map[string]any{"data": map[string]any{"tag": tag}})
				if err != nil {
					errs <- err
					return
				}
				v, _ := strconv.Atoi(fmt.Sprint(resp.Data.(map[string]any)["version"]))
				mu.Lock()
				if prev, dup := owner[v]; dup {
					errs <- fmt.Errorf("version %d given to %s and %s", v, prev, tag)
				}
				owner[v] = tag
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(owner) != writers*each {
		t.Fatalf("%d versions, want %d", len(owner), writers*each)
	}
	for v, tag := range owner {
		got := h.ok(core.OpRead, "data/hot", nil, "version", strconv.Itoa(v))
		if obj(t, got["data"])["tag"] != tag {
			t.Fatalf("version %d holds %v, want %s", v, got["data"], tag)
		}
	}
	if cur := num(t, h.ok(core.OpRead, "metadata/hot", nil)["current_version"]); cur != writers*each {
		t.Fatalf("current_version %d, want %d", cur, writers*each)
	}
}

// TestConcurrentCASCounter: read-modify-write loops with check-and-set
// lose no increment, while readers run against a key that prunes.
func TestConcurrentCASCounter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.noContent(core.OpWrite, "metadata/ctr", `{"max_versions":2}`)
	h.ok(core.OpWrite, "data/ctr", `{"data":{"n":0},"options":{"cas":0}}`)
	const workers, incs = 6, 15
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var readers sync.WaitGroup
	readErr := make(chan error, 1)
	for range 2 {
		readers.Go(func() {
			for ctx.Err() == nil {
				if _, err := h.do(core.OpRead, "data/ctr", nil); err != nil {
					select {
					case readErr <- err:
					default:
					}
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for done := 0; done < incs; {
				resp, err := h.do(core.OpRead, "data/ctr", nil)
				if err != nil {
					errs <- err
					return
				}
				d := resp.Data.(map[string]any)
				n, _ := strconv.Atoi(string(d["data"].(map[string]any)["n"].(json.Number)))
				cur := d["metadata"].(map[string]any)["version"]
				_, err = h.do(core.OpWrite, "data/ctr", fmt.Sprintf(`{"data":{"n":%d},"options":{"cas":%v}}`, n+1, cur))
				var ce *core.Error
				if errors.As(err, &ce) && ce.Msg == "check-and-set parameter did not match the current version" {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	stop()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		t.Fatalf("reader: %v", err)
	default:
	}
	got := h.ok(core.OpRead, "data/ctr", nil)
	if n := obj(t, got["data"])["n"]; n != json.Number(strconv.Itoa(workers*incs)) {
		t.Fatalf("counter = %v, want %d", n, workers*incs)
	}
	if v := num(t, obj(t, got["metadata"])["version"]); v != workers*incs+1 {
		t.Fatalf("version = %d, want %d", v, workers*incs+1)
	}
}

// faultyStore fails chosen Txns, to prove a failed write changes nothing
// and a conflict is retried.
type faultyStore struct {
	storage.Backend
	mu   sync.Mutex // guards fail and err
	fail int        // how many of the next Txns fail; -1 for all
	err  error
}

func (f *faultyStore) Txn(ctx context.Context, ops []storage.Op) error {
	f.mu.Lock()
	if f.fail != 0 {
		if f.fail > 0 {
			f.fail--
		}
		err := f.err
		f.mu.Unlock()
		return err
	}
	f.mu.Unlock()
	return f.Backend.Txn(ctx, ops)
}

func (f *faultyStore) inject(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.err = n, err
}

func TestStorageFaults(t *testing.T) {
	t.Parallel()
	fs := &faultyStore{Backend: storage.NewView(inmem.New(), "logical/f/")}
	h := newHarnessOn(t, fs, nil)
	h.write("k", map[string]any{"v": "1"})

	// A conflict is retried and the write lands once.
	fs.inject(2, &storage.ConflictError{Key: "meta/k"})
	if v := h.write("k", map[string]any{"v": "2"}); v != 2 {
		t.Fatalf("after retried conflicts: version %d, want 2", v)
	}
	// Endless conflicts give up with a 409.
	fs.inject(-1, &storage.ConflictError{Key: "meta/k"})
	h.fails(core.OpWrite, "data/k", map[string]any{"data": map[string]any{"v": "x"}}, 409, `secret "k" changed concurrently 8 times in a row; retry the request`)

	// Any other failure surfaces and leaves everything as it was.
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		op   core.Operation
		path string
		body any
	}{
		{core.OpWrite, "data/k", map[string]any{"data": map[string]any{"v": "x"}}},
		{core.OpPatch, "data/k", map[string]any{"data": map[string]any{"v": "x"}}},
		{core.OpDelete, "data/k", nil},
		{core.OpWrite, "destroy/k", map[string]any{"versions": []int{1}}},
		{core.OpWrite, "metadata/k", map[string]any{"max_versions": 1}},
		{core.OpDelete, "metadata/k", nil},
	} {
		fs.inject(1, boom)
		if _, err := h.do(tc.op, tc.path, tc.body); !errors.Is(err, boom) {
			t.Fatalf("%s %s: err = %v, want the storage error", tc.op, tc.path, err)
		}
	}
	fs.inject(0, nil)
	got := h.ok(core.OpRead, "metadata/k", nil)
	if num(t, got["current_version"]) != 2 || num(t, got["max_versions"]) != 0 || len(obj(t, got["versions"])) != 2 {
		t.Fatalf("metadata after failed writes = %v", got)
	}
	if d := obj(t, h.ok(core.OpRead, "data/k", nil)["data"]); d["v"] != "2" {
		t.Fatalf("data after failed writes = %v", d)
	}
}
