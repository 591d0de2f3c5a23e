package kubernetes

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
)

// Where a pod finds its own service account credentials; read when the
// config does not give a CA or reviewer JWT and disable_local_ca_jwt is
// false, as Vault does.
const (
	LocalTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	LocalCAPath    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// Backend is the kubernetes auth method for one mount.
type Backend struct {
	store storage.Backend // the mount's view
	log   *slog.Logger
	// display is the display-name prefix: the mount path without "auth/"
	// and slashes ("kubernetes").
	display  string
	accessor string

	// now is the clock; tests replace it before use.
	now func() time.Time
	// localTokenPath and localCAPath are LocalTokenPath and LocalCAPath;
	// tests point them elsewhere.
	localTokenPath string
	localCAPath    string

	// mu guards rt, the state built from the stored config (nil until
	// loaded, and after a config write until the next use).
	mu sync.Mutex
	rt *runtime
}

// runtime is what a login needs, built once per config.
type runtime struct {
	cfg      *config
	api      *apiServer
	verifier *jwtverify.Verifier // nil: no local signature check
	reviewer func() string       // the TokenReview bearer, "" for the client's own JWT
}

var (
	_ core.Backend = (*Backend)(nil)
	_ core.Factory = New
)

// New builds the kubernetes auth method for one mount. It takes no mount
// options.
func New(_ context.Context, cfg core.BackendConfig) (core.Backend, error) {
	if cfg.Storage == nil {
		return nil, errors.New("kubernetes: no storage")
	}
	if len(cfg.Options) > 0 {
		return nil, fmt.Errorf("kubernetes: unknown options %s: this auth method takes none",
			strings.Join(slices.Sorted(maps.Keys(cfg.Options)), ", "))
	}
	b := &Backend{
		store:          cfg.Storage,
		log:            cfg.Logger,
		display:        displayPrefix(cfg.MountPath),
		accessor:       cfg.Accessor,
		now:            time.Now,
		localTokenPath: LocalTokenPath,
		localCAPath:    LocalCAPath,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// displayPrefix turns "auth/kubernetes/" into "kubernetes".
func displayPrefix(mount string) string {
	p := strings.Trim(strings.TrimPrefix(mount, "auth/"), "/")
	if p == "" {
		p = "kubernetes"
	}
	return strings.ReplaceAll(p, "/", "-")
}

// Routes lists the method's routes, relative to the mount.
func (b *Backend) Routes() []core.Route {
	return []core.Route{
		{Pattern: "login", Unauthenticated: true, Handlers: map[core.Operation]core.Handler{
			core.OpCreate: b.login,
			core.OpUpdate: b.login,
		}},
		{Pattern: "config", Handlers: map[core.Operation]core.Handler{
			core.OpRead:   b.configRead,
			core.OpCreate: b.configWrite,
			core.OpUpdate: b.configWrite,
		}},
		{Pattern: "role", Handlers: map[core.Operation]core.Handler{
			core.OpList: b.roleList,
		}},
		{Pattern: "role/{name}", Exists: b.roleExists, Handlers: map[core.Operation]core.Handler{
			core.OpRead:   b.roleRead,
			core.OpCreate: b.roleWrite,
			core.OpUpdate: b.roleWrite,
			core.OpDelete: b.roleDelete,
		}},
	}
}

func (b *Backend) configRead(ctx context.Context, _ *core.Request) (*core.Response, error) {
	c, err := loadConfig(ctx, b.store)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: c.data()}, nil
}

func (b *Backend) configWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	c, err := decodeConfig(r.Body)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := saveConfig(ctx, b.store, &c); err != nil {
		return nil, err
	}
	b.rt = nil
	b.log.Info("config written", "host", c.Host, "validation", c.Validation)
	return nil, nil
}

// runtime returns the state for the current config, building it on first
// use. It returns nil, nil when the mount has no config.
func (b *Backend) runtime(ctx context.Context) (*runtime, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt != nil {
		return b.rt, nil
	}
	c, err := loadConfig(ctx, b.store)
	if err != nil || c == nil {
		return nil, err
	}
	rt, err := b.build(c)
	if err != nil {
		return nil, err
	}
	b.rt = rt
	return rt, nil
}

// build makes the HTTP clients and the verifier of a config.
func (b *Backend) build(c *config) (*runtime, error) {
	rt := &runtime{cfg: c}
	// Roots for the apiserver: the configured CA alone; else the system
	// roots plus the pod's CA; else the system roots.
	var apiRoots, fetchRoots *x509.CertPool
	extraCA := c.CACert
	if extraCA == "" && !c.DisableLocalCAJWT {
		if pem, err := os.ReadFile(b.localCAPath); err == nil {
			extraCA = string(pem)
		}
	}
	if extraCA != "" {
		sys, err := x509.SystemCertPool()
		if err != nil {
			sys = x509.NewCertPool()
		}
		sys.AppendCertsFromPEM([]byte(extraCA))
		fetchRoots = sys
		if c.CACert != "" {
			if apiRoots, err = certPool(c.CACert); err != nil {
				return nil, fmt.Errorf("kubernetes: config: kubernetes_ca_cert: %w", err)
			}
		} else {
			apiRoots = sys
		}
	}
	rt.api = &apiServer{host: c.Host, client: newHTTPClient(apiRoots)}
	switch {
	case c.ReviewerJWT != "":
		rt.reviewer = func() string { return c.ReviewerJWT.reveal() }
	case !c.DisableLocalCAJWT:
		path := b.localTokenPath
		rt.reviewer = func() string {
			tok, err := os.ReadFile(path) // projected tokens rotate: read each time
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(tok))
		}
	default:
		rt.reviewer = func() string { return "" }
	}

	var keys jwtverify.KeySet
	switch {
	case len(c.PEMKeys) > 0:
		static, err := jwtverify.ParsePEMKeys(c.PEMKeys)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: config: pem_keys: %w", err)
		}
		keys = static
	case c.JWKSURL != "" || c.OIDCDiscoveryURL != "" || c.Validation == ValidationOffline:
		fetch := newHTTPClient(fetchRoots)
		if u, err := url.Parse(c.Host); err == nil {
			// The cluster's discovery endpoints may need a token; give it
			// the reviewer's, and only to the apiserver.
			fetch.Transport = &bearerTransport{base: fetch.Transport, host: u.Host, token: rt.reviewer}
		}
		rc := jwtverify.RemoteConfig{JWKSURL: c.JWKSURL, DiscoveryURL: c.OIDCDiscoveryURL, Issuer: c.Issuer,
			Client: fetch, Now: b.clock, Logger: b.log}
		if rc.JWKSURL == "" && rc.DiscoveryURL == "" {
			rc.DiscoveryURL = c.Issuer
		}
		keys = jwtverify.NewRemoteKeySet(rc)
	}
	if keys != nil {
		rt.verifier = &jwtverify.Verifier{Keys: keys}
	}
	return rt, nil
}

// clock calls b.now, so tests may swap now after the runtime is built.
func (b *Backend) clock() time.Time { return b.now() }

// client returns the HTTP client of the apiserver, for tests.
func (rt *runtime) client() *http.Client { return rt.api.client }
