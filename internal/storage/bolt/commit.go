package bolt

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cofferhq/coffer/internal/storage"
)

// submit queues ops as one request and waits for the commit that takes it.
func (b *Backend) submit(ctx context.Context, ops []storage.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := b.enqueue(ops)
	if err != nil {
		return err
	}
	return b.wait(ctx, r)
}

// enqueue adds a request for ops to the queue and wakes the commit loop.
func (b *Backend) enqueue(ops []storage.Op) (*request, error) {
	r := &request{ops: ops, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // a wake-up is already pending; the loop will see r
	}
	return r, nil
}

// wait returns r's result. If ctx ends first and no commit has taken r
// yet, r is withdrawn and wait returns ctx's error; otherwise it waits for
// the commit that owns r.
func (b *Backend) wait(ctx context.Context, r *request) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	taken := r.taken
	r.cancelled = !taken
	b.mu.Unlock()
	if !taken {
		return fmt.Errorf("bolt: write abandoned before commit, nothing written: %w", ctx.Err())
	}
	<-r.done
	return r.err
}

// run is the commit loop. Open starts it; Close stops it and waits.
func (b *Backend) run() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
			b.commitQueued()
		case <-b.stop:
			// No request can join after closed is set, so this drains
			// the queue for good.
			b.commitQueued()
			return
		}
	}
}

// commitQueued commits batches until the queue is empty.
func (b *Backend) commitQueued() {
	for {
		batch := b.take()
		if len(batch) == 0 {
			return
		}
		b.commit(batch)
	}
}

// take removes up to maxBatch live requests from the front of the queue,
// marking them taken, and drops cancelled ones it passes.
func (b *Backend) take() []*request {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*request
	n := 0
	for n < len(b.queue) && len(batch) < maxBatch {
		r := b.queue[n]
		n++
		if r.cancelled {
			continue
		}
		r.taken = true
		batch = append(batch, r)
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// commit runs batch in one read-write transaction and tells every request
// its result.
func (b *Backend) commit(batch []*request) {
	start := time.Now()
	conflicts := 0
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketName)
		for _, r := range batch {
			if key, ok := checksHold(bk, r.ops); !ok {
				r.err = &storage.ConflictError{Key: key}
				conflicts++
				continue
			}
			if err := apply(bk, r.ops); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The whole transaction rolled back: conflicts found inside it
		// were judged against writes that no longer exist, so they too
		// get the commit's error.
		err = fmt.Errorf("bolt: commit to %s failed, nothing written: %w", b.path, err)
		b.log.Error("commit failed", "requests", len(batch), "err", err)
		for _, r := range batch {
			r.err = err
		}
	} else if b.log.Enabled(context.Background(), slog.LevelDebug) {
		b.log.Debug("commit", "requests", len(batch), "conflicts", conflicts, "duration", time.Since(start))
	}
	for _, r := range batch {
		close(r.done)
	}
}

// checksHold evaluates ops' checks against bk before any of ops apply and
// returns the key of the first that fails.
func checksHold(bk *bbolt.Bucket, ops []storage.Op) (key string, ok bool) {
	for _, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		v, exists := lookup(bk, []byte(op.Key))
		if op.Absent {
			if exists {
				return op.Key, false
			}
		} else if !exists || !bytes.Equal(v, op.Value) {
			return op.Key, false
		}
	}
	return "", true
}

// apply performs ops' writes in order.
func apply(bk *bbolt.Bucket, ops []storage.Op) error {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case storage.OpPut:
			v := op.Value
			if v == nil {
				// Within a transaction bbolt's Bucket.Get cannot tell a
				// nil value from a missing key. lookup can, but store
				// an empty value so no reader ever has to.
				v = []byte{}
			}
			err = bk.Put([]byte(op.Key), v)
		case storage.OpDelete:
			err = bk.Delete([]byte(op.Key))
		}
		if err != nil {
			return fmt.Errorf("%v %q: %w", op.Kind, op.Key, err)
		}
	}
	return nil
}

// lookup finds key in bk. Unlike Bucket.Get it tells an empty value from a
// missing key in every case.
func lookup(bk *bbolt.Bucket, key []byte) (v []byte, ok bool) {
	k, v := bk.Cursor().Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}
