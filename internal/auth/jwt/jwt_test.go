package jwt

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cofferhq/coffer/internal/auth/authtest"
	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
	"github.com/cofferhq/coffer/internal/core"
)

var t0 = authtest.T0

type harness struct {
	*authtest.Mount
	b     *Backend
	clock *authtest.Clock
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	m := authtest.NewMount(t, New, "auth/jwt/")
	h := &harness{Mount: m, b: m.Backend.(*Backend), clock: authtest.NewClock()}
	h.b.now = h.clock.Now
	return h
}

// ciClaims are the claims of a CI job token (GitHub Actions' shape).
func ciClaims(iss string, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": iss, "aud": "https://coffer.example", "sub": "repo:acme/web:ref:refs/heads/main",
		"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(),
		"repository": "acme/web", "repository_owner": "acme", "ref": "refs/heads/main",
		"actor": "alice", "run_id": 12345, "groups": []string{"devs", "admins"},
		"environment": map[string]any{"name": "prod"},
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// ciHarness is a mount trusting a stand-in issuer through OIDC discovery,
// with role "ci" for acme's repositories.
func ciHarness(t *testing.T) (*harness, *jwtverifytest.Issuer, *jwtverifytest.Signer) {
	t.Helper()
	h := newHarness(t)
	s := jwtverifytest.NewRSA(t, "ci-1")
	iss := jwtverifytest.NewIssuer(t, s)
	h.Write("config", map[string]any{"oidc_discovery_url": iss.URL, "oidc_discovery_ca_pem": iss.CAPEM, "bound_issuer": iss.URL})
	h.Write("role/ci", map[string]any{
		"role_type":         "jwt",
		"user_claim":        "repository",
		"bound_audiences":   "https://coffer.example",
		"bound_claims_type": "glob",
		"bound_claims":      map[string]any{"repository": "acme/*", "ref": []string{"refs/heads/main", "refs/tags/v*"}},
		"claim_mappings":    map[string]string{"repository_owner": "owner", "/environment/name": "environment", "run_id": "run"},
		"groups_claim":      "groups",
		"token_policies":    "ci",
		"token_ttl":         "10m",
	})
	return h, iss, s
}

func TestLogin(t *testing.T) {
	t.Parallel()
	h, iss, s := ciHarness(t)
	l, err := h.Login(map[string]string{"role": "ci", "jwt": s.Sign(t, ciClaims(iss.URL, nil))})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	want := &core.Login{
		Policies:    []string{"ci"},
		Metadata:    map[string]string{"role": "ci", "owner": "acme", "environment": "prod", "run": "12345"},
		DisplayName: "jwt-acme/web",
		TTL:         10 * time.Minute,
		EntityID:    nameUUID("auth_jwt_1234", "acme/web"),
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("login:\n got %+v\nwant %+v", l, want)
	}
	// A tag build matches the glob in the list of bound refs.
	if _, err := h.Login(map[string]string{"role": "ci", "jwt": s.Sign(t, ciClaims(iss.URL, map[string]any{"ref": "refs/tags/v1.2.0"}))}); err != nil {
		t.Fatalf("tag build: %v", err)
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	h, iss, s := ciHarness(t)
	h.Write("role/exact", map[string]any{"user_claim": "sub", "bound_subject": "repo:acme/web:ref:refs/heads/main",
		"bound_audiences": "https://coffer.example", "bound_claims": map[string]any{"repository": "acme/*"}})
	h.Write("role/noaud", map[string]any{"user_claim": "sub", "bound_claims": map[string]any{"repository_owner": "acme"}})
	h.Write("role/nogroups", map[string]any{"user_claim": "sub", "bound_audiences": "https://coffer.example", "groups_claim": "teams"})
	h.Write("role/byemail", map[string]any{"user_claim": "email", "bound_audiences": "https://coffer.example"})
	h.Write("role/admin", map[string]any{"user_claim": "sub", "bound_audiences": "https://coffer.example",
		"bound_claims": map[string]any{"is_admin": true}})
	sign := func(extra map[string]any) string { return s.Sign(t, ciClaims(iss.URL, extra)) }
	other := jwtverifytest.NewRSA(t, "ci-1")
	stray := jwtverifytest.NewEC(t, "unknown")
	pub := []byte(s.PEM(t))
	cases := []struct {
		name   string
		role   string
		jwt    string
		status int
		msg    string
	}{
		{"unknown role", "nope", sign(nil), 400, `role "nope" could not be found`},
		{"missing token", "ci", "", 400, "missing token"},
		{"wrong audience", "ci", sign(map[string]any{"aud": "https://other"}), 403, "error validating token: invalid audience (aud) claim"},
		{"aud but no bound audiences", "noaud", sign(nil), 403, "audience claim found in JWT but no audiences bound to the role"},
		{"expired", "ci", sign(map[string]any{"exp": t0.Add(-4 * time.Minute).Unix(), "iat": t0.Add(-10 * time.Minute).Unix(), "nbf": nil}), 403, "token is expired"},
		{"nbf in the future", "ci", sign(map[string]any{"nbf": t0.Add(5 * time.Minute).Unix(), "iat": nil}), 403, "token not yet valid"},
		{"iat in the future", "ci", sign(map[string]any{"iat": t0.Add(2 * time.Minute).Unix(), "nbf": nil}), 403, "token issued in the future"},
		{"no time claims", "ci", sign(map[string]any{"iat": nil, "nbf": nil, "exp": nil}), 403, "no issued at (iat), not before (nbf), or expiration time (exp)"},
		{"another issuer", "ci", sign(map[string]any{"iss": "https://evil.example"}), 403, "invalid issuer (iss) claim"},
		{"bound subject", "exact", sign(map[string]any{"sub": "repo:acme/web:pull_request"}), 403, "sub claim does not match bound subject"},
		{"bound claim glob", "ci", sign(map[string]any{"repository": "evil/web"}), 403, `error validating claims: claim "repository" does not match`},
		{"bound claim list", "ci", sign(map[string]any{"ref": "refs/heads/feature"}), 403, `claim "ref" does not match`},
		{"bound claim missing", "ci", sign(map[string]any{"ref": nil}), 403, `claim "ref" is missing`},
		{"bound claim object", "ci", sign(map[string]any{"ref": map[string]any{"x": 1}}), 403, `claim "ref" is not a string`},
		{"bound boolean, string given", "admin", sign(map[string]any{"is_admin": "true"}), 403, `claim "is_admin" does not match`},
		{"user claim missing", "ci", sign(map[string]any{"repository": nil}), 403, `claim "repository" is missing`},
		{"user claim absent", "byemail", sign(nil), 403, `claim "email" not found in token`},
		{"groups claim missing", "nogroups", sign(nil), 403, `"teams" claim not found in token`},
		{"claim mapping not a string", "ci", sign(map[string]any{"repository_owner": []string{"a"}}), 403, "error converting claim 'repository_owner' to string"},
		{"signed by another key", "ci", other.Sign(t, ciClaims(iss.URL, nil)), 403, "error validating token: signature verification failed"},
		{"unknown kid", "ci", stray.Sign(t, ciClaims(iss.URL, nil)), 403, "error validating token: no key for the token"},
		{"alg none", "ci", jwtverifytest.Unsigned(t, ciClaims(iss.URL, nil)), 403, "signing algorithm not accepted"},
		{"HS256 with the public key", "ci", jwtverifytest.HMAC(t, "ci-1", pub, ciClaims(iss.URL, nil)), 403, "signing algorithm not accepted"},
		{"malformed", "ci", "x.y", 400, "invalid jwt: malformed token"},
		{"over 64 KiB", "ci", strings.Repeat("e", jwtverify.MaxTokenSize+1), 400, "invalid jwt: 65537 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Login(map[string]string{"role": tc.role, "jwt": tc.jwt})
			authtest.WantErr(t, err, tc.status, tc.msg)
		})
	}
	if _, err := h.Login(map[string]string{"role": "admin", "jwt": sign(map[string]any{"is_admin": true})}); err != nil {
		t.Fatalf("bound boolean: %v", err)
	}
	_, err := h.Login(map[string]string{"jwt": sign(nil)})
	authtest.WantErr(t, err, 400, "missing role")
}

func TestLoginLeeways(t *testing.T) {
	t.Parallel()
	h, iss, s := ciHarness(t)
	// Past exp by less than clock_skew_leeway (60s) + expiration_leeway
	// (150s), then by more.
	tok := s.Sign(t, ciClaims(iss.URL, nil))
	h.clock.Advance(5*time.Minute + 200*time.Second)
	if _, err := h.Login(map[string]string{"role": "ci", "jwt": tok}); err != nil {
		t.Fatalf("200s past exp with 210s of leeway: %v", err)
	}
	h.clock.Advance(20 * time.Second)
	_, err := h.Login(map[string]string{"role": "ci", "jwt": tok})
	authtest.WantErr(t, err, 403, "token is expired")

	// Leeways off: one second past exp is too late.
	h.Write("role/ci", map[string]any{"clock_skew_leeway": -1, "expiration_leeway": "-1", "not_before_leeway": -1})
	if got := h.Read("role/ci"); got["clock_skew_leeway"] != float64(-1) || got["expiration_leeway"] != float64(-1) {
		t.Fatalf("leeways read back as %v, %v", got["clock_skew_leeway"], got["expiration_leeway"])
	}
	h.clock = authtest.NewClock()
	h.b.now = h.clock.Now
	h.clock.Advance(5*time.Minute + time.Second)
	_, err = h.Login(map[string]string{"role": "ci", "jwt": tok})
	authtest.WantErr(t, err, 403, "token is expired")
	// Clock skew beyond the leeway: a token from a clock 2 minutes ahead.
	h.Write("role/ci", map[string]any{"clock_skew_leeway": 60, "not_before_leeway": -1})
	h.clock = authtest.NewClock()
	h.b.now = h.clock.Now
	ahead := s.Sign(t, ciClaims(iss.URL, map[string]any{"iat": t0.Add(2 * time.Minute).Unix(), "nbf": t0.Add(2 * time.Minute).Unix()}))
	_, err = h.Login(map[string]string{"role": "ci", "jwt": ahead})
	authtest.WantErr(t, err, 403, "token not yet valid")
}

func TestUnknownKidRefresh(t *testing.T) {
	t.Parallel()
	h, iss, s := ciHarness(t)
	hits := iss.JWKSHits() // the config write's check fetched once
	rotated := jwtverifytest.NewEd25519(t, "ci-2")
	h.clock.Advance(jwtverify.DefaultMinRefresh)
	for range 3 {
		_, err := h.Login(map[string]string{"role": "ci", "jwt": rotated.Sign(t, ciClaims(iss.URL, nil))})
		authtest.WantErr(t, err, 403, "no key for the token")
	}
	if got := iss.JWKSHits() - hits; got != 1 {
		t.Fatalf("%d refreshes for an unknown kid; want exactly 1", got)
	}
	iss.SetKeys(s, rotated)
	h.clock.Advance(jwtverify.DefaultMinRefresh)
	if _, err := h.Login(map[string]string{"role": "ci", "jwt": rotated.Sign(t, ciClaims(iss.URL, nil))}); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
}

func TestKeySources(t *testing.T) {
	t.Parallel()
	ec := jwtverifytest.NewEC(t, "ec-1")
	ed := jwtverifytest.NewEd25519(t, "")
	ps := &jwtverifytest.Signer{Key: jwtverifytest.NewRSA(t, "").Key, Alg: jose.PS256}
	iss := jwtverifytest.NewIssuer(t, ec)
	for _, tc := range []struct {
		name   string
		config map[string]any
		signer *jwtverifytest.Signer
	}{
		{"jwks_url ES256", map[string]any{"jwks_url": iss.URL + "/jwks", "jwks_ca_pem": iss.CAPEM}, ec},
		{"pubkeys EdDSA", map[string]any{"jwt_validation_pubkeys": []string{ed.PEM(t)}}, ed},
		{"pubkeys PS256", map[string]any{"jwt_validation_pubkeys": ps.PEM(t)}, ps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.Write("config", tc.config)
			h.Write("role/r", map[string]any{"user_claim": "sub", "bound_audiences": "https://coffer.example"})
			if _, err := h.Login(map[string]string{"role": "r", "jwt": tc.signer.Sign(t, ciClaims("https://ci.example", nil))}); err != nil {
				t.Fatalf("login: %v", err)
			}
		})
	}
	t.Run("jwt_supported_algs restricts", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.Write("config", map[string]any{"jwt_validation_pubkeys": []string{ed.PEM(t), ps.PEM(t)}, "jwt_supported_algs": "EdDSA", "default_role": "r"})
		h.Write("role/r", map[string]any{"user_claim": "sub", "bound_audiences": "https://coffer.example"})
		if _, err := h.Login(map[string]string{"jwt": ed.Sign(t, ciClaims("x", nil))}); err != nil {
			t.Fatalf("EdDSA via default_role: %v", err)
		}
		_, err := h.Login(map[string]string{"jwt": ps.Sign(t, ciClaims("x", nil))})
		authtest.WantErr(t, err, 403, `signing algorithm not accepted: "PS256" (accepted: EdDSA)`)
	})
}
