package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// marker is the value of a revoke/<hash> row: what kind of revocation is
// pending and since when.
type marker struct {
	Mode  string    `json:"mode"`
	Since time.Time `json:"since"`
}

func markerValue(mode string, now time.Time) []byte {
	b, _ := json.Marshal(marker{Mode: mode, Since: now}) // cannot fail
	return b
}

// readMarker reads the marker of h. An unreadable marker is a tree
// revocation: when in doubt, revoke more, not less.
func (s *Store) readMarker(ctx context.Context, h string) (marker, error) {
	raw, err := s.b.Get(ctx, revokeKey(h))
	if errors.Is(err, storage.ErrNotFound) {
		return marker{}, ErrNotFound
	}
	if err != nil {
		return marker{}, fmt.Errorf("token: read revocation marker: %w", err)
	}
	var m marker
	if json.Unmarshal(raw, &m) != nil || (m.Mode != revokeTree && m.Mode != revokeOrphan) {
		m.Mode = revokeTree
	}
	return m, nil
}

// Revoke revokes e and every token created under it, at any depth. The
// token and its subtree fail Lookup from the first write on; if Revoke is
// interrupted, ResumeRevocations (or Run) completes it. Revoking a token
// that is already gone is not an error.
func (s *Store) Revoke(ctx context.Context, e *Entry) error {
	if e == nil || !isHash(e.ID) {
		return nil
	}
	_, err := s.revoke(ctx, e.ID, revokeTree, nil)
	return err
}

// RevokeOrphan revokes e alone: its children lose their parent and become
// orphans, and live on until their own expiry. Crash-safe like Revoke.
func (s *Store) RevokeOrphan(ctx context.Context, e *Entry) error {
	if e == nil || !isHash(e.ID) {
		return nil
	}
	_, err := s.revoke(ctx, e.ID, revokeOrphan, nil)
	return err
}

// errSkip says mark found nothing to revoke.
var errSkip = errors.New("token: nothing to revoke")

// revoke runs, or resumes, the revocation of h. When cond is set it must
// hold for the current entry, checked atomically with marking it; else
// nothing happens. ran reports whether a revocation was carried out.
func (s *Store) revoke(ctx context.Context, h, mode string, cond func(*Entry) bool) (ran bool, err error) {
	mode, err = s.mark(ctx, h, mode, cond)
	if errors.Is(err, errSkip) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("token: revoke %s: %w", short(h), err)
	}
	switch mode {
	case revokeTree:
		err = s.deleteDescendants(ctx, h)
	case revokeOrphan:
		err = s.orphanChildren(ctx, h)
	}
	if err == nil {
		err = s.deleteNode(ctx, h, "")
	}
	if err != nil {
		return false, fmt.Errorf("token: revoke %s: %w", short(h), err)
	}
	s.log.Debug("token revoked", "token_hash", short(h), "mode", mode)
	return true, nil
}

// mark flags the entry of h as being revoked and writes its marker, in
// one Txn, and returns the mode to carry out: a tree revocation already
// under way wins over an orphan one. With the entry gone but a marker
// left, it returns the marker's mode so the rest is finished.
func (s *Store) mark(ctx context.Context, h, mode string, cond func(*Entry) bool) (string, error) {
	var got string
	err := retry(ctx, "mark", func() error {
		raw, e, err := s.get(ctx, h)
		if errors.Is(err, ErrNotFound) {
			m, err := s.readMarker(ctx, h)
			if errors.Is(err, ErrNotFound) {
				return errSkip
			}
			got = m.Mode
			return err
		}
		if err != nil {
			return err
		}
		if cond != nil && !cond(e) {
			return errSkip
		}
		got = mode
		if e.Revocation == revokeTree {
			got = revokeTree
		}
		if e.Revocation == got {
			return nil // marked earlier; the marker was written with the flag
		}
		e.Revocation = got
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode entry: %w", err)
		}
		err = s.b.Txn(ctx, []storage.Op{
			storage.CheckEqual(idKey(h), raw),
			storage.Put(idKey(h), b),
			storage.Put(revokeKey(h), markerValue(got, s.clock())),
		})
		if err != nil {
			return fmt.Errorf("mark: %w", err)
		}
		return nil
	})
	return got, err
}

// children lists the hashes indexed as children of h.
func (s *Store) children(ctx context.Context, h string) ([]string, error) {
	names, err := s.b.List(ctx, parentPrefix(h))
	if err != nil {
		return nil, fmt.Errorf("list children: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			out = append(out, n)
		}
	}
	return out, nil
}

