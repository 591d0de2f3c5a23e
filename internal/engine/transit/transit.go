package transit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// Limits and timing defaults.
const (
	// DefaultMaxInputSize bounds one decoded plaintext or input (per
	// batch item) unless the mount option max_input_size says otherwise.
	DefaultMaxInputSize = 1 << 20
	// DefaultMaxBatchSize bounds the items of one batch_input unless the
	// mount option max_batch_size says otherwise.
	DefaultMaxBatchSize = 1000
	// DefaultRotateCheckInterval is how often Run looks for keys whose
	// auto_rotate_period has passed.
	DefaultRotateCheckInterval = time.Minute
	// MinAutoRotatePeriod is the shortest auto_rotate_period, as Vault.
	MinAutoRotatePeriod = time.Hour

	optMaxInputSize = "max_input_size"
	optMaxBatchSize = "max_batch_size"

	keyPrefix   = "keys/"
	maxNameLen  = 256
	lockStripes = 64
	txnAttempts = 8
)

// errNoKey is what loadKey returns for a name with no key; handlers turn
// it into Vault's message for their operation.
var errNoKey = errors.New("transit: no such key")

// Engine is the transit secrets engine for one mount.
type Engine struct {
	store    storage.Backend // the mount's view; the barrier encrypts it
	log      *slog.Logger
	maxInput int
	maxBatch int

	// now is the clock; tests replace it before use.
	now         func() time.Time
	rotateEvery time.Duration

	// locks serialise the writers of one key, and the loads that fill
	// its cache entry. Name n uses locks[maphash(n) % lockStripes].
	locks [lockStripes]sync.Mutex
	seed  maphash.Seed

	// cacheMu guards cache: the decoded keys by name. An entry is added,
	// replaced or removed only under its name's lock, so it always
	// matches what the last write stored.
	cacheMu sync.RWMutex
	cache   map[string]*key

	// useMu is held for reading by every request while it works with
	// key material, and for writing by close, which zeroes the material;
	// it guards closed.
	useMu  sync.RWMutex
	closed bool
}

var (
	_ core.Backend = (*Engine)(nil)
	_ core.Runner  = (*Engine)(nil)
	_ core.Factory = New
)

// New builds the engine for one mount. It accepts the mount options
// max_input_size (bytes) and max_batch_size (items); any other option is
// an error, and every problem is reported at once.
func New(ctx context.Context, cfg core.BackendConfig) (core.Backend, error) {
	if cfg.Storage == nil {
		return nil, errors.New("transit: no storage")
	}
	maxInput, maxBatch, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("transit: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		store:       cfg.Storage,
		log:         log.With("engine", "transit", "mount", cfg.MountPath),
		maxInput:    maxInput,
		maxBatch:    maxBatch,
		now:         time.Now,
		rotateEvery: DefaultRotateCheckInterval,
		seed:        maphash.MakeSeed(),
		cache:       map[string]*key{},
	}, nil
}

// parseOptions reads the mount options, reporting every problem at once.
func parseOptions(opts map[string]string) (maxInput, maxBatch int, err error) {
	limits := map[string]*int{optMaxInputSize: &maxInput, optMaxBatchSize: &maxBatch}
	maxInput, maxBatch = DefaultMaxInputSize, DefaultMaxBatchSize
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(opts)) {
		dst, ok := limits[name]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown option %q (known: %s, %s)", name, optMaxInputSize, optMaxBatchSize))
			continue
		}
		n, err := strconv.Atoi(opts[name])
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("option %s=%q: want a positive number", name, opts[name]))
			continue
		}
		*dst = n
	}
	return maxInput, maxBatch, errors.Join(errs...)
}

// Routes lists the engine's routes, relative to the mount. Names are
// captured with {name...} so a name with a slash reaches the handler and
// gets a clear 400 instead of an unsupported path.
func (e *Engine) Routes() []core.Route {
	write := func(h core.Handler) map[core.Operation]core.Handler {
		h = e.guard(h)
		return map[core.Operation]core.Handler{core.OpCreate: h, core.OpUpdate: h}
	}
	exists := func(ctx context.Context, r *core.Request) (bool, error) {
		done, err := e.use()
		if err != nil {
			return false, err
		}
		defer done()
		return e.keyExists(ctx, r)
	}
	return []core.Route{
		{Pattern: "keys", Handlers: map[core.Operation]core.Handler{core.OpList: e.guard(e.keysList)}},
		{Pattern: "keys/{name}/config", Handlers: write(e.keyConfig)},
		{Pattern: "keys/{name}/rotate", Handlers: write(e.keyRotate)},
		{Pattern: "keys/{name...}", Exists: exists, Handlers: map[core.Operation]core.Handler{
			core.OpRead:   e.guard(e.keyRead),
			core.OpCreate: e.guard(e.keyCreate),
			core.OpUpdate: e.guard(e.keyCreate),
			core.OpDelete: e.guard(e.keyDelete),
		}},
		{Pattern: "encrypt/{name...}", Exists: exists, Handlers: map[core.Operation]core.Handler{
			core.OpCreate: e.guard(e.encryptUpsert),
			core.OpUpdate: e.guard(e.encrypt),
		}},
		{Pattern: "decrypt/{name...}", Handlers: write(e.decrypt)},
		{Pattern: "rewrap/{name...}", Handlers: write(e.rewrap)},
		{Pattern: "datakey/{kind}/{name...}", Handlers: write(e.datakey)},
		{Pattern: "hmac/{name}/{algorithm}", Handlers: write(e.hmac)},
		{Pattern: "hmac/{name...}", Handlers: write(e.hmac)},
		{Pattern: "sign/{name}/{algorithm}", Handlers: write(e.sign)},
		{Pattern: "sign/{name...}", Handlers: write(e.sign)},
		{Pattern: "verify/{name}/{algorithm}", Handlers: write(e.verify)},
		{Pattern: "verify/{name...}", Handlers: write(e.verify)},
		{Pattern: "export/{kind}/{name}/{version}", Handlers: map[core.Operation]core.Handler{core.OpRead: e.guard(e.export)}},
		{Pattern: "export/{kind}/{name}", Handlers: map[core.Operation]core.Handler{core.OpRead: e.guard(e.export)}},
	}
}

