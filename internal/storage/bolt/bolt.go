// Package bolt is coffer's default storage.Backend: a single bbolt file on
// local disk.
//
// # Layout
//
// Every key lives in one bucket, "coffer", under its full path as the bbolt
// key ("sys/mounts", "logical/3f2a/data/app"). bbolt keeps keys in byte
// order, so List seeks to its prefix and, when it meets a child folder,
// seeks past the folder's whole subtree instead of scanning it: a List
// costs one seek per child, however much lies below each one.
//
// # Durability and group commit
//
// Every write is fsynced before it returns; the file is never opened with
// NoSync. To keep fsyncs from bounding write throughput, writes are
// grouped: Put, Delete and Txn queue a request for a single commit loop.
// While one bbolt read-write transaction is committing, new requests wait
// in the queue; the next commit takes all of them (up to 1024) into one
// transaction and one fsync. A lone writer finds the loop idle and commits
// at once, so it pays no batching delay (unlike bbolt's DB.Batch, which
// waits a fixed interval for company).
//
// Inside a shared transaction each request is evaluated in arrival order,
// with the same semantics it would have alone: its checks see the state
// left by the requests before it, and if one fails that request gets its
// own *storage.ConflictError and none of its ops apply, while the other
// requests still commit. If the commit itself fails, every request in it
// gets the error and nothing in it was written.
//
// A caller whose context ends while its request is still queued gets the
// context's error and its request is dropped: nothing was written. Once a
// commit has taken the request, the caller waits for that commit and gets
// its real result, so an error never hides a write that happened.
//
// Reads (Get, List) run in read-only bbolt transactions and never wait for
// the commit loop.
//
// # Locking
//
// bbolt holds an exclusive lock on the file while it is open. Open waits
// Options.LockTimeout (one second by default) for it and then fails with an
// error asking whether another coffer server is using the file.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cofferhq/coffer/internal/storage"
)

// ErrClosed is returned by every method of a Backend after Close.
var ErrClosed = errors.New("bolt: backend is closed")

// DefaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// maxBatch bounds the requests in one commit, so a flood of writers cannot
// grow one transaction without limit.
const maxBatch = 1024

// bucketName is the one bucket every key lives in.
var bucketName = []byte("coffer")

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives commit failures (Error) and per-commit batch sizes
	// (Debug). Records carry the file path, keys, counts and durations,
	// never values. Nil discards.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release
	// the file. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxSize caps the data file in bytes: a commit that would grow the
	// file past it fails and writes nothing. Zero means no cap.
	MaxSize int
}

// Backend is a storage.Backend on a bbolt file. Use Open to make one and
// Close to release the file.
type Backend struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger

	// mu guards queue, closed and each queued request's taken and
	// cancelled flags. It is held only to add or take requests, never
	// during a commit.
	mu     sync.Mutex
	queue  []*request // requests waiting for the next commit, oldest first
	closed bool       // Close has begun; no new requests are accepted

	wake chan struct{} // capacity 1: a request was queued
	stop chan struct{} // closed by Close: commit what is queued and return
	done chan struct{} // closed when the commit loop has returned

	closeOnce sync.Once
	closeErr  error // set once by closeOnce
}

var (
	_ storage.Backend = (*Backend)(nil)
	_ storage.Closer  = (*Backend)(nil)
)

// request is one Put, Delete or Txn waiting for a commit.
type request struct {
	ops []storage.Op // validated; values are not copied and must stay live until done

	taken     bool // guarded by Backend.mu: a commit owns the request
	cancelled bool // guarded by Backend.mu: the caller left before it was taken

	err  error         // written by the commit loop before done is closed
	done chan struct{} // closed when the request's commit has finished
}

// Open opens (creating if needed, with mode 0600) the bbolt file at path
// and starts its commit loop. The caller must Close the Backend.
func Open(path string, opts Options) (*Backend, error) {
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("bolt: open %s: MaxSize is %d; use a positive size, or 0 for no cap", path, opts.MaxSize)
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: timeout,
		MaxSize: opts.MaxSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: file still locked after %v (is another coffer server using it?): %w", path, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := ensureBucket(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}

	b := &Backend{
		db:   db,
		path: path,
		log:  log.With("path", path),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.run()
	return b, nil
}

// ensureBucket creates the bucket in a new file, without a write (and an
// fsync) when it already exists.
func ensureBucket(db *bbolt.DB) error {
	var exists bool
	if err := db.View(func(tx *bbolt.Tx) error {
		exists = tx.Bucket(bucketName) != nil
		return nil
	}); err != nil {
		return err
	}
	if exists {
		return nil
	}
	return db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
}

// Close commits the writes already queued, stops the commit loop and
// closes the file. Writes started after Close get ErrClosed. Close is safe
// to call more than once; later calls return the first call's result.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
		<-b.done
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("bolt: close %s: %w", b.path, err)
		}
	})
	return b.closeErr
}

// Put stores value at key. It returns once the write is fsynced.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := validateValue(key, value); err != nil {
		return err
	}
	return b.submit(ctx, []storage.Op{storage.Put(key, value)})
}

// Delete removes key. It returns once the write is fsynced.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	return b.submit(ctx, []storage.Op{storage.Delete(key)})
}

// Txn applies ops atomically. It returns once the write is fsynced.
func (b *Backend) Txn(ctx context.Context, ops []storage.Op) error {
	if err := storage.ValidateOps(ops); err != nil {
		return err
	}
	for _, op := range ops {
		if op.Kind == storage.OpPut {
			if err := validateValue(op.Key, op.Value); err != nil {
				return err
			}
		}
	}
	if len(ops) == 0 {
		return ctx.Err()
	}
	return b.submit(ctx, ops)
}

func validateValue(key string, v []byte) error {
	if len(v) > bbolt.MaxValueSize {
		return fmt.Errorf("bolt: value for %q is %d bytes, more than the %d a bolt file can hold; store it in pieces", key, len(v), bbolt.MaxValueSize)
	}
	return nil
}
