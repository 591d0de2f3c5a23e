package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// dataExists tells create from update for data writes: an update is a
// write to a key whose current version is live (readable). Anything else,
// including a key whose latest version is deleted or destroyed, is a
// create.
func (e *Engine) dataExists(ctx context.Context, r *core.Request) (bool, error) {
	p := r.Params["path"]
	if validatePath(p) != nil {
		return false, nil // the handler reports the bad path
	}
	m, _, err := e.loadMeta(ctx, p)
	if err != nil || m == nil {
		return false, err
	}
	cur := m.current()
	return cur != nil && cur.live(e.now().UTC()), nil
}

// dataRead answers GET data/<path>[?version=N].
func (e *Engine) dataRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	ver, _, err := in.Int("version")
	if err != nil {
		return nil, err
	}

	l := e.lock(p)
	l.RLock()
	defer l.RUnlock()
	m, err := e.loadMetaShared(ctx, p) // read-only below
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, core.ErrNotFound
	}
	n := m.CurrentVersion
	if ver > 0 {
		n = uint64(ver)
	}
	v := m.Versions[n]
	if v == nil {
		return nil, core.ErrNotFound
	}
	now := e.now().UTC()
	info := versionInfo(m, n, v, now)
	if !v.live(now) {
		return &core.Response{NotFoundWithData: true, Data: map[string]any{"data": nil, "metadata": info}}, nil
	}
	data, err := e.loadVersionShared(ctx, p, n)
	if err != nil {
		return nil, err
	}
	e.reads.record(p, n, now)
	return &core.Response{Data: map[string]any{"data": data, "metadata": info}}, nil
}

// maxSharedData is the largest stored version whose decoded data
// loadVersionShared keeps.
const maxSharedData = 16 << 10

// loadVersionShared is loadVersion for readers holding p's read lock:
// the decoded data of the version last read is kept and shared between
// them while its stored bytes stay the same, and must be treated as
// read-only. Decoding is a third of a small secret's read.
func (e *Engine) loadVersionShared(ctx context.Context, p string, n uint64) (map[string]any, error) {
	raw, err := e.getVersion(ctx, p, n)
	if err != nil {
		return nil, err
	}
	if d, ok := e.datas.get(p, raw); ok && d.n == n {
		return d.data, nil
	}
	data, err := decodeVersion(p, n, raw)
	if err == nil && len(raw) <= maxSharedData {
		e.datas.put(p, raw, versionData{n: n, data: data})
	}
	return data, err
}

// loadVersion reads version n's data.
func (e *Engine) loadVersion(ctx context.Context, p string, n uint64) (map[string]any, error) {
	raw, err := e.getVersion(ctx, p, n)
	if err != nil {
		return nil, err
	}
	return decodeVersion(p, n, raw)
}

// getVersion reads version n's stored data.
func (e *Engine) getVersion(ctx context.Context, p string, n uint64) ([]byte, error) {
	raw, err := e.store.Get(ctx, versionKey(p, n))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("kv: %s version %d: metadata lists it but its data is missing", field.Quote(p), n)
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read %s version %d: %w", field.Quote(p), n, err)
	}
	return raw, nil
}

func decodeVersion(p string, n uint64, raw []byte) (map[string]any, error) {
	data, err := field.DecodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("kv: decode %s version %d: %w", field.Quote(p), n, err)
	}
	return data, nil
}

// encodeData encodes a secret's data for storage (sorted keys, numbers as
// sent) and enforces the mount's size limit.
func (e *Engine) encodeData(data map[string]any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, core.BadRequest("data cannot be encoded as JSON: %v", err)
	}
	if len(raw) > e.maxValueSize {
		return nil, core.StatusError(413, "secret data is %d bytes encoded, more than this mount's limit of %d bytes (mount option max_value_size)", len(raw), e.maxValueSize)
	}
	return raw, nil
}

// casOption returns options.cas of a data write or patch.
func casOption(in *field.Set) (cas int64, ok bool, err error) {
	opts, ok, err := in.Object("options")
	if err != nil || !ok {
		return 0, false, err
	}
	raw, ok := opts["cas"]
	if !ok || raw == nil {
		return 0, false, nil
	}
	enc, _ := json.Marshal(raw)
	cas, err = field.ParseInt(enc)
	if err != nil {
		return 0, true, core.BadRequest("error parsing check-and-set parameter")
	}
	return cas, true, nil
}

// checkCAS applies Vault's check-and-set rule for data writes.
func checkCAS(required bool, cas int64, casOK bool, current uint64) error {
	if casOK {
		if cas < 0 || uint64(cas) != current {
			return core.BadRequest("check-and-set parameter did not match the current version")
		}
		return nil
	}
	if required {
		return core.BadRequest("check-and-set parameter required for this call")
	}
	return nil
}

