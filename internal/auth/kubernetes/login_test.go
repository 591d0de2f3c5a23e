package kubernetes

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
	"github.com/cofferhq/coffer/internal/core"
)

// offlineHarness is a mount validating offline against a stand-in
// issuer, with a role "eso" for eso/external-secrets and audience vault.
func offlineHarness(t *testing.T) (*harness, *cluster) {
	t.Helper()
	h := newHarness(t)
	c := newCluster(t)
	h.write("config", c.offlineConfig())
	h.write("role/eso", map[string]any{
		"bound_service_account_names":      []string{"external-secrets", "app-*"},
		"bound_service_account_namespaces": []string{"eso", "team-*"},
		"token_policies":                   []string{"app-read"},
		"token_ttl":                        "1h",
		"token_max_ttl":                    "2h",
		"audience":                         "vault",
	})
	return h, c
}

func TestLoginOffline(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	l, err := h.login("eso", c.token(t, sa{ns: "eso", name: "external-secrets", uid: "1111-2222", aud: []string{"vault"}}))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	want := &core.Login{
		Policies: []string{"app-read"},
		Metadata: map[string]string{
			"role": "eso", "service_account_name": "external-secrets", "service_account_namespace": "eso",
			"service_account_secret_name": "", "service_account_uid": "1111-2222",
		},
		DisplayName: "kubernetes-eso-external-secrets",
		TTL:         time.Hour,
		MaxTTL:      2 * time.Hour,
		EntityID:    "1111-2222",
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("login:\n got %+v\nwant %+v", l, want)
	}
	if c.JWKSHits() != 1 || c.DiscoveryHits() != 1 {
		t.Fatalf("jwks %d, discovery %d fetches; want 1, 1", c.JWKSHits(), c.DiscoveryHits())
	}
	// A second login uses the cached key set.
	if _, err := h.login("eso", c.token(t, sa{ns: "team-a", name: "app-web", aud: []string{"vault", "other"}})); err != nil {
		t.Fatalf("glob-bound login: %v", err)
	}
	if c.JWKSHits() != 1 {
		t.Fatalf("jwks fetched %d times; want 1 (cached)", c.JWKSHits())
	}
}

func TestLoginProjectedPodToken(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	h.write("role/byname", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*",
		"alias_name_source": "serviceaccount_name"})
	l, err := h.login("byname", c.token(t, sa{ns: "web", name: "frontend", pod: "frontend-7d9f", node: "node-1"}))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"pod_name": "frontend-7d9f", "pod_uid": "pod-uid-frontend-7d9f", "node_name": "node-1", "node_uid": "node-uid-node-1"} {
		if l.Metadata[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, l.Metadata[k], v)
		}
	}
	if l.EntityID != nameUUID("auth_kubernetes_1234", "web/frontend") || len(l.EntityID) != 36 || l.EntityID == "uid-web-frontend" {
		t.Errorf("entity id %q, want the name-derived id", l.EntityID)
	}
}

