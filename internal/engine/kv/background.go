package kv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// maxPendingPaths caps the paths whose read times wait for a flush, so a
// flood of reads of distinct paths cannot grow memory without bound;
// reads past the cap are not recorded until the next flush frees room.
const maxPendingPaths = 100_000

// readTracker holds last_read times not yet written to storage.
type readTracker struct {
	// mu guards pending.
	mu      sync.Mutex
	pending map[string]map[uint64]time.Time // path -> version -> last read
	dropped int                             // reads not recorded (cap)
}

func (t *readTracker) record(p string, n uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs, ok := t.pending[p]
	if !ok {
		if len(t.pending) >= maxPendingPaths {
			t.dropped++
			return
		}
		vs = map[uint64]time.Time{}
		t.pending[p] = vs
	}
	if at.After(vs[n]) {
		vs[n] = at
	}
}

// get returns a copy of p's pending read times.
func (t *readTracker) get(p string) map[uint64]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.pending[p])
}

// forget drops p's pending read times (its metadata was deleted).
func (t *readTracker) forget(p string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, p)
}

// snapshot copies everything pending, and returns (and resets) the count
// of reads the cap kept out.
func (t *readTracker) snapshot() (map[string]map[uint64]time.Time, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dropped := t.dropped
	t.dropped = 0
	out := make(map[string]map[uint64]time.Time, len(t.pending))
	for p, vs := range t.pending {
		out[p] = maps.Clone(vs)
	}
	return out, dropped
}

// done drops the pending times of p that flushed (reads recorded since
// the snapshot stay pending).
func (t *readTracker) done(p string, flushed map[uint64]time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs := t.pending[p]
	for n, at := range flushed {
		if cur, ok := vs[n]; ok && !cur.After(at) {
			delete(vs, n)
		}
	}
	if len(vs) == 0 {
		delete(t.pending, p)
	}
}

// Run does the engine's background work until ctx ends: it flushes
// last_read times every flush interval and destroys expired versions
// every sweep interval (and once at start). When ctx ends it flushes one
// last time, with a short deadline of its own. Failures are logged and
// retried on the next tick; Run returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	flush := time.NewTicker(e.flushInterval)
	defer flush.Stop()
	sweep := time.NewTicker(e.sweepInterval)
	defer sweep.Stop()

	if err := e.sweep(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("expiry sweep failed", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			err := e.flushReads(fctx)
			cancel()
			if err != nil {
				e.log.Warn("final last_read flush failed; recent read times are lost", "err", err)
			}
			return nil
		case <-flush.C:
			if err := e.flushReads(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("last_read flush failed; will retry", "err", err)
			}
		case <-sweep.C:
			if err := e.sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("expiry sweep failed; will retry", "err", err)
			}
		}
	}
}

// flushBatch is how many metadata records one last_read flush commits
// together.
const flushBatch = 256

// flushReads writes pending last_read times into the metadata records,
// many keys per storage Txn: one commit (one fsync on bbolt) per batch,
// not per key, so a flush after a burst of reads of thousands of keys
// neither floods the disk nor holds up readers. Each record is guarded by
// a check that it is still what the flush read; when a writer got in
// between, that batch falls back to one locked read-modify-write per key.
// Keys that fail stay pending.
func (e *Engine) flushReads(ctx context.Context) error {
	snap, dropped := e.reads.snapshot()
	if dropped > 0 {
		e.log.Warn("last_read not recorded for some reads: too many paths pending", "reads", dropped, "cap", maxPendingPaths)
	}
	paths := make([]string, 0, len(snap))
	for p := range snap {
		paths = append(paths, p)
	}
	var errs []error
	for len(paths) > 0 {
		n := min(flushBatch, len(paths))
		batch := paths[:n]
		paths = paths[n:]
		err := e.flushBatch(ctx, batch, snap)
		if errors.Is(err, storage.ErrConflict) {
			errs = append(errs, e.flushEach(ctx, batch, snap)...)
		} else if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// applyReads sets the last_read times of vs on m and reports a change.
func applyReads(m *keyMeta, vs map[uint64]time.Time) bool {
	changed := false
	for n, at := range vs {
		if v := m.Versions[n]; v != nil && at.After(v.LastRead) {
			v.LastRead = at
			changed = true
		}
	}
	return changed
}

// flushBatch commits the last_read times of paths in one Txn.
func (e *Engine) flushBatch(ctx context.Context, paths []string, snap map[string]map[uint64]time.Time) error {
	var ops []storage.Op
	var flushed []string
	for _, p := range paths {
		m, raw, err := e.loadMeta(ctx, p)
		if err != nil {
			return err
		}
		if m == nil || !applyReads(m, snap[p]) {
			e.reads.done(p, snap[p]) // deleted, or nothing newer
			continue
		}
		ops = append(ops, storage.CheckEqual(metaKey(p), raw), storage.Put(metaKey(p), m.encode()))
		flushed = append(flushed, p)
	}
	if len(ops) == 0 {
		return nil
	}
	if err := e.store.Txn(ctx, ops); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return err
		}
		return fmt.Errorf("last_read flush of %d keys: %w", len(flushed), err)
	}
	for _, p := range flushed {
		e.reads.done(p, snap[p])
	}
	return nil
}

