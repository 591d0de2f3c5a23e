package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// builtin mount types served by the core itself.
const (
	typeSystem    = "system"
	typeToken     = "token"
	typeCubbyhole = "cubbyhole"
	typeIdentity  = "identity"
)

func (c *Core) defaultEntries() (mounts, auths []*MountEntry) {
	now := c.now().UTC()
	mk := func(table, path, typ, desc string) *MountEntry {
		return &MountEntry{Table: table, Path: path, Type: typ, Description: desc,
			UUID: NewUUID(), Accessor: newAccessor(typ), Options: map[string]string{}, CreatedAt: now}
	}
	mounts = []*MountEntry{
		mk(tableMounts, "sys/", typeSystem, "system endpoints used for control, policy and debugging"),
		mk(tableMounts, "cubbyhole/", typeCubbyhole, "per-token private secret storage"),
		mk(tableMounts, "identity/", typeIdentity, "identity store"),
	}
	auths = []*MountEntry{mk(tableAuth, "token/", typeToken, "token based credentials")}
	return mounts, auths
}

func newAccessor(typ string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return typ + "_" + hex.EncodeToString(b[:])
}

// setupMounts loads both tables (creating the defaults on first unseal)
// and builds every backend. Caller holds stateMu for writing.
func (c *Core) setupMounts(ctx, runCtx context.Context, initializing bool) error {
	mounts, err := loadTable(ctx, c.barrier, mountsKey)
	if err != nil {
		return err
	}
	auths, err := loadTable(ctx, c.barrier, authKey)
	if err != nil {
		return err
	}
	if len(mounts) == 0 && len(auths) == 0 {
		mounts, auths = c.defaultEntries()
		if err := c.persistTables(ctx, mounts, auths); err != nil {
			return err
		}
	}
	var live []*mounted
	for _, e := range append(mounts, auths...) {
		m, err := c.buildMount(ctx, e)
		if err != nil {
			c.logger.Error("mount could not be set up; it answers no requests", "path", e.routePrefix(), "type", e.Type, "error", err)
			continue
		}
		if !initializing {
			c.startMount(runCtx, m)
		}
		live = append(live, m)
	}
	c.mounts.Store(newMountTable(live))
	return nil
}

func (c *Core) persistTables(ctx context.Context, mounts, auths []*MountEntry) error {
	mraw, err := encodeTable(mounts)
	if err != nil {
		return err
	}
	araw, err := encodeTable(auths)
	if err != nil {
		return err
	}
	return c.barrier.Txn(ctx, []storage.Op{storage.Put(mountsKey, mraw), storage.Put(authKey, araw)})
}

func (c *Core) buildMount(ctx context.Context, e *MountEntry) (*mounted, error) {
	var b Backend
	switch e.Type {
	case typeSystem:
		b = c.sysBackend
	case typeToken:
		b = &tokenBackend{c: c}
	case typeCubbyhole:
		b = &cubbyholeBackend{store: storage.NewView(c.barrier, e.storagePrefix())}
	case typeIdentity:
		b = emptyBackend{}
	default:
		factories := c.cfg.Engines
		if e.Table == tableAuth {
			factories = c.cfg.AuthMethods
		}
		f := factories[e.Type]
		if f == nil {
			return nil, fmt.Errorf("no backend of type %q in this build", e.Type)
		}
		var err error
		b, err = f(ctx, BackendConfig{
			Storage:   storage.NewCache(storage.NewView(c.barrier, e.storagePrefix()), cacheBytes),
			Logger:    c.logger.With("mount", e.routePrefix(), "type", e.Type),
			MountPath: e.routePrefix(),
			Accessor:  e.Accessor,
			Options:   e.Options,
			System:    sysView{c: c},
		})
		if err != nil {
			return nil, err
		}
	}
	r, err := newRouter(b.Routes())
	if err != nil {
		return nil, err
	}
	return &mounted{entry: e, backend: b, router: r}, nil
}

// startMount runs a backend's background work, if it has any.
func (c *Core) startMount(runCtx context.Context, m *mounted) {
	rn, ok := m.backend.(Runner)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(runCtx)
	m.cancel, m.done = cancel, make(chan struct{})
	c.runWG.Add(1)
	go func() {
		defer c.runWG.Done()
		defer close(m.done)
		if err := rn.Run(ctx); err != nil && ctx.Err() == nil {
			c.logger.Error("mount background task failed", "path", m.entry.routePrefix(), "error", err)
		}
	}()
}