// use marks a request as working with key material until the returned
// func is called. After close it fails as a sealed server does.
func (e *Engine) use() (func(), error) {
	e.useMu.RLock()
	if e.closed {
		e.useMu.RUnlock()
		return nil, core.ErrSealed
	}
	return e.useMu.RUnlock, nil
}

func (e *Engine) guard(h core.Handler) core.Handler {
	return func(ctx context.Context, r *core.Request) (*core.Response, error) {
		done, err := e.use()
		if err != nil {
			return nil, err
		}
		defer done()
		return h(ctx, r)
	}
}

// close zeroes the key material of every cached key and refuses further
// requests. Run calls it when its context ends (seal or unmount).
func (e *Engine) close() {
	e.useMu.Lock()
	defer e.useMu.Unlock()
	e.closed = true
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	for _, k := range e.cache {
		k.zero()
	}
	e.cache = map[string]*key{}
}

// Run rotates keys whose auto_rotate_period has passed, every
// rotateEvery, until ctx ends; then it zeroes the cached key material.
func (e *Engine) Run(ctx context.Context) error {
	defer e.close()
	t := time.NewTicker(e.rotateEvery)
	defer t.Stop()
	for {
		e.autoRotate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// autoRotate rotates every key that is due. A failure is logged and the
// key is tried again at the next check.
func (e *Engine) autoRotate(ctx context.Context) {
	done, err := e.use()
	if err != nil {
		return
	}
	defer done()
	names, err := e.store.List(ctx, keyPrefix)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("auto-rotate: list keys", "error", err)
		}
		return
	}
	for _, name := range names {
		if strings.HasSuffix(name, "/") || ctx.Err() != nil {
			continue
		}
		k, err := e.loadKey(ctx, name)
		if err != nil {
			e.log.Error("auto-rotate: load key", "key", name, "error", err)
			continue
		}
		if !k.rotationDue(e.now()) {
			continue
		}
		k, err = e.rotateKey(ctx, name, true)
		switch {
		case errors.Is(err, errNotDue):
		case err != nil:
			e.log.Error("auto-rotate: rotate key", "key", name, "error", err)
		default:
			e.log.Info("auto-rotated key", "key", name, "version", k.latest())
		}
	}
}

var errNotDue = errors.New("transit: rotation not due")

// rotateKey adds a version to the named key; with onlyDue, only if its
// auto_rotate_period has passed (else errNotDue). The material is made
// before the key's lock is taken.
func (e *Engine) rotateKey(ctx context.Context, name string, onlyDue bool) (*key, error) {
	cur, err := e.loadKey(ctx, name)
	if err != nil {
		return nil, err
	}
	m, err := generateMaterial(cur.typ)
	if err != nil {
		return nil, err
	}
	defer m.zero()
	return e.modifyKey(ctx, name, func(k *key) error {
		if onlyDue && !k.rotationDue(e.now()) {
			return errNotDue
		}
		return k.addVersion(e.now(), m)
	})
}

// lock returns the lock stripe of key name n.
func (e *Engine) lock(n string) *sync.Mutex {
	return &e.locks[maphash.String(e.seed, n)%lockStripes]
}

func (e *Engine) cached(name string) *key {
	e.cacheMu.RLock()
	defer e.cacheMu.RUnlock()
	return e.cache[name]
}

func (e *Engine) setCached(name string, k *key) {
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	if k == nil {
		delete(e.cache, name)
		return
	}
	e.cache[name] = k
}

// loadKey returns the named key, or an error wrapping errNoKey.
func (e *Engine) loadKey(ctx context.Context, name string) (*key, error) {
	if k := e.cached(name); k != nil {
		return k, nil
	}
	l := e.lock(name)
	l.Lock()
	defer l.Unlock()
	return e.loadKeyLocked(ctx, name)
}

