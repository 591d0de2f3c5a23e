// Package core is coffer's request pipeline: seal state, the mount table,
// authentication, authorisation and dispatch to backends.
//
// A request flows through Handle: sealed servers answer only the
// unauthenticated sys endpoints (init, seal-status, unseal, health,
// leader); everything else is routed by the longest mount prefix to a
// backend route, authenticated by token, authorised by the caller's
// policies (deny wins) and handed to the route's handler on a storage view
// that belongs to the mount alone. Backends never see the barrier, HTTP or
// each other.
package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofferhq/coffer/internal/audit"
	"github.com/cofferhq/coffer/internal/barrier"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/token"
)

// Config is what New needs. Engines and AuthMethods list every backend
// type by name; the composition root (internal/server) fills them.
type Config struct {
	Physical    storage.Backend
	StorageType string // reported by seal-status ("bolt", "inmem")
	Logger      *slog.Logger
	Engines     map[string]Factory
	AuthMethods map[string]Factory
	Version     string
	ClusterName string
	Now         func() time.Time
	// DefaultLeaseTTL and MaxLeaseTTL are the system-wide TTLs (default
	// 768h each, as Vault).
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// APIAddr is reported by sys/leader.
	APIAddr string
	// Metrics renders the Prometheus exposition for sys/metrics; nil
	// turns the endpoint off.
	Metrics func() (body []byte, contentType string, err error)
	// UnauthenticatedMetrics lets sys/metrics answer without a token.
	UnauthenticatedMetrics bool
}

// Core is the server's state machine. All methods are safe for concurrent use.
type Core struct {
	cfg     Config
	logger  *slog.Logger
	phys    storage.Backend
	barrier *barrier.Barrier
	now     func() time.Time

	// stateMu guards the sealed/unsealed transition and everything that
	// only exists while unsealed (tokens, mounts, policies, run group).
	// Requests hold it for reading while they run, so sealing waits for
	// in-flight requests to finish.
	stateMu  sync.RWMutex
	sealed   bool
	tokens   *token.Store
	mounts   atomic.Pointer[mountTable] // swapped whole under mountMu
	policies *policyStore
	runStop  context.CancelFunc
	// runCtx is the lifetime of the current unsealed period: background
	// tasks started while unsealed use it, and seal cancels it.
	runCtx context.Context
	runWG  sync.WaitGroup

	// reencryptMu guards the two flags that keep one re-encryption pass
	// running at a time, with a rerun queued when a rotation lands during it.
	reencryptMu      sync.Mutex
	reencryptRunning bool
	reencryptAgain   bool
	// activeSince is when the last unseal completed.
	activeSince time.Time

	// unlockMu guards unlock (the shares collected so far) and serialises
	// unseal and init calls.
	unlockMu sync.Mutex
	unlock   *unlockState

	// mountMu serialises changes to the mount tables.
	mountMu sync.Mutex

	// audit fans records out to the enabled devices. auditMu serialises
	// enabling and disabling; auditConfigured (read by requests, written
	// under stateMu or auditMu) says whether any device is configured, so
	// requests must be audited or fail.
	audit           *audit.Broker
	auditMu         sync.Mutex
	auditConfigured atomic.Bool

	sysRoutes    *router // sys routes that answer while sealed, no token
	sysBackend   *sysBackend
	clusterID    string
	clusterName  string
	initializing bool
}