// flushEach writes the last_read times of paths one key at a time.
func (e *Engine) flushEach(ctx context.Context, paths []string, snap map[string]map[uint64]time.Time) []error {
	var errs []error
	for _, p := range paths {
		vs := snap[p]
		_, err := e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
			if !exists || !applyReads(m, vs) {
				return keep, nil, nil
			}
			return save, nil, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("path %s: %w", field.Quote(p), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		e.reads.done(p, vs)
	}
	return errs
}

// sweep destroys the data of every version past its hard expiry.
func (e *Engine) sweep(ctx context.Context) error {
	var errs []error
	err := e.walk(ctx, "", func(p string, m *keyMeta) error {
		now := e.now().UTC()
		if !hasExpired(m, now) {
			return nil
		}
		var destroyed int
		_, err := e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
			destroyed = 0
			if !exists {
				return keep, nil, nil
			}
			var ops []storage.Op
			for n, v := range m.Versions {
				if !v.Destroyed && v.expired(now) {
					v.Destroyed = true
					ops = append(ops, storage.Delete(versionKey(p, n)))
				}
			}
			destroyed = len(ops)
			if destroyed == 0 {
				return keep, nil, nil
			}
			return save, ops, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("path %s: %w", field.Quote(p), err))
			return ctx.Err()
		}
		if destroyed > 0 {
			e.log.Info("destroyed expired versions", "path", p, "count", destroyed)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

func hasExpired(m *keyMeta, now time.Time) bool {
	for _, v := range m.Versions {
		if !v.Destroyed && v.expired(now) {
			return true
		}
	}
	return false
}

// walk calls fn for every key with metadata under the folder dir ("" or
// ending in "/"), depth first, in key order.
func (e *Engine) walk(ctx context.Context, dir string, fn func(p string, m *keyMeta) error) error {
	names, err := e.store.List(ctx, metaPrefix+dir)
	if err != nil {
		return fmt.Errorf("kv: list %s: %w", field.Quote(dir), err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			if err := e.walk(ctx, dir+name, fn); err != nil {
				return err
			}
			continue
		}
		m, _, err := e.loadMeta(ctx, dir+name)
		if err != nil {
			return err
		}
		if m == nil {
			continue // deleted since the List
		}
		if err := fn(dir+name, m); err != nil {
			return err
		}
	}
	return nil
}

// Stats counts what the metrics report about a mount.
type Stats struct {
	Keys     int // secrets with metadata
	Versions int // versions whose data is still stored
	// Expired counts versions past their hard expiry whose data the
	// background pass has not destroyed yet (they already read as 404).
	Expired int
	// PastRotation counts secrets with a rotation_period whose live
	// current version is older than that period.
	PastRotation int
}

// Stats walks every key of the mount and counts. Its cost is one List per
// folder and one Get per key, so call it at a metrics interval, not per
// request.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	now := e.now().UTC()
	err := e.walk(ctx, "", func(_ string, m *keyMeta) error {
		s.Keys++
		for _, v := range m.Versions {
			if v.Destroyed {
				continue
			}
			s.Versions++
			if v.expired(now) {
				s.Expired++
			}
		}
		if next, ok := m.nextRotation(); ok && m.current().live(now) && !now.Before(next) {
			s.PastRotation++
		}
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	return s, nil
}

// MountStats reports Stats in the generic shape the core's metrics read.
func (e *Engine) MountStats(ctx context.Context) (map[string]int, error) {
	s, err := e.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]int{"secrets": s.Keys, "versions": s.Versions, "expired": s.Expired, "past_rotation": s.PastRotation}, nil
}
