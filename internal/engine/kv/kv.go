package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// DefaultMaxValueSize is the largest secret (its data object, JSON-encoded)
// a write may store unless the mount's max_value_size option says
// otherwise.
const DefaultMaxValueSize = 1 << 20

// Background timing defaults.
const (
	// DefaultFlushInterval is how often pending last_read times are
	// written; it bounds what a crash can lose.
	DefaultFlushInterval = 10 * time.Second
	// DefaultSweepInterval is how often expired versions are destroyed.
	DefaultSweepInterval = time.Minute
	// finalFlushTimeout bounds the last flush after Run's context ends.
	finalFlushTimeout = 5 * time.Second
	// txnAttempts bounds the optimistic retries of one write.
	txnAttempts = 8
	lockStripes = 256
)

// Engine is the KV v2 secrets engine for one mount.
type Engine struct {
	store        storage.Backend // the mount's view
	log          *slog.Logger
	maxValueSize int

	// now is the clock; tests replace it before use.
	now           func() time.Time
	flushInterval time.Duration
	sweepInterval time.Duration

	// locks serialise the writers of one secret path, and keep a path's
	// readers from seeing a metadata record whose version data a
	// concurrent writer has just pruned. Path p uses
	// locks[maphash(p) % lockStripes]. Storage checks still guard every
	// write, so the locks are an optimisation, not the correctness proof.
	locks [lockStripes]sync.RWMutex
	seed  maphash.Seed

	// cfgMu guards cfg, the cached engine configuration (nil until first
	// loaded from storage).
	cfgMu sync.Mutex
	cfg   *engineConfig

	reads readTracker

	// metas caches decoded metadata records for readers (loadMetaShared).
	metas decodedCache[*keyMeta]
	// datas caches, per path, the decoded data of the version last read
	// (loadVersionShared); a path's entry is dropped by every change to
	// the path, under its write lock, so destroyed data does not linger.
	datas decodedCache[versionData]
}

// versionData is a decoded version and its number.
type versionData struct {
	n    uint64
	data map[string]any
}

var (
	_ core.Backend = (*Engine)(nil)
	_ core.Runner  = (*Engine)(nil)
	_ core.Factory = New
)

// New builds the engine for one mount. It accepts the mount options
// "version" (empty or "2") and "max_value_size" (bytes); any other option
// is an error, and every problem is reported at once.
func New(ctx context.Context, cfg core.BackendConfig) (core.Backend, error) {
	if cfg.Storage == nil {
		return nil, errors.New("kv: no storage")
	}
	e := &Engine{
		store:         cfg.Storage,
		log:           cfg.Logger,
		maxValueSize:  DefaultMaxValueSize,
		now:           time.Now,
		flushInterval: DefaultFlushInterval,
		sweepInterval: DefaultSweepInterval,
		seed:          maphash.MakeSeed(),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("engine", "kv", "mount", cfg.MountPath)
	e.reads.pending = map[string]map[uint64]time.Time{}

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Options)) {
		val := cfg.Options[name]
		switch name {
		case "version":
			if val != "" && val != "2" {
				errs = append(errs, fmt.Errorf("option version=%q: this engine serves KV version 2 only", val))
			}
		case "max_value_size":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("option max_value_size=%q: want a positive number of bytes", val))
				continue
			}
			e.maxValueSize = n
		default:
			errs = append(errs, fmt.Errorf("unknown option %q (known: version, max_value_size)", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	return e, nil
}

// Routes lists the engine's routes, relative to the mount.
func (e *Engine) Routes() []core.Route {
	return []core.Route{
		{Pattern: "config", Handlers: map[core.Operation]core.Handler{
			core.OpRead:   e.configRead,
			core.OpCreate: e.configWrite,
			core.OpUpdate: e.configWrite,
		}},
		{Pattern: "data/{path...}", Exists: e.dataExists, Handlers: map[core.Operation]core.Handler{
			core.OpRead:   e.dataRead,
			core.OpCreate: e.dataWrite,
			core.OpUpdate: e.dataWrite,
			core.OpPatch:  e.dataPatch,
			core.OpDelete: e.dataDelete,
			core.OpList:   unsupported,
		}},
		{Pattern: "delete/{path...}", Handlers: map[core.Operation]core.Handler{
			core.OpCreate: e.versionsDelete,
			core.OpUpdate: e.versionsDelete,
		}},
		{Pattern: "undelete/{path...}", Handlers: map[core.Operation]core.Handler{
			core.OpCreate: e.versionsUndelete,
			core.OpUpdate: e.versionsUndelete,
		}},
		{Pattern: "destroy/{path...}", Handlers: map[core.Operation]core.Handler{
			core.OpCreate: e.versionsDestroy,
			core.OpUpdate: e.versionsDestroy,
		}},
		{Pattern: "metadata/{path...}", Exists: e.metadataExists, Handlers: map[core.Operation]core.Handler{
			core.OpRead:   e.metadataRead,
			core.OpCreate: e.metadataWrite,
			core.OpUpdate: e.metadataWrite,
			core.OpPatch:  e.metadataPatch,
			core.OpDelete: e.metadataDelete,
			core.OpList:   e.metadataList,
		}},
		{Pattern: "subkeys/{path...}", Handlers: map[core.Operation]core.Handler{
			core.OpRead: e.subkeysRead,
		}},
	}
}

func unsupported(context.Context, *core.Request) (*core.Response, error) {
	return nil, core.ErrUnsupportedOperation
}

// lock returns the lock stripe of path p.
func (e *Engine) lock(p string) *sync.RWMutex {
	return &e.locks[maphash.String(e.seed, p)%lockStripes]
}

// config returns the engine configuration, loading it once.
func (e *Engine) config(ctx context.Context) (*engineConfig, error) {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	return e.configLocked(ctx)
}

// configLocked is config with e.cfgMu held.
func (e *Engine) configLocked(ctx context.Context) (*engineConfig, error) {
	if e.cfg != nil {
		c := *e.cfg
		return &c, nil
	}
	c := &engineConfig{}
	raw, err := e.store.Get(ctx, configKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("kv: load config: %w", err)
	default:
		if err := json.Unmarshal(raw, c); err != nil {
			return nil, fmt.Errorf("kv: decode config: %w", err)
		}
	}
	e.cfg = c
	cp := *c
	return &cp, nil
}

// loadMeta reads the metadata record of p. It returns the record and its
// stored bytes (for a CheckEqual), or nil, nil, nil when p has none.
func (e *Engine) loadMeta(ctx context.Context, p string) (*keyMeta, []byte, error) {
	raw, err := e.store.Get(ctx, metaKey(p))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kv: load metadata: %w", err)
	}
	m, err := decodeKeyMeta(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("kv: %w", err)
	}
	return m, raw, nil
}