func TestLoginLegacyToken(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	h.write("role/legacy", map[string]any{"bound_service_account_names": "builder", "bound_service_account_namespaces": "ci"})
	raw := c.signer.Sign(t, map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:ci:builder",
		"kubernetes.io/serviceaccount/namespace": "ci",
		"kubernetes.io/serviceaccount/secret.name":          "builder-token-x7k2p",
		"kubernetes.io/serviceaccount/service-account.name": "builder",
		"kubernetes.io/serviceaccount/service-account.uid":  "3333",
	})
	l, err := h.login("legacy", raw)
	if err != nil {
		t.Fatal(err)
	}
	if l.Metadata["service_account_secret_name"] != "builder-token-x7k2p" || l.EntityID != "3333" {
		t.Fatalf("legacy login metadata %v", l.Metadata)
	}
	// A legacy token has no aud: a role with an audience refuses it.
	_, err = h.login("eso", c.signer.Sign(t, map[string]any{
		"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "eso",
		"kubernetes.io/serviceaccount/service-account.name": "external-secrets",
		"kubernetes.io/serviceaccount/service-account.uid":  "1",
	}))
	wantErr(t, err, 403, "invalid audience (aud) claim")
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	good := sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}}
	with := func(f func(*sa)) string {
		s := good
		f(&s)
		return c.token(t, s)
	}
	claims := good.claims(c.URL)
	stranger := jwtverifytest.NewRSA(t, "sa-key-1") // same kid, another key
	otherKid := jwtverifytest.NewRSA(t, "other-key")
	pub := []byte(c.signer.PEM(t))
	huge := good.claims(c.URL)
	huge["padding"] = strings.Repeat("x", jwtverify.MaxTokenSize)

	cases := []struct {
		name   string
		role   string
		jwt    string
		status int
		msg    string
	}{
		{"unknown role", "nope", c.token(t, good), 400, `invalid role name "nope"`},
		{"missing role", "", c.token(t, good), 400, "missing role"},
		{"missing jwt", "eso", "", 400, "missing jwt"},
		{"wrong audience", "eso", with(func(s *sa) { s.aud = []string{"other"} }), 403, "invalid audience (aud) claim: "},
		{"no audience", "eso", with(func(s *sa) { s.aud = nil }), 403, "invalid audience (aud) claim: "},
		{"expired", "eso", with(func(s *sa) { s.iat = t0.Add(-time.Hour) }), 403, "invalid expiration time (exp) claim: token is expired"},
		{"nbf in the future", "eso", with(func(s *sa) { s.iat = t0.Add(5 * time.Minute) }), 403, "invalid not before (nbf) claim: token not yet valid"},
		{"skew beyond the leeway", "eso", with(func(s *sa) { s.iat = t0.Add(61 * time.Second) }), 403, "invalid not before (nbf) claim"},
		{"namespace not bound", "eso", with(func(s *sa) { s.ns = "default" }), 403, "namespace not authorized"},
		{"name not bound", "eso", with(func(s *sa) { s.name = "default" }), 403, "service account name not authorized"},
		{"another issuer's iss", "eso", c.signer.Sign(t, sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}}.claims("https://other.example")), 403, "invalid issuer (iss) claim"},
		{"signed by another key", "eso", stranger.Sign(t, claims), 403, "permission denied"},
		{"unknown kid", "eso", otherKid.Sign(t, claims), 403, "permission denied"},
		{"alg none", "eso", jwtverifytest.Unsigned(t, claims), 403, "permission denied"},
		{"HS256 with the public key", "eso", jwtverifytest.HMAC(t, "sa-key-1", pub, claims), 403, "permission denied"},
		{"malformed", "eso", "a.b", 400, "invalid jwt: malformed token"},
		{"garbage", "eso", "not a jwt at all", 400, "invalid jwt"},
		{"over 64 KiB", "eso", strings.Repeat("A", jwtverify.MaxTokenSize+1), 400, "invalid jwt: 65537 bytes, the limit is 65536"},
		{"large but signed", "eso", c.signer.Sign(t, huge), 400, "invalid jwt"},
		{"not a service account token", "eso", c.signer.Sign(t, map[string]any{"iss": c.URL, "aud": "vault", "sub": "alice", "exp": t0.Add(time.Minute).Unix()}), 403, "not a Kubernetes service account token"},
		{"subject disagrees", "eso", c.signer.Sign(t, func() map[string]any { m := good.claims(c.URL); m["sub"] = "system:serviceaccount:eso:admin"; return m }()), 403, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.login(tc.role, tc.jwt)
			wantErr(t, err, tc.status, tc.msg)
		})
	}
	// The unknown kid came within the refresh rate limit of the first
	// fetch: no second fetch (TestLoginUnknownKid covers the refresh).
	if c.JWKSHits() != 1 {
		t.Errorf("jwks fetched %d times; want 1", c.JWKSHits())
	}
}

