package kmsplugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/kms/pkg/service"

	"github.com/cofferhq/coffer/api"
)

// Defaults for Config's zero values.
const (
	DefaultMount     = "transit"
	DefaultTimeout   = 2 * time.Second // under the apiserver's default 3s per call
	DefaultCacheSize = 1000
	DefaultCacheTTL  = time.Hour
	DefaultHealthTTL = 10 * time.Second
	DefaultRefresh   = 30 * time.Second
)

// unhealthyTTL is how long a failed round trip answers Status.
const unhealthyTTL = time.Second

// AnnotationFormat is stored beside each encrypted seed, in plaintext in
// etcd (with AnnotationKEK for FormatLocalKEK). The apiserver requires annotation
// keys to be fully qualified domain names (RFC 1123 subdomains of at least
// two labels; no suffix is reserved); this one is under the project's
// GitHub Pages domain. FormatV1 says the ciphertext is a coffer transit
// ciphertext of the seed, as plugins before local KEKs wrote (they are
// still decrypted); FormatLocalKEK (kek.go) is what Encrypt writes now. A
// later plugin that changes the format changes the value.
const (
	AnnotationFormat = "format.kms.cofferhq.github.io"
	FormatV1         = "transit-v1"
)

// Config configures a Plugin.
type Config struct {
	// Client reaches coffer (address and TLS). Its token is not used.
	Client *api.Client
	// Auth obtains and renews the plugin's token.
	Auth Auth
	// Mount is the transit engine's mount path; DefaultMount when empty.
	Mount string
	// Key names the transit key; it must exist and support encryption.
	Key string
	// Socket is the unix socket path served by Run.
	Socket string
	// MetricsAddress, when set, serves /metrics, /livez and /readyz over
	// HTTP (host:port).
	MetricsAddress string
	// Timeout bounds each call to coffer, and each Status round trip;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// CacheSize is how many data keys Decrypt keeps; DefaultCacheSize when
	// zero, negative turns the cache off. CacheTTL is how long one is kept;
	// DefaultCacheTTL when zero.
	CacheSize int
	CacheTTL  time.Duration
	// KEKLifetime is how long one local key encryption key encrypts new
	// seeds (kek.go); DefaultKEKLifetime when zero.
	KEKLifetime time.Duration
	// HealthTTL is how long a good round trip answers Status;
	// DefaultHealthTTL when zero.
	HealthTTL time.Duration
	// Refresh is how often the plugin checks coffer on its own, keeping
	// the key id current between the apiserver's Status polls;
	// DefaultRefresh when zero.
	Refresh time.Duration
	// TokenPoll is how often a token file is checked for a new token;
	// 5s when zero.
	TokenPoll time.Duration
	// Logger receives the plugin's logs; discarded when nil.
	Logger *slog.Logger
}