// loadMetaShared is loadMeta for readers that do not change the record:
// the decoded record is shared between them and must be treated as
// read-only. A record with many versions takes far longer to decode from
// JSON than to fetch and decrypt, and a secret is read much more often
// than written, so the decoded form is kept while the stored bytes stay
// the same (checked on every read, so writes are seen at once).
func (e *Engine) loadMetaShared(ctx context.Context, p string) (*keyMeta, error) {
	raw, err := e.store.Get(ctx, metaKey(p))
	if errors.Is(err, storage.ErrNotFound) {
		e.metas.drop(p)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv: load metadata: %w", err)
	}
	if m, ok := e.metas.get(p, raw); ok {
		return m, nil
	}
	m, err := decodeKeyMeta(raw)
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	e.metas.put(p, raw, m)
	return m, nil
}

// decodedCacheSize bounds a decodedCache; past it an arbitrary entry is
// dropped.
const decodedCacheSize = 4096

// decodedCache maps a key to its last decoded form and the stored bytes
// it was decoded from; an entry is used only while the stored bytes are
// still the same. Decoded values are shared between readers: read-only.
type decodedCache[T any] struct {
	mu sync.Mutex
	m  map[string]decodedEntry[T]
}

type decodedEntry[T any] struct {
	raw []byte
	v   T
}

func (c *decodedCache[T]) get(k string, raw []byte) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok && bytes.Equal(e.raw, raw) {
		return e.v, true
	}
	var zero T
	return zero, false
}

func (c *decodedCache[T]) put(k string, raw []byte, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]decodedEntry[T])
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= decodedCacheSize {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[k] = decodedEntry[T]{raw: bytes.Clone(raw), v: v}
}