// deleteDescendants deletes every descendant of root, leaves first, so
// that whatever an interruption leaves behind is still a tree hanging from
// root (and still refused by Lookup, whose ancestor walk reaches root's
// flag). It uses an explicit stack: no recursion depth to exhaust.
func (s *Store) deleteDescendants(ctx context.Context, root string) error {
	type frame struct {
		h, parent string
		kids      []string
	}
	kids, err := s.children(ctx, root)
	if err != nil {
		return err
	}
	seen := map[string]bool{root: true}
	stack := []frame{{h: root, kids: kids}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.kids) > 0 {
			c, parent := top.kids[0], top.h
			top.kids = top.kids[1:]
			if seen[c] {
				// A link back into the walk: corrupt, but must not loop.
				if err := s.b.Delete(ctx, parentKey(parent, c)); err != nil {
					return fmt.Errorf("delete link: %w", err)
				}
				continue
			}
			seen[c] = true
			ck, err := s.children(ctx, c)
			if err != nil {
				return err
			}
			stack = append(stack, frame{h: c, parent: parent, kids: ck})
			continue
		}
		f := *top
		stack = stack[:len(stack)-1]
		if f.h == root {
			break
		}
		if err := s.deleteNode(ctx, f.h, f.parent); err != nil {
			return err
		}
	}
	return nil
}

// orphanChildren detaches every child of h: its parent link goes and its
// entry's Parent is cleared, in one Txn per child.
func (s *Store) orphanChildren(ctx context.Context, h string) error {
	kids, err := s.children(ctx, h)
	if err != nil {
		return err
	}
	for _, c := range kids {
		_, err := s.update(ctx, c, func(ce *Entry) ([]storage.Op, error) {
			if ce.Parent == h {
				ce.Parent = ""
			}
			return []storage.Op{storage.Delete(parentKey(h, c))}, nil
		})
		if errors.Is(err, ErrNotFound) {
			err = s.b.Delete(ctx, parentKey(h, c))
		}
		if err != nil {
			return fmt.Errorf("orphan child %s: %w", short(c), err)
		}
	}
	return nil
}

// deleteNode deletes the token h and every row that points at it (its
// accessor, expiry row, parent link and revocation marker) in one Txn.
// parent names a link to remove besides the one the entry records (the
// link a walk followed). A missing entry leaves only the link and marker
// to delete.
func (s *Store) deleteNode(ctx context.Context, h, parent string) error {
	return retry(ctx, "delete "+short(h), func() error {
		raw, e, err := s.get(ctx, h)
		if errors.Is(err, ErrNotFound) {
			ops := []storage.Op{storage.Delete(revokeKey(h))}
			if parent != "" {
				ops = append(ops, storage.Delete(parentKey(parent, h)))
			}
			if err := s.b.Txn(ctx, ops); err != nil {
				return fmt.Errorf("delete marker: %w", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		ops := []storage.Op{
			storage.CheckEqual(idKey(h), raw),
			storage.Delete(idKey(h)),
			storage.Delete(accessorKey(s.hash.accessor(e.Accessor))),
			storage.Delete(revokeKey(h)),
		}
		if k := expiryKey(e.ExpireAt, h); k != "" {
			ops = append(ops, storage.Delete(k))
		}
		if e.Parent != "" {
			ops = append(ops, storage.Delete(parentKey(e.Parent, h)))
		}
		if parent != "" && parent != e.Parent {
			ops = append(ops, storage.Delete(parentKey(parent, h)))
		}
		if err := s.b.Txn(ctx, ops); err != nil {
			return fmt.Errorf("delete token %s: %w", short(h), err)
		}
		s.decoded.Delete(h)
		return nil
	})
}

// ResumeRevocations finishes every revocation that was interrupted (by a
// crash, a lost connection, a caller that never revoked an exhausted
// token). It reports how many it completed. Run calls it on start.
func (s *Store) ResumeRevocations(ctx context.Context) (int, error) {
	return s.resume(ctx, time.Time{})
}

// resume finishes the revocations marked before the given time (all of
// them when it is zero).
func (s *Store) resume(ctx context.Context, before time.Time) (int, error) {
	names, err := s.b.List(ctx, revokePrefix)
	if err != nil {
		return 0, fmt.Errorf("token: list revocation markers: %w", err)
	}
	var errs []error
	n := 0
	for _, h := range names {
		if !isHash(h) {
			continue
		}
		m, err := s.readMarker(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue // finished meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !before.IsZero() && !m.Since.Before(before) {
			continue // probably still running
		}
		ran, err := s.revoke(ctx, h, m.Mode, nil)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if ran {
			n++
		}
	}
	if n > 0 {
		s.log.Info("finished interrupted token revocations", "count", n)
	}
	return n, errors.Join(errs...)
}
