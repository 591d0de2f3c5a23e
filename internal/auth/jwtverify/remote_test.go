package jwtverify_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func clientFor(t *testing.T, caPEM string) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("bad CA PEM")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestRemoteDiscoveryAndRefresh(t *testing.T) {
	t.Parallel()
	k1 := jwtverifytest.NewRSA(t, "k1")
	k2 := jwtverifytest.NewEC(t, "k2")
	iss := jwtverifytest.NewIssuer(t, k1)
	clock := &fakeClock{t: now}
	ks := jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{
		DiscoveryURL: iss.URL, Client: clientFor(t, iss.CAPEM), Now: clock.Now,
	})
	v := &jwtverify.Verifier{Keys: ks}
	ctx := t.Context()

	if _, err := v.Verify(ctx, k1.Sign(t, claims(nil))); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if _, err := v.Verify(ctx, k1.Sign(t, claims(nil))); err != nil {
		t.Fatalf("k1 again: %v", err)
	}
	if iss.JWKSHits() != 1 || iss.DiscoveryHits() != 1 {
		t.Fatalf("hits: jwks %d discovery %d, want 1 and 1 (cached)", iss.JWKSHits(), iss.DiscoveryHits())
	}

	// An unknown kid: one refresh, then refused; a second try inside
	// MinRefresh does not fetch again.
	clock.Advance(jwtverify.DefaultMinRefresh)
	if _, err := v.Verify(ctx, k2.Sign(t, claims(nil))); !errors.Is(err, jwtverify.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v, want ErrUnknownKey", err)
	}
	if iss.JWKSHits() != 2 {
		t.Fatalf("jwks hits after an unknown kid = %d, want 2", iss.JWKSHits())
	}
	for range 5 {
		if _, err := v.Verify(ctx, k2.Sign(t, claims(nil))); !errors.Is(err, jwtverify.ErrUnknownKey) {
			t.Fatalf("unknown kid again: %v", err)
		}
	}
	if iss.JWKSHits() != 2 {
		t.Fatalf("jwks hits after repeated unknown kids = %d, want still 2 (rate limited)", iss.JWKSHits())
	}

	// The issuer rotates in k2: after MinRefresh the refresh finds it.
	iss.SetKeys(k1, k2)
	clock.Advance(jwtverify.DefaultMinRefresh)
	if _, err := v.Verify(ctx, k2.Sign(t, claims(nil))); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if iss.JWKSHits() != 3 {
		t.Fatalf("jwks hits = %d, want 3", iss.JWKSHits())
	}

	// Keys older than MaxAge are fetched again before use.
	clock.Advance(jwtverify.DefaultMaxAge)
	if _, err := v.Verify(ctx, k1.Sign(t, claims(nil))); err != nil {
		t.Fatalf("k1 after max age: %v", err)
	}
	if iss.JWKSHits() != 4 {
		t.Fatalf("jwks hits = %d, want 4", iss.JWKSHits())
	}

	// The source goes away: keys already held stay in use.
	iss.Close()
	clock.Advance(jwtverify.DefaultMaxAge)
	if _, err := v.Verify(ctx, k1.Sign(t, claims(nil))); err != nil {
		t.Fatalf("k1 with the issuer down: %v", err)
	}
}

func TestRemoteConcurrentMissesFetchOnce(t *testing.T) {
	t.Parallel()
	k1 := jwtverifytest.NewEd25519(t, "k1")
	iss := jwtverifytest.NewIssuer(t, k1)
	ks := jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{JWKSURL: iss.URL + "/jwks", Client: clientFor(t, iss.CAPEM)})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := ks.Keys(t.Context(), "nope"); !errors.Is(err, jwtverify.ErrUnknownKey) {
				t.Errorf("Keys(nope) = %v", err)
			}
		})
	}
	wg.Wait()
	if iss.JWKSHits() != 1 || ks.Fetches() != 1 {
		t.Fatalf("jwks hits %d, fetches %d; want 1 and 1", iss.JWKSHits(), ks.Fetches())
	}
}

func TestRemoteFailures(t *testing.T) {
	t.Parallel()
	k1 := jwtverifytest.NewRSA(t, "k1")
	cases := []struct {
		name  string
		setup func(*jwtverifytest.Issuer) jwtverify.RemoteConfig
	}{
		{"untrusted CA", func(i *jwtverifytest.Issuer) jwtverify.RemoteConfig {
			return jwtverify.RemoteConfig{DiscoveryURL: i.URL}
		}},
		{"issuer mismatch", func(i *jwtverifytest.Issuer) jwtverify.RemoteConfig {
			i.SetIssuerName("https://evil.example")
			return jwtverify.RemoteConfig{DiscoveryURL: i.URL, Client: clientFor(t, i.CAPEM)}
		}},
		{"expected issuer differs", func(i *jwtverifytest.Issuer) jwtverify.RemoteConfig {
			return jwtverify.RemoteConfig{DiscoveryURL: i.URL, Issuer: "https://kubernetes.default.svc", Client: clientFor(t, i.CAPEM)}
		}},
		{"not found", func(i *jwtverifytest.Issuer) jwtverify.RemoteConfig {
			return jwtverify.RemoteConfig{JWKSURL: i.URL + "/nope", Client: clientFor(t, i.CAPEM)}
		}},
		{"no usable keys", func(i *jwtverifytest.Issuer) jwtverify.RemoteConfig {
			i.SetKeys()
			return jwtverify.RemoteConfig{JWKSURL: i.URL + "/jwks", Client: clientFor(t, i.CAPEM)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			iss := jwtverifytest.NewIssuer(t, k1)
			v := &jwtverify.Verifier{Keys: jwtverify.NewRemoteKeySet(c.setup(iss))}
			if _, err := v.Verify(t.Context(), k1.Sign(t, claims(nil))); !errors.Is(err, jwtverify.ErrKeysUnavailable) {
				t.Fatalf("Verify = %v, want ErrKeysUnavailable", err)
			}
		})
	}
}

// TestRemoteConcurrentFirstUse: callers that arrive while the first
// fetch is in flight wait for it rather than failing as rate limited.
func TestRemoteConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	k1 := jwtverifytest.NewEd25519(t, "k1")
	iss := jwtverifytest.NewIssuer(t, k1)
	clock := &fakeClock{t: now} // never moves: every caller is inside MinRefresh
	ks := jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{JWKSURL: iss.URL + "/jwks", Client: clientFor(t, iss.CAPEM), Now: clock.Now})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := ks.Keys(t.Context(), "k1"); err != nil {
				t.Errorf("Keys(k1) = %v", err)
			}
		})
	}
	wg.Wait()
	if iss.JWKSHits() != 1 {
		t.Fatalf("jwks hits %d, want 1", iss.JWKSHits())
	}
}