// MountInput is the body of POST sys/mounts/<path> and sys/auth/<path>.
type MountInput struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Config      MountConfigInput  `json:"config"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
}

// MountConfigInput carries durations as Vault clients send them.
type MountConfigInput struct {
	DefaultLeaseTTL Duration `json:"default_lease_ttl"`
	MaxLeaseTTL     Duration `json:"max_lease_ttl"`
	ForceNoCache    bool     `json:"force_no_cache"`
}

var reservedMounts = map[string]bool{"sys/": true, "auth/": true, "cubbyhole/": true, "identity/": true}

// Mount enables a backend at path in table ("mounts" or "auth").
func (c *Core) Mount(ctx context.Context, table, path string, in MountInput) error {
	p, err := validateMountPath(path)
	if err != nil {
		return err
	}
	if in.Type == "" {
		return BadRequest("backend type must be specified")
	}
	factories := c.cfg.Engines
	if table == tableAuth {
		factories = c.cfg.AuthMethods
		if p == "token/" {
			return BadRequest("token credential backend cannot be instantiated")
		}
	} else {
		for r := range reservedMounts {
			if strings.HasPrefix(p, r) {
				return BadRequest("cannot mount at %q: the %s prefix is reserved", p, r)
			}
		}
	}
	if factories[in.Type] == nil {
		return BadRequest("plugin not found in the catalog: %s", in.Type)
	}
	if in.Config.MaxLeaseTTL > 0 && in.Config.DefaultLeaseTTL > in.Config.MaxLeaseTTL {
		return BadRequest("default_lease_ttl (%s) must not exceed max_lease_ttl (%s)", time.Duration(in.Config.DefaultLeaseTTL), time.Duration(in.Config.MaxLeaseTTL))
	}
	opts := map[string]string{}
	for k, v := range in.Options {
		opts[k] = v
	}
	if in.Type == "kv" {
		switch opts["version"] {
		case "", "2":
			opts["version"] = "2"
		default:
			return BadRequest("kv version %q is not supported: coffer serves the KV version 2 API only; enable with -version=2", opts["version"])
		}
	}
	e := &MountEntry{Table: table, Path: p, Type: in.Type, Description: in.Description,
		UUID: NewUUID(), Accessor: newAccessor(in.Type), Options: opts, Local: in.Local,
		SealWrap: in.SealWrap, CreatedAt: c.now().UTC(),
		Config: MountConfig{DefaultLeaseTTL: int64(time.Duration(in.Config.DefaultLeaseTTL).Seconds()),
			MaxLeaseTTL: int64(time.Duration(in.Config.MaxLeaseTTL).Seconds()), ForceNoCache: in.Config.ForceNoCache}}

	c.mountMu.Lock()
	defer c.mountMu.Unlock()
	cur := c.mounts.Load()
	np := e.routePrefix()
	for prefix := range cur.byPrefix {
		if strings.HasPrefix(np, prefix) || strings.HasPrefix(prefix, np) {
			return BadRequest("path is already in use at %s", prefix)
		}
	}
	m, err := c.buildMount(ctx, e)
	if err != nil {
		return BadRequest("cannot mount %s: %v", in.Type, err)
	}
	if err := c.saveTables(ctx, cur, e, ""); err != nil {
		return err
	}
	c.startMount(c.runCtx, m)
	ms := make([]*mounted, 0, len(cur.byPrefix)+1)
	for _, x := range cur.byPrefix {
		ms = append(ms, x)
	}
	c.mounts.Store(newMountTable(append(ms, m)))
	c.logger.Info("mount enabled", "path", e.routePrefix(), "type", e.Type)
	return nil
}

// saveTables writes the tables of cur plus add, minus the route prefix drop.
func (c *Core) saveTables(ctx context.Context, cur *mountTable, add *MountEntry, drop string) error {
	var mounts, auths []*MountEntry
	for prefix, m := range cur.byPrefix {
		if prefix == drop {
			continue
		}
		if m.entry.Table == tableAuth {
			auths = append(auths, m.entry)
		} else {
			mounts = append(mounts, m.entry)
		}
	}
	if add != nil {
		if add.Table == tableAuth {
			auths = append(auths, add)
		} else {
			mounts = append(mounts, add)
		}
	}
	return c.persistTables(ctx, mounts, auths)
}

// Unmount disables the mount at path and deletes its data.
func (c *Core) Unmount(ctx context.Context, table, path string) error {
	p, err := validateMountPath(path)
	if err != nil {
		return err
	}
	prefix := p
	if table == tableAuth {
		prefix = "auth/" + p
		if p == "token/" {
			return BadRequest("token credential backend cannot be disabled")
		}
	} else if reservedMounts[p] {
		return BadRequest("cannot unmount %q: it is a built-in mount", p)
	}
	c.mountMu.Lock()
	defer c.mountMu.Unlock()
	cur := c.mounts.Load()
	m := cur.byPrefix[prefix]
	if m == nil {
		// Vault answers 204 for a path with no mount.
		return nil
	}
	if err := c.saveTables(ctx, cur, nil, prefix); err != nil {
		return err
	}
	var ms []*mounted
	for pfx, x := range cur.byPrefix {
		if pfx != prefix {
			ms = append(ms, x)
		}
	}
	c.mounts.Store(newMountTable(ms))
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	if err := deleteTree(ctx, c.barrier, m.entry.storagePrefix()); err != nil {
		c.logger.Error("unmount: delete mount data", "path", prefix, "error", err)
	}
	c.logger.Info("mount disabled", "path", prefix)
	return nil
}

// TuneInput is the body of POST sys/mounts/<path>/tune.
type TuneInput struct {
	DefaultLeaseTTL *Duration         `json:"default_lease_ttl"`
	MaxLeaseTTL     *Duration         `json:"max_lease_ttl"`
	Description     *string           `json:"description"`
	Options         map[string]string `json:"options"`
}

// Tune changes a mount's TTLs, description or options.
func (c *Core) Tune(ctx context.Context, prefix string, in TuneInput) error {
	c.mountMu.Lock()
	defer c.mountMu.Unlock()
	cur := c.mounts.Load()
	m := cur.byPrefix[prefix]
	if m == nil {
		return BadRequest("no mount at %q", prefix)
	}
	e := *m.entry
	if in.DefaultLeaseTTL != nil {
		e.Config.DefaultLeaseTTL = int64(time.Duration(*in.DefaultLeaseTTL).Seconds())
	}
	if in.MaxLeaseTTL != nil {
		e.Config.MaxLeaseTTL = int64(time.Duration(*in.MaxLeaseTTL).Seconds())
	}
	if e.Config.MaxLeaseTTL > 0 && e.Config.DefaultLeaseTTL > e.Config.MaxLeaseTTL {
		return BadRequest("default_lease_ttl must not exceed max_lease_ttl")
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if v, ok := in.Options["version"]; ok && e.Type == "kv" && v != "2" {
		return BadRequest("kv version %q is not supported: coffer serves the KV version 2 API only", v)
	}
	if len(in.Options) > 0 {
		opts := map[string]string{}
		for k, v := range e.Options {
			opts[k] = v
		}
		for k, v := range in.Options {
			opts[k] = v
		}
		e.Options = opts
	}
	nm := *m
	nm.entry = &e
	if err := c.saveTables(ctx, cur, &e, prefix); err != nil {
		return err
	}
	var ms []*mounted
	for pfx, x := range cur.byPrefix {
		if pfx != prefix {
			ms = append(ms, x)
		}
	}
	c.mounts.Store(newMountTable(append(ms, &nm)))
	return nil
}

type sysView struct{ c *Core }

func (s sysView) DefaultLeaseTTL(mount string) time.Duration {
	if m := s.c.mounts.Load().byPrefix[mount]; m != nil && m.entry.Config.DefaultLeaseTTL > 0 {
		return time.Duration(m.entry.Config.DefaultLeaseTTL) * time.Second
	}
	return s.c.cfg.DefaultLeaseTTL
}

func (s sysView) MaxLeaseTTL(mount string) time.Duration {
	if m := s.c.mounts.Load().byPrefix[mount]; m != nil && m.entry.Config.MaxLeaseTTL > 0 {
		return time.Duration(m.entry.Config.MaxLeaseTTL) * time.Second
	}
	return s.c.cfg.MaxLeaseTTL
}

type emptyBackend struct{}

func (emptyBackend) Routes() []Route { return nil }
