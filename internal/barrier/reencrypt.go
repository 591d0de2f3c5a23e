package barrier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

const (
	// saveEvery is how many records a Reencrypt pass visits between
	// best-effort writes of its cursor to the keyring.
	saveEvery = 256
	// saveTimeout bounds the cursor write a cancelled pass makes on its way
	// out.
	saveTimeout = 2 * time.Second
)

// NeedsReencrypt reports whether records sealed under a term older than
// the active one may exist: a Rotate happened after the last completed
// Reencrypt pass. It is false while sealed.
func (b *Barrier) NeedsReencrypt() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return false
	}
	b.keyringMu.Lock()
	defer b.keyringMu.Unlock()
	return b.prog.through < b.k.active.id
}

// Reencrypt is the background pass after Rotate. It walks every record in
// path order and rewrites those sealed under a term older than the term
// active when the pass started ("the target"), returning how many it
// rewrote. When the walk completes it records the target in the keyring as
// reencrypted_through, and NeedsReencrypt turns false unless Rotate ran
// meanwhile. A pass that finds nothing to do returns 0 and no error.
//
// Each rewrite is a physical Txn that checks the record still holds the
// ciphertext the pass read, so a concurrent write wins and is never
// overwritten with older data; Reencrypt is safe to run beside normal
// traffic. Only one pass runs at a time; a second call waits for it.
//
// Progress is saved in the keyring as a cursor (the last physical path
// done) every 256 records and when the pass stops early, so a pass
// interrupted by ctx, Seal or a crash resumes after a restart (New,
// Unseal, Reencrypt) where it left off. Reencrypt returns promptly when
// ctx is cancelled, with ctx's error. A record that fails to open stops
// the pass with an error naming it: delete or restore that entry and run
// the pass again.
func (b *Barrier) Reencrypt(ctx context.Context) (rewritten int, err error) {
	select {
	case b.pass <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-b.pass }()

	target, after, done, err := b.startPass()
	if err != nil || done {
		return 0, err
	}
	p := &reencryptPass{b: b, target: target, last: after}
	b.log.Info("barrier re-encryption started", "target_term", target, "resume_after", after)
	if err := b.walk(ctx, dataPrefix, after, p.visit); err != nil {
		if p.last != after {
			saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
			p.save(saveCtx)
			cancel()
		}
		return p.rewritten, fmt.Errorf("barrier: reencrypt: %w", err)
	}
	if err := b.finishPass(ctx, target); err != nil {
		return p.rewritten, fmt.Errorf("barrier: reencrypt: %w", err)
	}
	b.log.Info("barrier re-encryption finished", "target_term", target, "rewritten", p.rewritten, "visited", p.visited)
	return p.rewritten, nil
}

// startPass reads the target term and where to resume.
func (b *Barrier) startPass() (target uint32, after string, done bool, err error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return 0, "", false, ErrSealed
	}
	b.keyringMu.Lock()
	defer b.keyringMu.Unlock()
	target = b.k.active.id
	if b.prog.through >= target {
		return target, "", true, nil
	}
	if b.prog.cursorTerm == target {
		after = b.prog.cursorAfter
	}
	return target, after, false, nil
}

// finishPass records a completed pass towards target.
func (b *Barrier) finishPass(ctx context.Context, target uint32) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return ErrSealed
	}
	b.keyringMu.Lock()
	defer b.keyringMu.Unlock()
	p := progress{through: max(b.prog.through, target)}
	if err := b.writeKeyring(ctx, b.k.terms, b.k.active.id, p); err != nil {
		return err
	}
	b.prog = p
	return nil
}

// reencryptPass is the state of one Reencrypt call.
type reencryptPass struct {
	b         *Barrier
	target    uint32
	last      string // physical path of the last record done
	visited   int
	rewritten int
}

func (p *reencryptPass) visit(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rewrote, err := p.b.reencryptOne(ctx, path, p.target)
	if err != nil {
		return err
	}
	p.last = path
	p.visited++
	if rewrote {
		p.rewritten++
	}
	if p.visited%saveEvery == 0 {
		p.save(ctx)
	}
	return nil
}

// save writes the cursor, best effort: a lost cursor only means the next
// pass re-reads records this one already did.
func (p *reencryptPass) save(ctx context.Context) {
	b := p.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return
	}
	b.keyringMu.Lock()
	defer b.keyringMu.Unlock()
	if b.prog.through >= p.target {
		return
	}
	np := b.prog
	np.cursorTerm, np.cursorAfter = p.target, p.last
	if err := b.writeKeyring(ctx, b.k.terms, b.k.active.id, np); err != nil {
		b.log.Warn("barrier could not save re-encryption progress; a restarted pass will redo some records", "err", err)
		return
	}
	b.prog = np
}

// reencryptOne rewrites the record at physical path under the active term
// if it is sealed under a term older than target. It reports whether it
// wrote. A record deleted or rewritten concurrently is left alone: whoever
// changed it wrote under a term no older than target (see Barrier.mu).
func (b *Barrier) reencryptOne(ctx context.Context, path string, target uint32) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.k == nil {
		return false, ErrSealed
	}
	rec, err := b.phys.Get(ctx, path)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %q: %w", path, err)
	}
	key := strings.TrimPrefix(path, dataPrefix)
	id, err := recordTerm(key, rec)
	if err != nil {
		return false, err
	}
	if id >= target {
		return false, nil
	}
	plain, err := b.open(key, rec)
	if err != nil {
		return false, err
	}
	defer clear(plain)
	nrec, err := b.encrypt(ctx, key, plain)
	if err != nil {
		return false, err
	}
	err = b.phys.Txn(ctx, []storage.Op{storage.CheckEqual(path, rec), storage.Put(path, nrec)})
	if errors.Is(err, storage.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rewrite %q: %w", path, err)
	}
	return true, nil
}

// walk calls fn for every physical key under prefix that sorts after
// after, in sorted order. List gives children sorted with folders as
// "name/", and a folder's keys all sort where "name/" does among its
// siblings, so this depth-first walk visits keys in plain string order and
// can skip every folder that lies wholly at or before after.
func (b *Barrier) walk(ctx context.Context, prefix, after string, fn func(context.Context, string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	children, err := b.phys.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	for _, c := range children {
		full := prefix + c
		if strings.HasSuffix(c, "/") {
			if full < after && !strings.HasPrefix(after, full) {
				continue
			}
			if err := b.walk(ctx, full, after, fn); err != nil {
				return err
			}
			continue
		}
		if full <= after {
			continue
		}
		if err := fn(ctx, full); err != nil {
			return err
		}
	}
	return nil
}
