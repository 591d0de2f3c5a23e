package kv

import (
	"context"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// versionsRequest parses the path and {"versions":[...]} of delete,
// undelete and destroy.
func versionsRequest(r *core.Request) (string, []uint64, error) {
	p, err := pathParam(r)
	if err != nil {
		return "", nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return "", nil, err
	}
	vs, err := in.Versions("versions")
	if err != nil {
		return "", nil, err
	}
	if len(vs) == 0 {
		return "", nil, core.BadRequest("No version number provided")
	}
	return p, vs, nil
}

// eachVersion runs fn on every listed version the key has and saves the
// record if fn changed any. A missing key is not an error.
func (e *Engine) eachVersion(ctx context.Context, p string, vs []uint64,
	fn func(m *keyMeta, n uint64, v *versionMeta, now time.Time) (bool, []storage.Op)) error {
	_, err := e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
		if !exists {
			return keep, nil, nil
		}
		now := e.now().UTC()
		var ops []storage.Op
		changed := false
		for _, n := range vs {
			v := m.Versions[n]
			if v == nil {
				continue
			}
			c, more := fn(m, n, v, now)
			changed = changed || c
			ops = append(ops, more...)
		}
		if !changed {
			return keep, nil, nil
		}
		return save, ops, nil
	})
	return err
}

// versionsDelete answers POST delete/<path> {"versions":[...]}: soft-delete
// each listed version that is live.
func (e *Engine) versionsDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, vs, err := versionsRequest(r)
	if err != nil {
		return nil, err
	}
	return nil, e.eachVersion(ctx, p, vs, func(_ *keyMeta, _ uint64, v *versionMeta, now time.Time) (bool, []storage.Op) {
		if !v.live(now) {
			return false, nil
		}
		v.DeletionTime = now
		return true, nil
	})
}

// versionsUndelete answers POST undelete/<path> {"versions":[...]}: clear
// the deletion of each listed version that is not destroyed. As in
// OpenBao, a version then gets a fresh delete_version_after deadline
// counted from now, when one applies.
func (e *Engine) versionsUndelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, vs, err := versionsRequest(r)
	if err != nil {
		return nil, err
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	return nil, e.eachVersion(ctx, p, vs, func(m *keyMeta, _ uint64, v *versionMeta, now time.Time) (bool, []storage.Op) {
		if v.gone(now) {
			return false, nil
		}
		v.DeletionTime = time.Time{}
		if dt, ok := deletionDeadline(now, cfg, m); ok {
			v.DeletionTime = dt
		}
		return true, nil
	})
}

// versionsDestroy answers PUT destroy/<path> {"versions":[...]}: delete the
// data of each listed version for good; its metadata stays, marked
// destroyed.
func (e *Engine) versionsDestroy(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, vs, err := versionsRequest(r)
	if err != nil {
		return nil, err
	}
	return nil, e.eachVersion(ctx, p, vs, func(_ *keyMeta, n uint64, v *versionMeta, _ time.Time) (bool, []storage.Op) {
		if v.Destroyed {
			return false, nil
		}
		v.Destroyed = true
		return true, []storage.Op{storage.Delete(versionKey(p, n))}
	})
}