// validate reports every problem at once.
func (c *Config) validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("no coffer client"))
	}
	if c.Auth == nil {
		errs = append(errs, errors.New("no authentication: give a token file or a login"))
	} else if err := c.Auth.check(); err != nil {
		errs = append(errs, err)
	}
	c.Mount = strings.Trim(c.Mount, "/")
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	switch {
	case c.Key == "":
		errs = append(errs, errors.New("no transit key name given"))
	case strings.ContainsAny(c.Key, "/?#%") || strings.TrimSpace(c.Key) != c.Key:
		errs = append(errs, fmt.Errorf("transit key name %q: must not contain '/', '?', '#', '%%' or surrounding spaces", c.Key))
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"timeout", &c.Timeout, DefaultTimeout}, {"cache TTL", &c.CacheTTL, DefaultCacheTTL},
		{"health TTL", &c.HealthTTL, DefaultHealthTTL}, {"KEK lifetime", &c.KEKLifetime, DefaultKEKLifetime}, {"refresh interval", &c.Refresh, DefaultRefresh},
		{"token poll interval", &c.TokenPoll, defaultPoll}} {
		if *d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", d.name, *d.v))
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Plugin is the KMS v2 service backed by a coffer transit key. It
// implements k8s.io/kms/pkg/service.Service; Run serves it on a socket.
type Plugin struct {
	cfg     Config
	key     keyName
	tokens  *tokenManager
	cache   *dekCache
	metrics *metrics
	logger  *slog.Logger

	latest atomic.Int64                // latest transit key version seen; 0: none yet
	health atomic.Pointer[healthState] // the last round trip's result; nil: none yet

	// kek is the local key encryption key that encrypts new seeds.
	kek kekState

	// probe (capacity 1) is held while a health round trip runs, so
	// concurrent callers share one; waiting for it watches the caller's
	// context.
	probe chan struct{}

	// decrypter coalesces concurrent decrypt calls to coffer.
	decrypter *coalescer[[]byte]

	// opening holds the ciphertexts coffer is opening now, so that
	// callers needing the same one at once (every seed under one KEK
	// after a restart) share one call.
	openMu  sync.Mutex
	opening map[string]*openFlight
}

// openFlight is one ciphertext being opened by coffer. Its plaintext goes
// to the cache, where the callers that waited for it find it; err is set
// before done is closed.
type openFlight struct {
	done chan struct{}
	err  error
}

var _ service.Service = (*Plugin)(nil)

type healthState struct {
	at  time.Time
	err error
}

// New checks cfg and builds a plugin. It does not reach coffer: the plugin
// must serve (and report itself unhealthy) while coffer is down.
func New(cfg Config) (*Plugin, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kms-plugin: %w", err)
	}
	p := &Plugin{
		cfg:     cfg,
		key:     keyName{mount: cfg.Mount, name: cfg.Key},
		cache:   newDEKCache(cfg.CacheSize, cfg.CacheTTL),
		logger:  cfg.Logger,
		probe:   make(chan struct{}, 1),
		opening: map[string]*openFlight{},
	}
	p.metrics = newMetrics(p.cache.len)
	p.tokens = newTokenManager(cfg.Client, cfg.Auth, cfg.Timeout, cfg.TokenPoll, cfg.Logger.With("subsystem", "token"), p.metrics)
	p.decrypter = &coalescer[[]byte]{
		op: "decrypt", path: p.key.path("decrypt"), timeout: cfg.Timeout,
		send: func(ctx context.Context, items []*batchItem[[]byte]) {
			c, err := p.client()
			if err != nil {
				failAll(items, err)
				return
			}
			transitDecryptItems(ctx, c, p.key, items)
		},
		discard: func(dek []byte) { clear(dek) },
		observe: func(n int) { p.metrics.batch("decrypt", n) },
	}
	return p, nil
}

// KeyID is the key id Status reports: "<mount>/<key>:v<latest version>",
// or "" before the plugin has reached coffer.
func (p *Plugin) KeyID() string {
	v := p.latest.Load()
	if v == 0 {
		return ""
	}
	return p.key.keyID(int(v))
}

// Status reports healthz "ok" only when an encrypt/decrypt round trip
// through coffer works (remembered for HealthTTL), else what is wrong.
// The key id is the latest one seen, also while unhealthy.
func (p *Plugin) Status(ctx context.Context) (*service.StatusResponse, error) {
	start := time.Now()
	err := p.check(ctx, false)
	resp := &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: p.KeyID()}
	if err != nil {
		resp.Healthz = healthz(err)
	}
	p.metrics.request("Status", start, nil)
	return resp, nil
}

// Encrypt seals the apiserver's data key (a 32-byte seed) under the local
// KEK, which the latest transit key version wraps; the key id names that
// version (kek.go).
func (p *Plugin) Encrypt(ctx context.Context, uid string, plaintext []byte) (*service.EncryptResponse, error) {
	start := time.Now()
	resp, err := p.encrypt(ctx, uid, plaintext)
	p.metrics.request("Encrypt", start, err)
	return resp, err
}

func (p *Plugin) encrypt(ctx context.Context, uid string, plaintext []byte) (*service.EncryptResponse, error) {
	if len(plaintext) == 0 || len(plaintext) > maxPlaintext {
		return nil, status.Errorf(codes.InvalidArgument, "kms-plugin: plaintext is %d bytes, want 1 to %d", len(plaintext), maxPlaintext)
	}
	// Encrypt is refused exactly when Status would report coffer
	// unhealthy (the same remembered round trip, or a new one when it is
	// stale), though a KEK in memory could seal the seed: sealing coffer
	// stops the wrapping of new seeds.
	if err := p.check(ctx, false); err != nil {
		if ctx.Err() != nil {
			p.logger.Debug("encrypt: the caller gave up waiting for the health round trip", "uid", uid, "err", err)
		} else {
			p.logger.Warn("encrypt refused: coffer is unhealthy", "uid", uid, "err", err)
		}
		return nil, status.Error(codes.Unavailable, "kms-plugin: encrypt: "+healthz(err))
	}
	if _, err := p.client(); err != nil {
		return nil, p.failed(uid, "encrypt", err)
	}
	resp, err := p.encryptLocal(ctx, plaintext)
	if err != nil {
		return nil, p.failed(uid, "encrypt", err)
	}
	p.logger.Debug("encrypt", "uid", uid, "key_id", resp.KeyID)
	return resp, nil
}