func (c *decodedCache[T]) drop(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// change says what a mutation does with the metadata record.
type change int

const (
	keep   change = iota // write nothing
	save                 // store the changed record (and the extra ops)
	remove               // delete the record (and apply the extra ops)
)

// mutation is the body of a read-modify-write of one key's metadata. It
// gets the current record (a fresh one, with exists false, when there is
// none) and returns what to do plus extra ops (version data) that commit
// in the same Txn. It may run more than once, so it must not touch
// anything but m.
type mutation func(m *keyMeta, exists bool) (change, []storage.Op, error)

// mutate runs fn under p's lock and commits the result in one storage Txn
// guarded by a check that the metadata record is still what fn saw. On a
// storage conflict (another node, or a writer that bypassed the lock) it
// reads again and retries.
func (e *Engine) mutate(ctx context.Context, p string, fn mutation) (*keyMeta, error) {
	l := e.lock(p)
	l.Lock()
	defer l.Unlock()
	return e.mutateLocked(ctx, p, fn)
}

func (e *Engine) mutateLocked(ctx context.Context, p string, fn mutation) (*keyMeta, error) {
	for range txnAttempts {
		m, raw, err := e.loadMeta(ctx, p)
		if err != nil {
			return nil, err
		}
		exists := m != nil
		if !exists {
			m = newKeyMeta(e.now().UTC())
		}
		what, ops, err := fn(m, exists)
		if err != nil || what == keep {
			return m, err
		}
		txn := make([]storage.Op, 0, len(ops)+2)
		if exists {
			txn = append(txn, storage.CheckEqual(metaKey(p), raw))
		} else {
			txn = append(txn, storage.CheckAbsent(metaKey(p)))
		}
		txn = append(txn, ops...)
		if what == remove {
			txn = append(txn, storage.Delete(metaKey(p)))
		} else {
			txn = append(txn, storage.Put(metaKey(p), m.encode()))
		}
		err = e.store.Txn(ctx, txn)
		// Whatever the outcome, the path's shared version data may be
		// stale or destroyed now: drop it (readers are locked out).
		e.datas.drop(p)
		if errors.Is(err, storage.ErrConflict) {
			e.log.Debug("metadata changed under a write; retrying", "path", p)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kv: write %q: %w", p, err)
		}
		return m, nil
	}
	return nil, core.StatusError(409, "secret %s changed concurrently %d times in a row; retry the request", field.Quote(p), txnAttempts)
}

// pathParam returns the validated secret path of a request.
func pathParam(r *core.Request) (string, error) {
	p := r.Params["path"]
	if err := validatePath(p); err != nil {
		return "", err
	}
	return p, nil
}

// configRead answers GET config.
func (e *Engine) configRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	c, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{
		"cas_required":          c.CASRequired,
		"delete_version_after":  c.DeleteVersionAfter.String(),
		"max_versions":          c.MaxVersions,
		"metadata_cas_required": c.MetadataCASRequired,
	}}, nil
}

// configWrite answers POST/PUT config: max_versions, cas_required,
// metadata_cas_required, delete_version_after (negative disables it on
// every key, zero clears it).
func (e *Engine) configWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	p, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	maxV, maxOK, err := p.Int("max_versions")
	if err != nil {
		return nil, err
	}
	if maxOK {
		if err := checkMaxVersions(maxV); err != nil {
			return nil, err
		}
	}
	cas, casOK, err := p.Bool("cas_required")
	if err != nil {
		return nil, err
	}
	mcas, mcasOK, err := p.Bool("metadata_cas_required")
	if err != nil {
		return nil, err
	}
	dva, dvaOK, err := p.Duration("delete_version_after")
	if err != nil {
		return nil, err
	}
	warnings := p.Warnings(r)
	if !maxOK && !casOK && !mcasOK && !dvaOK {
		return warningsOnly(warnings), nil
	}

	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	c, err := e.configLocked(ctx)
	if err != nil {
		return nil, err
	}
	if maxOK {
		c.MaxVersions = uint32(maxV)
	}
	if casOK {
		c.CASRequired = cas
	}
	if mcasOK {
		c.MetadataCASRequired = mcas
	}
	if dvaOK {
		switch {
		case dva < 0:
			c.DeleteVersionAfter = dvaDisabled
		default:
			c.DeleteVersionAfter = dva
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("kv: encode config: %w", err)
	}
	if err := e.store.Put(ctx, configKey, raw); err != nil {
		e.cfg = nil // reload on next use; the write may or may not have landed
		return nil, fmt.Errorf("kv: write config: %w", err)
	}
	e.cfg = c
	return warningsOnly(warnings), nil
}

func checkMaxVersions(n int64) error {
	if n < 0 || n > 1<<32-1 {
		return core.BadRequest("max_versions must be between 0 and %d, got %d (0 means the default)", uint32(1<<32-1), n)
	}
	return nil
}

// warningsOnly is the answer of a write that returns nothing: 204, or a
// 200 carrying Vault's unrecognized-parameter warning.
func warningsOnly(w []string) *core.Response {
	if len(w) == 0 {
		return nil
	}
	return &core.Response{Warnings: w}
}
