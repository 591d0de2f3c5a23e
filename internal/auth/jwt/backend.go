package jwt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
)

// fetchTimeout bounds a key-set fetch made by a config write's check.
const fetchTimeout = 10 * time.Second

// Backend is the jwt auth method for one mount.
type Backend struct {
	store    storage.Backend // the mount's view
	log      *slog.Logger
	display  string // display-name prefix: the mount path ("jwt")
	accessor string

	// now is the clock; tests replace it before use.
	now func() time.Time

	// mu guards rt, the verifier built from the stored config (nil until
	// loaded, and after a config write).
	mu sync.Mutex
	rt *runtime
}

type runtime struct {
	cfg      *config
	verifier *jwtverify.Verifier
}

var (
	_ core.Backend = (*Backend)(nil)
	_ core.Factory = New
)

// New builds the jwt auth method for one mount; the server registers it
// under the type names "jwt" and "oidc". It takes no mount options.
func New(_ context.Context, cfg core.BackendConfig) (core.Backend, error) {
	if cfg.Storage == nil {
		return nil, errors.New("jwt: no storage")
	}
	if len(cfg.Options) > 0 {
		return nil, fmt.Errorf("jwt: unknown options %s: this auth method takes none",
			strings.Join(slices.Sorted(maps.Keys(cfg.Options)), ", "))
	}
	b := &Backend{store: cfg.Storage, log: cfg.Logger, accessor: cfg.Accessor, now: time.Now}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.display = strings.ReplaceAll(strings.Trim(strings.TrimPrefix(cfg.MountPath, "auth/"), "/"), "/", "-")
	if b.display == "" {
		b.display = "jwt"
	}
	return b, nil
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

// configWrite stores a config after checking that its key source answers
// (as Vault does), so a wrong URL or CA shows at write time.
func (b *Backend) configWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	c, err := decodeConfig(r.Body)
	if err != nil {
		return nil, err
	}
	rt, err := b.build(&c)
	if err != nil {
		return nil, core.BadRequest("%v", err)
	}
	if c.JWKSURL != "" || c.OIDCDiscoveryURL != "" {
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		_, err := rt.verifier.Keys.Keys(fctx, "")
		cancel()
		if err != nil {
			what := "jwks URL"
			if c.OIDCDiscoveryURL != "" {
				what = "OIDC discovery URL"
			}
			return nil, core.BadRequest("error checking %s: %v", what, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := saveConfig(ctx, b.store, &c); err != nil {
		return nil, err
	}
	b.rt = rt
	return nil, nil
}

// runtime returns the verifier state of the stored config, or nil, nil
// when there is none.
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

// build makes the verifier of a validated config.
func (b *Backend) build(c *config) (*runtime, error) {
	algs, err := jwtverify.ParseAlgorithms(c.SupportedAlgs)
	if err != nil {
		return nil, fmt.Errorf("jwt: config: %w", err)
	}
	var keys jwtverify.KeySet
	switch {
	case len(c.PubKeys) > 0:
		static, err := jwtverify.ParsePEMKeys(c.PubKeys)
		if err != nil {
			return nil, fmt.Errorf("jwt: config: jwt_validation_pubkeys: %w", err)
		}
		keys = static
	case c.JWKSURL != "":
		client, err := httpClient(c.JWKSCAPEM)
		if err != nil {
			return nil, fmt.Errorf("jwt: config: jwks_ca_pem: %w", err)
		}
		keys = jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{JWKSURL: c.JWKSURL, Client: client, Now: b.clock, Logger: b.log})
	case c.OIDCDiscoveryURL != "":
		client, err := httpClient(c.OIDCDiscoveryCAPEM)
		if err != nil {
			return nil, fmt.Errorf("jwt: config: oidc_discovery_ca_pem: %w", err)
		}
		keys = jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{DiscoveryURL: c.OIDCDiscoveryURL, Client: client, Now: b.clock, Logger: b.log})
	default:
		return nil, errors.New("jwt: config has no key source")
	}
	return &runtime{cfg: c, verifier: &jwtverify.Verifier{Keys: keys, Algorithms: algs}}, nil
}

// httpClient trusts caPEM when given, else the system roots.
func httpClient(caPEM string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("no PEM certificate found")
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: t, Timeout: fetchTimeout}, nil
}

// clock calls b.now, so tests may swap now after the runtime is built.
func (b *Backend) clock() time.Time { return b.now() }