// Decrypt opens a ciphertext this plugin's transit key protects: a seed
// sealed under a local KEK (opened without coffer when the KEK is current
// or cached, kek.go), or a FormatV1 transit ciphertext of the seed. What
// is held in memory answers also while coffer is unreachable or sealed.
func (p *Plugin) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	start := time.Now()
	pt, err := p.decrypt(ctx, uid, req)
	p.metrics.request("Decrypt", start, err)
	return pt, err
}

func (p *Plugin) decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	if req == nil {
		return nil, status.Error(codes.InvalidArgument, "kms-plugin: empty decrypt request")
	}
	local := string(req.Annotations[AnnotationFormat]) == FormatLocalKEK
	check := p.checkDecrypt
	if local {
		check = p.checkLocal
	}
	if err := check(req); err != nil {
		p.logger.Warn("decrypt refused", "uid", uid, "key_id", truncate(req.KeyID, 200), "err", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if local {
		pt, err := p.decryptLocal(ctx, uid, req)
		if err == nil {
			p.logger.Debug("decrypt", "uid", uid, "key_id", req.KeyID)
		}
		return pt, err
	}
	dek, err := p.openTransit(ctx, uid, req.Ciphertext)
	if err != nil {
		return nil, err
	}
	p.logger.Debug("decrypt", "uid", uid, "key_id", req.KeyID)
	return dek, nil
}

// openTransit returns the plaintext of transit ciphertext ct (a FormatV1
// seed or a wrapped KEK): from the cache, or from coffer and then cached.
// The caller owns the copy it gets and zeroes it when done.
func (p *Plugin) openTransit(ctx context.Context, uid string, ct []byte) ([]byte, error) {
	if pt, ok := p.cache.get(ct); ok {
		p.metrics.cache(true)
		return pt, nil
	}
	p.metrics.cache(false)
	if _, err := p.client(); err != nil {
		return nil, p.failed(uid, "decrypt", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	for {
		p.openMu.Lock()
		f, waiting := p.opening[string(ct)]
		if !waiting {
			f = &openFlight{done: make(chan struct{})}
			p.opening[string(ct)] = f
		}
		p.openMu.Unlock()
		if !waiting {
			pt, err := p.decrypter.do(ctx, ct)
			if err != nil {
				err = p.failed(uid, "decrypt", err)
			} else {
				p.cache.put(ct, pt)
			}
			p.openMu.Lock()
			delete(p.opening, string(ct))
			p.openMu.Unlock()
			f.err = err
			if err != nil && ctx.Err() != nil {
				f.err = nil // this caller's time ran out, not coffer's answer: the others try again themselves
			}
			close(f.done)
			return pt, err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, p.failed(uid, "decrypt", gaveUp(ctx, "decrypt", p.key.path("decrypt"), "coffer to open the same ciphertext for another caller"))
		}
		if f.err != nil {
			return nil, f.err // coffer's answer to the same ciphertext
		}
		if pt, ok := p.cache.get(ct); ok {
			return pt, nil
		}
		// Not cached (no cache, or evicted already): open it again.
	}
}

// checkDecrypt refuses what this plugin cannot have written, before any
// call to coffer.
func (p *Plugin) checkDecrypt(req *service.DecryptRequest) error {
	if f, ok := req.Annotations[AnnotationFormat]; ok && string(f) != FormatV1 {
		return fmt.Errorf("kms-plugin: annotation %s is %q, this plugin reads %q and %q: upgrade the plugin",
			AnnotationFormat, truncate(string(f), 64), FormatLocalKEK, FormatV1)
	}
	v, err := parseCiphertext(req.Ciphertext)
	if err != nil {
		return err
	}
	kv, err := p.key.parseKeyID(req.KeyID)
	if err != nil {
		return err
	}
	if kv != v {
		return fmt.Errorf("%w %q: the ciphertext is from version %d", ErrUnknownKeyID, req.KeyID, v)
	}
	return nil
}

// client returns a client carrying the current token.
func (p *Plugin) client() (*api.Client, error) {
	if c := p.tokens.client(); c != nil {
		return c, nil
	}
	err := p.tokens.err()
	if err == nil {
		err = errors.New("the first token is still being obtained")
	}
	return nil, &CofferError{Op: "auth", Path: p.cfg.Auth.String(), kind: kindNoToken, Err: err}
}

// failed logs and counts a failed call and turns it into a gRPC status.
func (p *Plugin) failed(uid, op string, err error) error {
	p.metrics.cofferError(err)
	var ce *CofferError
	if !errors.As(err, &ce) {
		p.logger.Error(op+" failed", "uid", uid, "err", err)
		return status.Errorf(codes.Internal, "kms-plugin: %s: %v", op, err)
	}
	if ce.kind == kindDenied {
		p.tokens.denied()
	}
	p.logger.Warn(op+" failed", "uid", uid, "kind", ce.kind.String(), "err", err)
	return status.Error(ce.code(), "kms-plugin: "+err.Error())
}

// sawVersion records transit key version v as seen; the key id follows
// the highest version seen.
func (p *Plugin) sawVersion(v int) {
	for {
		cur := p.latest.Load()
		if int64(v) <= cur {
			return
		}
		if p.latest.CompareAndSwap(cur, int64(v)) {
			if cur != 0 {
				p.logger.Info("transit key rotated: new key id", "old", p.key.keyID(int(cur)), "key_id", p.key.keyID(v))
			} else {
				p.logger.Info("key id", "key_id", p.key.keyID(v))
			}
			return
		}
	}
}

// check returns the result of a recent round trip, or makes one when
// force is set or the last is older than HealthTTL (unhealthyTTL after a
// failure).
func (p *Plugin) check(ctx context.Context, force bool) error {
	if h, ok := p.freshHealth(); ok && !force {
		return h.err
	}
	select {
	case p.probe <- struct{}{}:
	case <-ctx.Done():
		// Another caller's round trip is under way and this caller gave
		// up waiting for it (nothing is remembered of that).
		return gaveUp(ctx, "health check", p.key.path("encrypt"), "a round trip under way")
	}
	if h, ok := p.freshHealth(); ok && !force {
		<-p.probe
		return h.err // another caller's round trip finished meanwhile
	}
	// The round trip is the plugin's, not the caller's: it runs to its
	// own Timeout even when the caller that started it gives up (the
	// apiserver's deadline, a cancelled request), so that one caller's
	// cancellation is never remembered as coffer being unhealthy.
	done := make(chan error, 1)
	go func() {
		defer func() { <-p.probe }()
		err := p.roundTrip(context.WithoutCancel(ctx))
		was := p.health.Swap(&healthState{at: time.Now(), err: err})
		p.metrics.health(err == nil, int(p.latest.Load()))
		switch {
		case err != nil && (was == nil || was.err == nil):
			p.logger.Warn("unhealthy", "err", err)
		case err == nil && (was == nil || was.err != nil):
			p.logger.Info("healthy", "key_id", p.KeyID())
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return gaveUp(ctx, "health check", p.key.path("encrypt"), "the round trip it started")
	}
}

// freshHealth returns the last round trip's result while it may still
// answer Status.
func (p *Plugin) freshHealth() (*healthState, bool) {
	h := p.health.Load()
	if h == nil {
		return nil, false
	}
	ttl := p.cfg.HealthTTL
	if h.err != nil {
		ttl = unhealthyTTL
	}
	return h, time.Since(h.at) < ttl
}

// roundTrip encrypts 32 random bytes through coffer and decrypts them
// again, within one Timeout.
func (p *Plugin) roundTrip(ctx context.Context) error {
	c, err := p.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	probe := make([]byte, 32)
	_, _ = rand.Read(probe)
	ct, v, err := transitEncrypt(ctx, c, p.key, probe)
	if err != nil {
		return p.roundTripErr(err)
	}
	p.sawVersion(v)
	pt, err := transitDecrypt(ctx, c, p.key, []byte(ct))
	if err != nil {
		return p.roundTripErr(err)
	}
	defer clear(pt)
	if !bytes.Equal(pt, probe) {
		return fmt.Errorf("coffer round trip through %s returned other bytes than were encrypted", p.key)
	}
	return nil
}

func (p *Plugin) roundTripErr(err error) error {
	p.metrics.cofferError(err)
	var ce *CofferError
	if errors.As(err, &ce) && ce.kind == kindDenied {
		p.tokens.denied()
		if terr := p.tokens.err(); terr != nil {
			return fmt.Errorf("%w; token: %v", err, terr)
		}
	}
	return err
}

// healthz is the one-line Status message for err.
func healthz(err error) string {
	return truncate(oneLine(err.Error()), 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
