package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/storagetest"
)

// newTestBackend opens a Backend on a new file. When the test ends it
// closes the Backend, reopens the file with bbolt and runs bbolt's
// consistency check, as bbolt's own tests do.
func newTestBackend(t testing.TB, opts Options) (*Backend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "coffer.db")
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkFile(t, path)
	})
	return b, path
}

// checkFile runs bbolt's consistency check on the file at path.
func checkFile(t testing.TB, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Errorf("reopen for consistency check: %v", err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check of %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("consistency check: %v", err)
	}
}

func newContractBackend(t *testing.T) storage.Backend {
	b, _ := newTestBackend(t, Options{})
	return b
}

func TestContract(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, newContractBackend)
}

func FuzzBackend(f *testing.F) {
	storagetest.Fuzz(f, newContractBackend)
}

func TestReopen(t *testing.T) {
	t.Parallel()
	b, path := newTestBackend(t, Options{})
	ctx := t.Context()
	for i := range 50 {
		if err := b.Put(ctx, fmt.Sprintf("k/%02d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Txn(ctx, []storage.Op{storage.Delete("k/00"), storage.Put("t", []byte("txn"))}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.Get(ctx, "k/00"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted key after reopen: %v, want ErrNotFound", err)
	}
	for i := 1; i < 50; i++ {
		v, err := b2.Get(ctx, fmt.Sprintf("k/%02d", i))
		if err != nil || !bytes.Equal(v, []byte{byte(i)}) {
			t.Errorf("k/%02d after reopen = %v, %v", i, v, err)
		}
	}
	if v, err := b2.Get(ctx, "t"); err != nil || string(v) != "txn" {
		t.Errorf("t after reopen = %q, %v", v, err)
	}
	if names, err := b2.List(ctx, ""); err != nil || strings.Join(names, ",") != "k/,t" {
		t.Errorf("List after reopen = %q, %v", names, err)
	}
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	b, path := newTestBackend(t, Options{})
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open of a file in use succeeded")
	}
	if !strings.Contains(err.Error(), "is another coffer server using it?") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error %q does not name the file and ask about another server", err)
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("second Open error %v does not wrap bbolt's ErrTimeout", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second Open took %v despite a 100ms LockTimeout", waited)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the first Backend closed: %v", err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts Options
		want string
	}{
		{"directory missing", filepath.Join(dir, "no", "such", "dir", "coffer.db"), Options{}, "no such file"},
		{"path is a directory", dir, Options{}, "is a directory"},
		{"negative MaxSize", filepath.Join(dir, "x.db"), Options{MaxSize: -1}, "MaxSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.path, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	b, _ := newTestBackend(t, Options{})
	ctx := t.Context()
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Get":    func() error { _, err := b.Get(ctx, "k"); return err },
		"List":   func() error { _, err := b.List(ctx, ""); return err },
		"Put":    func() error { return b.Put(ctx, "k", nil) },
		"Delete": func() error { return b.Delete(ctx, "k") },
		"Txn":    func() error { return b.Txn(ctx, []storage.Op{storage.Put("k", nil)}) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// holdWriteLock begins a bbolt write transaction, so the commit loop blocks
// in its next commit until release is called.
func holdWriteLock(t *testing.T, b *Backend) (release func()) {
	t.Helper()
	tx, err := b.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// waitUntil polls cond; the test's deadline bounds it.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *Backend) isTaken(r *request) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.taken
}

func (b *Backend) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// startBlockedCommit holds the write lock and queues a first request,
// returning once the commit loop has taken it and is stuck in bbolt.
func startBlockedCommit(t *testing.T, b *Backend, ops ...storage.Op) (first *request, release func()) {
	t.Helper()
	release = holdWriteLock(t, b)
	first, err := b.enqueue(ops)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the commit loop takes the first request", func() bool { return b.isTaken(first) })
	return first, release
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	b, _ := newTestBackend(t, Options{})
	first, release := startBlockedCommit(t, b, storage.Put("first", []byte("1")))

	// The second write queues behind the blocked commit; its caller gives up.
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- b.Put(ctx, "second", []byte("2")) }()
	waitUntil(t, "the second write is queued", func() bool { return b.queued() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued Put: %v, want context.Canceled", err)
	}

	release()
	if err := b.wait(t.Context(), first); err != nil {
		t.Fatalf("first write: %v", err)
	}
	// The queue is FIFO: once a later write has committed, the cancelled
	// one would have been committed too, had it not been dropped.
	if err := b.Put(t.Context(), "third", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), "second"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the cancelled write was applied: Get(second) = %v", err)
	}
	if v, err := b.Get(t.Context(), "first"); err != nil || string(v) != "1" {
		t.Errorf("Get(first) = %q, %v", v, err)
	}
	if n := b.queued(); n != 0 {
		t.Errorf("%d requests left in the queue", n)
	}
}

func TestCancelAfterTaken(t *testing.T) {
	t.Parallel()
	b, _ := newTestBackend(t, Options{})
	first, release := startBlockedCommit(t, b, storage.Put("k", []byte("v")))

	// The caller gives up after the commit has taken its write: it must
	// wait and report the real outcome, not claim nothing happened.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errc := make(chan error, 1)
	go func() { errc <- b.wait(ctx, first) }()
	select {
	case err := <-errc:
		t.Fatalf("wait returned %v while its commit was still in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-errc; err != nil {
		t.Fatalf("taken write after cancel: %v, want nil (it committed)", err)
	}
	if v, err := b.Get(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Errorf("Get(k) = %q, %v", v, err)
	}
}

// commitLog records the commit loop's debug records.
type commitLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *commitLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

var requestsRE = regexp.MustCompile(`msg=commit .*\brequests=(\d+)`)

// batches returns the request count of each successful commit so far.
func (l *commitLog) batches() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, m := range requestsRE.FindAllStringSubmatch(l.buf.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	var log commitLog
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, _ := newTestBackend(t, Options{Logger: logger})
	ctx := t.Context()
	if err := b.Put(ctx, "existing", []byte("old")); err != nil {
		t.Fatal(err)
	}
	first, release := startBlockedCommit(t, b, storage.Put("first", nil))

	// While the first commit is stuck, queue puts, racing creates of one
	// key, and a txn whose check fails. They must share one commit.
	const puts, racers = 16, 8
	var wg sync.WaitGroup
	putErrs := make([]error, puts)
	raceErrs := make([]error, racers)
	var failErr error
	for i := range puts {
		wg.Go(func() { putErrs[i] = b.Put(ctx, fmt.Sprintf("p/%02d", i), []byte("v")) })
	}
	for i := range racers {
		wg.Go(func() {
			raceErrs[i] = b.Txn(ctx, []storage.Op{storage.CheckAbsent("once"), storage.Put("once", []byte(strconv.Itoa(i)))})
		})
	}
	wg.Go(func() {
		failErr = b.Txn(ctx, []storage.Op{storage.Put("never", nil), storage.CheckEqual("existing", []byte("new"))})
	})
	waitUntil(t, "every write is queued", func() bool { return b.queued() == puts+racers+1 })
	release()
	wg.Wait()
	if err := b.wait(ctx, first); err != nil {
		t.Fatal(err)
	}

	if got, want := fmt.Sprint(log.batches()), fmt.Sprint([]int{1, 1, puts + racers + 1}); got != want {
		t.Errorf("commit batch sizes = %s, want %s (setup, the blocked commit, then one for all queued writes)", got, want)
	}
	for i, err := range putErrs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	winners := 0
	for i, err := range raceErrs {
		if err == nil {
			winners++
			continue
		}
		if ce, ok := errors.AsType[*storage.ConflictError](err); !ok || ce.Key != "once" {
			t.Errorf("racer %d: %v, want nil or a conflict at \"once\"", i, err)
		}
	}
	if winners != 1 {
		t.Errorf("%d racers created \"once\", want 1", winners)
	}
	if ce, ok := errors.AsType[*storage.ConflictError](failErr); !ok || ce.Key != "existing" {
		t.Errorf("failing txn: %v, want a conflict at \"existing\"", failErr)
	}
	if _, err := b.Get(ctx, "never"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the failing txn's put was applied: %v", err)
	}
	names, err := b.List(ctx, "p/")
	if err != nil || len(names) != puts {
		t.Errorf("List(p/) = %d names, %v; want %d", len(names), err, puts)
	}
}

func TestCommitFailure(t *testing.T) {
	t.Parallel()
	// A real fault: the file may not grow past MaxSize, so a commit that
	// needs more room fails inside bbolt and rolls back.
	b, path := newTestBackend(t, Options{MaxSize: 1 << 20})
	ctx := t.Context()
	if err := b.Put(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	_, release := startBlockedCommit(t, b, storage.Put("first", nil))

	// Three small writes share a commit with one too large for the file.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range 3 {
		wg.Go(func() { errs[i] = b.Put(ctx, fmt.Sprintf("small/%d", i), []byte("v")) })
	}
	wg.Go(func() { errs[3] = b.Put(ctx, "huge", make([]byte, 2<<20)) })
	waitUntil(t, "every write is queued", func() bool { return b.queued() == 4 })
	release()
	wg.Wait()

	for i, err := range errs {
		if !errors.Is(err, berrors.ErrMaxSizeReached) {
			t.Errorf("write %d in the failed commit: %v, want ErrMaxSizeReached", i, err)
		}
	}
	for _, k := range []string{"huge", "small/0", "small/1", "small/2"} {
		if _, err := b.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) after the failed commit: %v, want ErrNotFound", k, err)
		}
	}
	// The backend keeps working, and the earlier data is intact on disk.
	if err := b.Put(ctx, "after", []byte("ok")); err != nil {
		t.Fatalf("Put after a failed commit: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for k, want := range map[string]string{"before": "kept", "after": "ok"} {
		if v, err := b2.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("Get(%q) after reopen = %q, %v; want %q", k, v, err, want)
		}
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	t.Parallel()
	b, path := newTestBackend(t, Options{})
	first, release := startBlockedCommit(t, b, storage.Put("first", nil))
	errc := make(chan error, 1)
	go func() { errc <- b.Put(t.Context(), "queued", []byte("v")) }()
	waitUntil(t, "the write is queued", func() bool { return b.queued() == 1 })

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	waitUntil(t, "Close begins", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.closed })
	if err := b.Put(t.Context(), "late", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put during Close: %v, want ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := b.wait(t.Context(), first); err != nil {
		t.Errorf("first: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("write queued before Close: %v", err)
	}
	b2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if v, err := b2.Get(t.Context(), "queued"); err != nil || string(v) != "v" {
		t.Errorf("write queued before Close, after reopen: %q, %v", v, err)
	}
}
