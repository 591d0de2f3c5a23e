package kubernetes

import (
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/auth/authtest"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
	"github.com/cofferhq/coffer/internal/core"
)

// t0 is the harness clock's start.
var t0 = authtest.T0

// harness is one mount of the method on a fresh in-memory store, driven
// through its routes as the core drives it.
type harness struct {
	*authtest.Mount
	t     testing.TB
	b     *Backend
	clock *authtest.Clock
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	m := authtest.NewMount(t, New, "auth/kubernetes/")
	b := m.Backend.(*Backend)
	h := &harness{Mount: m, t: t, b: b, clock: authtest.NewClock()}
	b.now = h.clock.Now
	dir := t.TempDir()
	b.localTokenPath, b.localCAPath = dir+"/token", dir+"/ca.crt" // absent
	return h
}

func (h *harness) do(op core.Operation, path string, body any) (*core.Response, error) {
	h.t.Helper()
	return h.Do(op, path, body)
}

func (h *harness) write(path string, body any) {
	h.t.Helper()
	h.Write(path, body)
}

func (h *harness) read(path string) map[string]any {
	h.t.Helper()
	return h.Read(path)
}

func (h *harness) login(role, jwt string) (*core.Login, error) {
	h.t.Helper()
	return h.Login(map[string]string{"role": role, "jwt": jwt})
}

func wantErr(t testing.TB, err error, status int, msg string) {
	t.Helper()
	authtest.WantErr(t, err, status, msg)
}

// cluster is a stand-in service-account issuer: an OIDC discovery and
// JWKS server whose key signs tokens shaped like the apiserver's.
type cluster struct {
	*jwtverifytest.Issuer
	signer *jwtverifytest.Signer
}

func newCluster(t testing.TB) *cluster {
	s := jwtverifytest.NewRSA(t, "sa-key-1")
	return &cluster{Issuer: jwtverifytest.NewIssuer(t, s), signer: s}
}

// sa describes a token to mint.
type sa struct {
	ns, name, uid string
	aud           []string
	iat           time.Time
	ttl           time.Duration
	pod, node     string
}

// claims returns projected-token claims for s, issued by iss.
func (s sa) claims(iss string) map[string]any {
	iat := s.iat
	if iat.IsZero() {
		iat = t0
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	uid := s.uid
	if uid == "" {
		uid = "uid-" + s.ns + "-" + s.name
	}
	k := map[string]any{
		"namespace":      s.ns,
		"serviceaccount": map[string]any{"name": s.name, "uid": uid},
	}
	if s.pod != "" {
		k["pod"] = map[string]any{"name": s.pod, "uid": "pod-uid-" + s.pod}
	}
	if s.node != "" {
		k["node"] = map[string]any{"name": s.node, "uid": "node-uid-" + s.node}
	}
	c := map[string]any{
		"iss": iss, "sub": "system:serviceaccount:" + s.ns + ":" + s.name,
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(ttl).Unix(),
		"jti": "jti-1", "kubernetes.io": k,
	}
	if s.aud != nil {
		c["aud"] = s.aud
	}
	return c
}

// token signs s's claims with the cluster's key.
func (c *cluster) token(t testing.TB, s sa) string {
	t.Helper()
	return c.signer.Sign(t, s.claims(c.URL))
}

// offlineConfig is a config validating offline against c.
func (c *cluster) offlineConfig() map[string]any {
	return map[string]any{
		"kubernetes_host":    c.URL,
		"kubernetes_ca_cert": c.CAPEM,
		"validation":         "offline",
		"issuer":             c.URL,
	}
}