// New builds a Core over a physical backend. It starts sealed.
func New(cfg Config) (*Core, error) {
	if cfg.Physical == nil {
		return nil, errors.New("core: no physical storage configured")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultLeaseTTL <= 0 {
		cfg.DefaultLeaseTTL = 768 * time.Hour
	}
	if cfg.MaxLeaseTTL <= 0 {
		cfg.MaxLeaseTTL = 768 * time.Hour
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0"
	}
	c := &Core{
		cfg:    cfg,
		logger: cfg.Logger,
		phys:   cfg.Physical,
		now:    cfg.Now,
		sealed: true,
		barrier: barrier.New(cfg.Physical, barrier.Options{
			Logger: cfg.Logger.With("subsystem", "barrier"),
			Now:    cfg.Now,
		}),
	}
	c.audit = audit.NewBroker(audit.BrokerOptions{Logger: cfg.Logger.With("subsystem", "audit"), Now: cfg.Now})
	c.sysBackend = &sysBackend{c: c}
	r, err := newRouter(c.sysBackend.sealedRoutes())
	if err != nil {
		return nil, err
	}
	c.sysRoutes = r
	return c, nil
}

// Sealed reports whether the core is sealed.
func (c *Core) Sealed() bool {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	return c.sealed
}

// Handle runs one request through the pipeline.
func (c *Core) Handle(ctx context.Context, req *Request) (*Response, error) {
	if req.ID == "" {
		req.ID = NewUUID()
	}
	req.Path = strings.TrimPrefix(req.Path, "/")
	if strings.HasPrefix(req.Path, "sys/") {
		rel := strings.TrimPrefix(req.Path, "sys/")
		if rt, params := c.sysRoutes.match(rel); rt != nil {
			return c.dispatchUnauthenticated(ctx, req, rt, params, rel)
		}
	}
	c.stateMu.RLock()
	locked := true
	defer func() {
		if locked {
			c.stateMu.RUnlock()
		}
	}()
	if c.sealed {
		return nil, ErrSealed
	}
	m := c.mounts.Load().find(req.Path)
	if m == nil {
		return nil, &Error{Status: 404, Msg: fmt.Sprintf("no handler for route %q. route entry not found.", req.Path)}
	}
	prefix := m.entry.routePrefix()
	rel := strings.TrimPrefix(req.Path, prefix)
	if req.Path+"/" == prefix {
		rel = ""
	}
	req.MountPath = prefix
	req.MountPoint = m.entry
	req.RoutePath = rel
	rt, params := m.router.match(rel)
	if rt == nil {
		return nil, &Error{Status: 404, Msg: ErrUnsupportedPath.Error(), err: ErrUnsupportedPath}
	}
	req.Params = params
	op, err := c.resolveOperation(ctx, req, rt)
	if err != nil {
		return nil, err
	}
	h := rt.Handlers[op]
	if h == nil {
		return nil, ErrUnsupportedOperation
	}
	req.Operation = op
	var acl aclChecker
	if !rt.Unauthenticated || req.Token != "" {
		a, checker, err := c.authenticate(ctx, req)
		if err != nil && !rt.Unauthenticated {
			return nil, err
		}
		req.Auth, acl = a, checker
	}
	aclPath := req.Path
	if op == OpList && !strings.HasSuffix(aclPath, "/") {
		// As Vault: a list is authorised on the folder path, with its slash.
		aclPath += "/"
	}
	var rec auditRecord
	if !rt.Unauthenticated {
		if !acl.allowed(aclPath, op) || (rt.Sudo && !acl.allowed(aclPath, "sudo")) {
			if err := c.logRequest(ctx, &rec, req, "permission denied"); err != nil {
				return nil, err
			}
			return nil, ErrACLDenied
		}
	}
	// A read's request entry goes out with its response entry, in one
	// write: nothing changed in between that the log must have seen
	// first, and a failed write still fails the request before it
	// answers. Every other operation is logged before its handler runs.
	pair := (op == OpRead || op == OpList) && !rt.AuditFirst
	if pair {
		if c.auditing() {
			c.requestEntry(&rec, req, "")
		}
	} else if err := c.logRequest(ctx, &rec, req, ""); err != nil {
		return nil, err
	}
	if req.Path == "sys/seal" {
		// Sealing needs the state lock for writing: let go of ours first.
		c.stateMu.RUnlock()
		locked = false
	}
	resp, err := h(ctx, req)
	if err == nil && resp != nil && resp.Login != nil {
		err = c.mintLogin(ctx, req, resp)
	}
	if err != nil {
		if aerr := c.logResponse(ctx, &rec, req, nil, err, pair); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if op == OpList && acl != nil && resp != nil {
		filterListKeys(resp, req.Path, acl)
	}
	if aerr := c.logResponse(ctx, &rec, req, resp, nil, pair); aerr != nil {
		return nil, aerr
	}
	if req.Auth != nil && req.Auth.numUsesLeft != nil {
		c.consumeUse(ctx, req)
	}
	return resp, nil
}

// resolveOperation turns a transport write into create or update.
func (c *Core) resolveOperation(ctx context.Context, req *Request, rt *compiledRoute) (Operation, error) {
	op := req.Operation
	if op == OpHead {
		op = OpRead
	}
	if op != OpWrite {
		return op, nil
	}
	if rt.Exists == nil {
		if rt.Handlers[OpUpdate] == nil && rt.Handlers[OpCreate] != nil {
			return OpCreate, nil
		}
		return OpUpdate, nil
	}
	ok, err := rt.Exists(ctx, req)
	if err != nil {
		return "", err
	}
	if ok {
		return OpUpdate, nil
	}
	if rt.Handlers[OpCreate] == nil {
		return OpUpdate, nil
	}
	return OpCreate, nil
}

func (c *Core) dispatchUnauthenticated(ctx context.Context, req *Request, rt *compiledRoute, params map[string]string, rel string) (*Response, error) {
	req.MountPath, req.RoutePath, req.Params = "sys/", rel, params
	op := req.Operation
	switch op {
	case OpHead:
		op = OpRead
	case OpWrite:
		op = OpUpdate
	}
	h := rt.Handlers[op]
	if h == nil {
		return nil, &Error{Status: 405, Empty: true}
	}
	return h(ctx, req)
}

// NewUUID returns a random RFC 4122 version 4 UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("core: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	hex.Encode(out[9:13], b[4:6])
	hex.Encode(out[14:18], b[6:8])
	hex.Encode(out[19:23], b[8:10])
	hex.Encode(out[24:], b[10:])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	return string(out[:])
}
