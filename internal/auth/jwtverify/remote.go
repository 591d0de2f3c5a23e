package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Remote key set defaults.
const (
	// DefaultMinRefresh is the least time between two fetches of a remote
	// key set.
	DefaultMinRefresh = 10 * time.Second
	// DefaultMaxAge is how long fetched keys are used before they are
	// fetched again.
	DefaultMaxAge = time.Hour
	// maxDocSize bounds a discovery document or a JWKS.
	maxDocSize = 1 << 20
	// fetchTimeout bounds one fetch when the caller's context has no
	// earlier deadline.
	fetchTimeout = 10 * time.Second
)

// RemoteConfig says where a RemoteKeySet gets its keys.
type RemoteConfig struct {
	// JWKSURL is the key set's URL. When empty, DiscoveryURL is used.
	JWKSURL string
	// DiscoveryURL is an OIDC issuer URL: the key set URL is the
	// jwks_uri of DiscoveryURL + "/.well-known/openid-configuration".
	DiscoveryURL string
	// Issuer, when set, must equal the discovery document's "issuer"
	// (trailing slashes aside). With discovery and no Issuer, the
	// document's issuer must equal DiscoveryURL, as OIDC requires.
	Issuer string
	// Client makes the requests (its transport carries the trusted CAs).
	// Nil means http.DefaultClient.
	Client *http.Client
	// MinRefresh is the least time between fetches; zero means
	// DefaultMinRefresh.
	MinRefresh time.Duration
	// MaxAge is how long keys are trusted before a refetch; zero means
	// DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets fetch failures; nil discards them.
	Logger *slog.Logger
}

// RemoteKeySet is a KeySet fetched over HTTP(S) and cached. It is safe for
// concurrent use.
type RemoteKeySet struct {
	cfg RemoteConfig

	// fetchMu serialises fetches, so concurrent misses share one.
	fetchMu sync.Mutex

	// mu guards the fields below it.
	mu        sync.Mutex
	keys      []Key
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch attempt
	lastErr   error     // error of the last attempt, nil after a success
	fetches   int       // attempts made, for tests and metrics
}

var _ KeySet = (*RemoteKeySet)(nil)

// NewRemoteKeySet returns a key set that fetches on first use.
func NewRemoteKeySet(cfg RemoteConfig) *RemoteKeySet {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteKeySet{cfg: cfg}
}

// Fetches reports how many fetch attempts the key set has made.
func (r *RemoteKeySet) Fetches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetches
}

// Keys implements KeySet. Cached keys are used while younger than
// MaxAge; a kid not among them causes one refetch, at most once per
// MinRefresh. When a refetch fails, keys already held stay in use.
func (r *RemoteKeySet) Keys(ctx context.Context, kid string) ([]Key, error) {
	r.mu.Lock()
	keys, fetchedAt, triedAt, lastErr := r.keys, r.fetchedAt, r.triedAt, r.lastErr
	r.mu.Unlock()
	now := r.cfg.Now()
	fresh := len(keys) > 0 && now.Sub(fetchedAt) < r.cfg.MaxAge
	if fresh {
		if out := matchKID(keys, kid); len(out) > 0 {
			return out, nil
		}
	}
	if !triedAt.IsZero() && now.Sub(triedAt) < r.cfg.MinRefresh {
		// Tried too recently to try again. That attempt may still be in
		// flight: wait for it, then use what it got. Stale keys are still
		// better than none while the source is failing.
		r.fetchMu.Lock()
		//lint:ignore SA2001 the empty critical section waits for a fetch in flight
		r.fetchMu.Unlock()
		r.mu.Lock()
		keys, lastErr = r.keys, r.lastErr
		r.mu.Unlock()
		if out := matchKID(keys, kid); len(out) > 0 {
			return out, nil
		}
		return r.noMatch(keys, kid, lastErr)
	}

	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	if !r.triedAt.Equal(triedAt) {
		// Someone else fetched while we waited: use their result.
		keys, lastErr = r.keys, r.lastErr
		r.mu.Unlock()
		if out := matchKID(keys, kid); len(out) > 0 {
			return out, nil
		}
		return r.noMatch(keys, kid, lastErr)
	}
	r.triedAt = now
	r.fetches++
	r.mu.Unlock()

	got, err := r.fetch(ctx)

	r.mu.Lock()
	if err != nil {
		r.lastErr = err
		keys = r.keys
		r.mu.Unlock()
		r.cfg.Logger.Warn("fetching verification keys failed", "url", r.where(), "error", err)
		if out := matchKID(keys, kid); len(out) > 0 {
			return out, nil
		}
		return r.noMatch(keys, kid, err)
	}
	r.keys, r.fetchedAt, r.lastErr = got, r.cfg.Now(), nil
	r.mu.Unlock()
	if out := matchKID(got, kid); len(out) > 0 {
		return out, nil
	}
	return r.noMatch(got, kid, nil)
}

func (r *RemoteKeySet) noMatch(keys []Key, kid string, lastErr error) ([]Key, error) {
	if len(keys) == 0 && lastErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, lastErr)
	}
	return nil, fmt.Errorf("%w: the key set at %s has no key with id %q", ErrUnknownKey, r.where(), kid)
}

func (r *RemoteKeySet) where() string {
	if r.cfg.JWKSURL != "" {
		return r.cfg.JWKSURL
	}
	return r.cfg.DiscoveryURL
}

// fetch gets the key set, through discovery when configured so.
func (r *RemoteKeySet) fetch(ctx context.Context) ([]Key, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	jwksURL := r.cfg.JWKSURL
	if jwksURL == "" {
		u, err := r.discover(ctx)
		if err != nil {
			return nil, err
		}
		jwksURL = u
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := r.getJSON(ctx, jwksURL, &set); err != nil {
		return nil, err
	}
	var keys []Key
	var skipped []string
	for _, raw := range set.Keys {
		var j jose.JSONWebKey
		if err := j.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, trimJose(err))
			continue
		}
		k, err := keyFromJWK(&j)
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		keys = append(keys, k)
	}
	if len(skipped) > 0 {
		r.cfg.Logger.Warn("skipped unusable keys", "url", jwksURL, "problems", strings.Join(skipped, "; "))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has no usable signature keys", jwksURL)
	}
	return keys, nil
}

// discover reads the OIDC discovery document and returns its jwks_uri.
func (r *RemoteKeySet) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(r.cfg.DiscoveryURL, "/")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := r.getJSON(ctx, base+"/.well-known/openid-configuration", &doc); err != nil {
		return "", err
	}
	want := r.cfg.Issuer
	if want == "" {
		want = r.cfg.DiscoveryURL
	}
	if strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(want, "/") {
		return "", fmt.Errorf("discovery document at %s names issuer %q, want %q", base, doc.Issuer, want)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery document at %s has no jwks_uri", base)
	}
	return doc.JWKSURI, nil
}

func (r *RemoteKeySet) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	// kube-apiserver serves its JWKS as application/jwk-set+json and
	// answers 406 to a request that accepts only application/json.
	req.Header.Set("Accept", "application/json, application/jwk-set+json;q=0.9, */*;q=0.1")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocSize+1))
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	if len(body) > maxDocSize {
		return fmt.Errorf("fetch %s: response larger than %d bytes", url, maxDocSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("fetch %s: %w", url, errors.Join(errors.New("not JSON"), err))
	}
	return nil
}