func TestLoginUnknownKid(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	good := sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}}
	if _, err := h.login("eso", c.token(t, good)); err != nil {
		t.Fatal(err)
	}
	rotated := jwtverifytest.NewEC(t, "sa-key-2")
	h.clock.Advance(jwtverify.DefaultMinRefresh)
	for range 3 {
		_, err := h.login("eso", rotated.Sign(t, good.claims(c.URL)))
		wantErr(t, err, 403, "permission denied")
	}
	if c.JWKSHits() != 2 {
		t.Fatalf("jwks fetched %d times; want 2 (one refresh, then rate limited)", c.JWKSHits())
	}
	// The cluster starts signing with the new key and publishes it.
	c.SetKeys(c.signer, rotated)
	h.clock.Advance(jwtverify.DefaultMinRefresh)
	if _, err := h.login("eso", rotated.Sign(t, good.claims(c.URL))); err != nil {
		t.Fatalf("login with the rotated key: %v", err)
	}
	if c.JWKSHits() != 3 {
		t.Fatalf("jwks fetched %d times; want 3", c.JWKSHits())
	}
}

func TestLoginClockSkewLeeway(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	early := c.token(t, sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}, iat: t0.Add(50 * time.Second)})
	if _, err := h.login("eso", early); err != nil {
		t.Fatalf("50s early within the default 60s leeway: %v", err)
	}
	cfg := c.offlineConfig()
	cfg["clock_skew_leeway"] = -1
	h.write("config", cfg)
	_, err := h.login("eso", early)
	wantErr(t, err, 403, "invalid not before (nbf) claim")

	// The verifier's clock moves past exp.
	cfg["clock_skew_leeway"] = "30s"
	h.write("config", cfg)
	tok := c.token(t, sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}})
	h.clock.Advance(10*time.Minute + 29*time.Second)
	if _, err := h.login("eso", tok); err != nil {
		t.Fatalf("29s after exp with a 30s leeway: %v", err)
	}
	h.clock.Advance(2 * time.Second)
	_, err = h.login("eso", tok)
	wantErr(t, err, 403, "token is expired")
}

func TestLoginPEMKeys(t *testing.T) {
	t.Parallel()
	for _, s := range []*jwtverifytest.Signer{jwtverifytest.NewEC(t, ""), jwtverifytest.NewEd25519(t, ""),
		{Key: jwtverifytest.NewRSA(t, "").Key, Alg: jose.PS256}} {
		t.Run(string(s.Alg), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.write("config", map[string]any{"kubernetes_host": "https://k8s.example", "validation": "offline",
				"issuer": "https://k8s.example", "pem_keys": []string{s.PEM(t)}})
			h.write("role/r", map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "n"})
			if _, err := h.login("r", s.Sign(t, sa{ns: "n", name: "a"}.claims("https://k8s.example"))); err != nil {
				t.Fatalf("login: %v", err)
			}
			other := &jwtverifytest.Signer{Key: jwtverifytest.NewEC(t, "").Key, Alg: jose.ES256}
			_, err := h.login("r", other.Sign(t, sa{ns: "n", name: "a"}.claims("https://k8s.example")))
			wantErr(t, err, 403, "permission denied")
		})
	}
}

func TestLoginBoundCIDRs(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	h.write("role/cidr", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*",
		"token_bound_cidrs": "192.168.0.0/16"})
	_, err := h.login("cidr", c.token(t, sa{ns: "x", name: "y"}))
	wantErr(t, err, 403, "permission denied") // the harness logs in from 10.1.2.3
	h.write("role/cidr", map[string]any{"token_bound_cidrs": []string{"10.0.0.0/8"}})
	l, err := h.login("cidr", c.token(t, sa{ns: "x", name: "y"}))
	if err != nil || !reflect.DeepEqual(l.BoundCIDRs, []string{"10.0.0.0/8"}) {
		t.Fatalf("login = %+v, %v", l, err)
	}
}

func TestLoginNotConfigured(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.write("role/r", map[string]any{"bound_service_account_names": "a", "bound_service_account_namespaces": "n"})
	_, err := h.login("r", "a.b.c")
	wantErr(t, err, 400, "is not configured: write auth/kubernetes/config first")
}

func TestLoginIssuerDown(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	tok := c.token(t, sa{ns: "eso", name: "external-secrets", aud: []string{"vault"}})
	c.Close()
	_, err := h.login("eso", tok)
	wantErr(t, err, 403, "permission denied")
}