func (e *Engine) loadKeyLocked(ctx context.Context, name string) (*key, error) {
	if k := e.cached(name); k != nil {
		return k, nil
	}
	raw, err := e.store.Get(ctx, keyPrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("transit: load key %s: %w", field.Quote(name), err)
	}
	k, err := decodeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("transit: key %s: %w", field.Quote(name), err)
	}
	e.setCached(name, k)
	return k, nil
}

// createKey stores k under its name unless a key of that name exists; it
// returns the stored key and whether it was created.
func (e *Engine) createKey(ctx context.Context, k *key) (*key, bool, error) {
	l := e.lock(k.name)
	l.Lock()
	defer l.Unlock()
	old, err := e.loadKeyLocked(ctx, k.name)
	if err == nil {
		return old, false, nil
	}
	if !errors.Is(err, errNoKey) {
		return nil, false, err
	}
	raw, err := k.encode()
	if err != nil {
		return nil, false, fmt.Errorf("transit: encode key: %w", err)
	}
	err = e.store.Txn(ctx, []storage.Op{storage.CheckAbsent(keyPrefix + k.name), storage.Put(keyPrefix+k.name, raw)})
	if errors.Is(err, storage.ErrConflict) {
		return nil, false, core.StatusError(409, "key %s was created concurrently; retry the request", field.Quote(k.name))
	}
	if err != nil {
		return nil, false, fmt.Errorf("transit: store key %s: %w", field.Quote(k.name), err)
	}
	k.raw = raw
	e.setCached(k.name, k)
	return k, true, nil
}

// modifyKey applies fn to a copy of the named key and stores the result
// in one Txn guarded by a check that the stored record is still the one
// the copy came from. fn may run more than once. It returns the stored
// key, or fn's error with nothing written.
func (e *Engine) modifyKey(ctx context.Context, name string, fn func(k *key) error) (*key, error) {
	l := e.lock(name)
	l.Lock()
	defer l.Unlock()
	for range txnAttempts {
		cur, err := e.loadKeyLocked(ctx, name)
		if err != nil {
			return nil, err
		}
		k := cur.clone()
		if err := fn(k); err != nil {
			return nil, err
		}
		raw, err := k.encode()
		if err != nil {
			return nil, fmt.Errorf("transit: encode key: %w", err)
		}
		err = e.store.Txn(ctx, []storage.Op{storage.CheckEqual(keyPrefix+name, cur.raw), storage.Put(keyPrefix+name, raw)})
		if errors.Is(err, storage.ErrConflict) {
			e.log.Debug("key changed under a write; retrying", "key", name)
			e.setCached(name, nil)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("transit: store key %s: %w", field.Quote(name), err)
		}
		k.raw = raw
		e.setCached(name, k)
		return k, nil
	}
	return nil, core.StatusError(409, "key %s changed concurrently %d times in a row; retry the request", field.Quote(name), txnAttempts)
}

// deleteKey removes the named key if check allows it.
func (e *Engine) deleteKey(ctx context.Context, name string, check func(k *key) error) error {
	l := e.lock(name)
	l.Lock()
	defer l.Unlock()
	cur, err := e.loadKeyLocked(ctx, name)
	if err != nil {
		return err
	}
	if err := check(cur); err != nil {
		return err
	}
	err = e.store.Txn(ctx, []storage.Op{storage.CheckEqual(keyPrefix+name, cur.raw), storage.Delete(keyPrefix + name)})
	e.setCached(name, nil)
	if errors.Is(err, storage.ErrConflict) {
		return core.StatusError(409, "key %s changed while it was being deleted; retry the request", field.Quote(name))
	}
	if err != nil {
		return fmt.Errorf("transit: delete key %s: %w", field.Quote(name), err)
	}
	return nil
}

// keyName returns the validated key name of a request. Names follow
// Vault's rule: letters, digits, "_", "-" and ".", starting and ending
// with a letter, digit or "_".
func keyName(r *core.Request) (string, error) {
	n := r.Params["name"]
	switch {
	case n == "":
		return "", core.BadRequest("missing key name: put it in the path, as in transit/keys/my-key")
	case strings.Contains(n, "/"):
		return "", core.BadRequest("invalid key name %s: key names cannot contain \"/\"", field.Quote(n))
	case len(n) > maxNameLen:
		return "", core.BadRequest("invalid key name %s: longer than %d bytes", field.Quote(n), maxNameLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		word := c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		edge := i == 0 || i == len(n)-1
		if !word && (edge || c != '-' && c != '.') {
			return "", core.BadRequest("invalid key name %s: use letters, digits, \"_\", \"-\" and \".\", starting and ending with a letter, digit or \"_\"", field.Quote(n))
		}
	}
	return n, nil
}

// keyExists decides create versus update for key and encrypt writes.
func (e *Engine) keyExists(ctx context.Context, r *core.Request) (bool, error) {
	name, err := keyName(r)
	if err != nil {
		return false, nil // the handler reports it, after authorisation
	}
	_, err = e.loadKey(ctx, name)
	if errors.Is(err, errNoKey) {
		return false, nil
	}
	return err == nil, err
}