// dataWrite answers POST/PUT data/<path> {"data":{...},"options":{"cas":N}}:
// a new version, written with its metadata in one Txn.
func (e *Engine) dataWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	in, err := e.decodeDataInput(ctx, r)
	if err != nil {
		return nil, err
	}
	encoded, err := e.encodeData(in.data)
	if err != nil {
		return nil, err
	}
	p, cfg := in.path, in.cfg
	var info map[string]any
	_, err = e.mutate(ctx, p, func(m *keyMeta, _ bool) (change, []storage.Op, error) {
		if err := in.checkCAS(m); err != nil {
			return keep, nil, err
		}
		now := e.now().UTC()
		vm, pruned := m.addVersion(now, cfg)
		info = versionInfo(m, m.CurrentVersion, vm, now)
		return save, versionOps(p, m.CurrentVersion, encoded, pruned), nil
	})
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: info, Warnings: in.fields.Warnings(r)}, nil
}

// dataInput is what a data write or patch asks for: the path, the body's
// "data" object and its check-and-set option, and the mount's config.
type dataInput struct {
	path   string
	fields *field.Set
	data   map[string]any
	cas    int64
	casOK  bool
	cfg    *engineConfig
}

func (e *Engine) decodeDataInput(ctx context.Context, r *core.Request) (*dataInput, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	fields, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	data, ok, err := fields.Object("data")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.BadRequest("no data provided")
	}
	cas, casOK, err := casOption(fields)
	if err != nil {
		return nil, err
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	return &dataInput{path: p, fields: fields, data: data, cas: cas, casOK: casOK, cfg: cfg}, nil
}

// checkCAS applies the check-and-set rule to a write on top of m.
func (in *dataInput) checkCAS(m *keyMeta) error {
	return checkCAS(in.cfg.CASRequired || m.CASRequired, in.cas, in.casOK, m.CurrentVersion)
}

// versionOps stores version n and drops the pruned versions' data.
func versionOps(p string, n uint64, encoded []byte, pruned []uint64) []storage.Op {
	ops := make([]storage.Op, 0, 1+len(pruned))
	ops = append(ops, storage.Put(versionKey(p, n), encoded))
	for _, old := range pruned {
		ops = append(ops, storage.Delete(versionKey(p, old)))
	}
	return ops
}

// dataPatch answers PATCH data/<path>: the current version's data merged
// with the request's data (RFC 7386) becomes a new version. The key and a
// live current version must exist.
func (e *Engine) dataPatch(ctx context.Context, r *core.Request) (*core.Response, error) {
	in, err := e.decodeDataInput(ctx, r)
	if err != nil {
		return nil, err
	}
	p, cfg, patch := in.path, in.cfg, in.data
	var info map[string]any
	var gone *core.Response
	_, err = e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
		if !exists {
			return keep, nil, core.ErrNotFound
		}
		if err := in.checkCAS(m); err != nil {
			return keep, nil, err
		}
		cur := m.current()
		if cur == nil {
			return keep, nil, core.ErrNotFound
		}
		now := e.now().UTC()
		if !cur.live(now) {
			// As OpenBao: 404 carrying the version's metadata, flat.
			gone = &core.Response{NotFoundWithData: true, Data: versionInfo(m, m.CurrentVersion, cur, now)}
			return keep, nil, nil
		}
		data, err := e.loadVersion(ctx, p, m.CurrentVersion)
		if err != nil {
			return keep, nil, err
		}
		encoded, err := e.encodeData(mergeObjects(data, patch))
		if err != nil {
			return keep, nil, err
		}
		vm, pruned := m.addVersion(now, cfg)
		info = versionInfo(m, m.CurrentVersion, vm, now)
		return save, versionOps(p, m.CurrentVersion, encoded, pruned), nil
	})
	if err != nil {
		return nil, err
	}
	if gone != nil {
		return gone, nil
	}
	return &core.Response{Data: info, Warnings: in.fields.Warnings(r)}, nil
}

// dataDelete answers DELETE data/<path>: soft-delete the current version.
// A missing key or an already deleted version is not an error (204).
func (e *Engine) dataDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	_, err = e.mutate(ctx, p, func(m *keyMeta, exists bool) (change, []storage.Op, error) {
		now := e.now().UTC()
		cur := m.current()
		if !exists || cur == nil || !cur.live(now) {
			return keep, nil, nil
		}
		cur.DeletionTime = now
		return save, nil, nil
	})
	return nil, err
}

// subkeysRead answers GET subkeys/<path>[?version=N&depth=D]: the data's
// structure with every value replaced by null.
func (e *Engine) subkeysRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := pathParam(r)
	if err != nil {
		return nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	ver, _, err := in.Int("version")
	if err != nil {
		return nil, err
	}
	depth, _, err := in.Int("depth")
	if err != nil {
		return nil, err
	}
	if depth < 0 {
		return nil, core.BadRequest("depth must not be negative (0 means no limit), got %d", depth)
	}

	l := e.lock(p)
	l.RLock()
	defer l.RUnlock()
	m, err := e.loadMetaShared(ctx, p) // read-only below
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, core.ErrNotFound
	}
	n := m.CurrentVersion
	if ver > 0 {
		n = uint64(ver)
	}
	v := m.Versions[n]
	if v == nil {
		return nil, core.ErrNotFound
	}
	now := e.now().UTC()
	info := versionInfo(m, n, v, now)
	if !v.live(now) {
		return &core.Response{NotFoundWithData: true, Data: map[string]any{"subkeys": nil, "metadata": info}}, nil
	}
	data, err := e.loadVersion(ctx, p, n)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"subkeys": subkeys(data, int(depth)), "metadata": info}}, nil
}
