// Package k8sauth tests the kubernetes and jwt auth methods of a real
// coffer process against a real kube-apiserver and etcd (internal/k8stest):
// tokens come from the TokenRequest API, reviews go to the apiserver's
// TokenReview API, and offline validation discovers the cluster issuer's
// keys through its OIDC discovery document.
package k8sauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cofferhq/coffer/api"
	"github.com/cofferhq/coffer/internal/k8stest"
	"github.com/cofferhq/coffer/internal/servertest"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, k8stest.Options{}, &cluster)) }

// audience is what coffer's roles bind and the test tokens carry.
const audience = "coffer"

// perNamespace gives each login its own KV subtree, named after the
// namespace in the login's metadata, and nothing else.
const perNamespace = `
path "secret/data/{{identity.metadata.service_account_namespace}}/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/{{identity.metadata.namespace}}/*" {
  capabilities = ["create", "read", "update"]
}
`

// fixture is a coffer dev server with a per-namespace policy, and the
// cluster objects the tests log in as.
type fixture struct {
	p    *servertest.Process
	root *api.Client
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	for _, ns := range []string{"team-a", "team-b", "other", "coffer"} {
		if err := cluster.CreateNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	for _, sa := range [][2]string{{"team-a", "app"}, {"team-b", "app"}, {"other", "app"}, {"team-a", "intruder"}, {"coffer", "reviewer"}} {
		if err := cluster.CreateServiceAccount(ctx, sa[0], sa[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.GrantAuthDelegator(ctx, "coffer", "reviewer"); err != nil {
		t.Fatal(err)
	}
	p := servertest.Start(t, servertest.Options{Dev: true})
	root, err := api.NewClient(api.Config{Address: p.Addr, Token: "root"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, root: root}
	f.write(t, "sys/policies/acl/per-namespace", map[string]any{"policy": perNamespace})
	return f
}

func (f *fixture) write(t *testing.T, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := f.root.Logical().Write(t.Context(), path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func (f *fixture) enable(t *testing.T, path, typ string) {
	t.Helper()
	if err := f.root.Sys().EnableAuth(t.Context(), path, api.MountInput{Type: typ}); err != nil {
		t.Fatalf("enable %s: %v", path, err)
	}
}

// saToken asks the TokenRequest API for a token of ns/name.
func saToken(t *testing.T, ns, name string, aud ...string) string {
	t.Helper()
	tok, err := cluster.ServiceAccountToken(t.Context(), ns, name, aud, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// login logs in at auth/<mount>/login and returns a client holding the
// new token, or the error.
func (f *fixture) login(t *testing.T, mount, role, jwt string) (*api.Client, *api.Secret, error) {
	t.Helper()
	anon, err := api.NewClient(api.Config{Address: f.p.Addr})
	if err != nil {
		t.Fatal(err)
	}
	s, err := anon.Logical().Write(t.Context(), "auth/"+mount+"/login", map[string]any{"role": role, "jwt": jwt})
	if err != nil {
		return nil, nil, err
	}
	if s.Auth == nil || s.Auth.ClientToken == "" {
		t.Fatalf("login to %s returned no token: %+v", mount, s)
	}
	c, err := api.NewClient(api.Config{Address: f.p.Addr, Token: s.Auth.ClientToken})
	if err != nil {
		t.Fatal(err)
	}
	return c, s, nil
}

func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%s: got %v, want HTTP %d", what, err, status)
	}
	if re.StatusCode != status {
		t.Fatalf("%s: got HTTP %d %v, want %d", what, re.StatusCode, re.Errors, status)
	}
}

// checkIsolation shows that a and b, logged in from namespaces team-a and
// team-b under the per-namespace policy, each reach only their own subtree.
func checkIsolation(t *testing.T, a, b *api.Client) {
	t.Helper()
	ctx := t.Context()
	for _, c := range []struct {
		cl       *api.Client
		own, not string
	}{{a, "team-a", "team-b"}, {b, "team-b", "team-a"}} {
		if _, err := c.cl.Logical().Write(ctx, "secret/data/"+c.own+"/db", map[string]any{"data": map[string]any{"password": "pw-" + c.own}}); err != nil {
			t.Fatalf("%s writes its own subtree: %v", c.own, err)
		}
		s, err := c.cl.Logical().Read(ctx, "secret/data/"+c.own+"/db", nil)
		if err != nil || s == nil {
			t.Fatalf("%s reads its own subtree: %v", c.own, err)
		}
	}
	for _, c := range []struct {
		cl       *api.Client
		own, not string
	}{{a, "team-a", "team-b"}, {b, "team-b", "team-a"}} {
		_, err := c.cl.Logical().Read(ctx, "secret/data/"+c.not+"/db", nil)
		wantStatus(t, c.own+" reads "+c.not, err, http.StatusForbidden)
		_, err = c.cl.Logical().Write(ctx, "secret/data/"+c.not+"/db", map[string]any{"data": map[string]any{"x": "y"}})
		wantStatus(t, c.own+" writes "+c.not, err, http.StatusForbidden)
		_, err = c.cl.Logical().Read(ctx, "secret/metadata/"+c.own+"/db", nil)
		wantStatus(t, c.own+" reads metadata", err, http.StatusForbidden)
		_, err = c.cl.Logical().Read(ctx, "sys/mounts", nil)
		wantStatus(t, c.own+" reads sys/mounts", err, http.StatusForbidden)
	}
}

func (f *fixture) kubernetesRole(t *testing.T, mount string) {
	t.Helper()
	f.write(t, "auth/"+mount+"/role/app", map[string]any{
		"bound_service_account_names":      "app",
		"bound_service_account_namespaces": "team-*",
		"audience":                         audience,
		"token_policies":                   "per-namespace",
		"token_ttl":                        "10m",
	})
}

// expiredToken is a token of team-a/app signed by the cluster's own key
// that expired an hour ago (the TokenRequest API cannot mint one).
func expiredToken(t *testing.T) string {
	t.Helper()
	sa, err := cluster.Client.CoreV1().ServiceAccounts("team-a").Get(t.Context(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := cluster.SignServiceAccountToken(map[string]any{
		"iss": cluster.Issuer, "sub": "system:serviceaccount:team-a:app", "aud": []string{audience},
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "team-a", "serviceaccount": map[string]any{"name": "app", "uid": string(sa.UID)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// foreignToken has the claims of a real team-a/app token but is signed by
// a key the cluster never saw, under the cluster's issuer name.
func foreignToken(t *testing.T) string {
	t.Helper()
	real := saToken(t, "team-a", "app", audience)
	parsed, err := josejwt.ParseSigned(real, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", parsed.Headers[0].KeyID))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refusals are the logins every validation mode must refuse with 403.
func refusals(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"wrong audience":          saToken(t, "team-a", "app", "someone-else"),
		"no coffer audience":      saToken(t, "team-a", "app"),
		"unbound namespace":       saToken(t, "other", "app", audience),
		"unbound service account": saToken(t, "team-a", "intruder", audience),
		"expired":                 expiredToken(t),
		"another issuer's key":    foreignToken(t),
	}
}

// TestTokenReviewLogin: config with a reviewer JWT, Vault's default mode.
func TestTokenReviewLogin(t *testing.T) {
	f := setup(t)
	f.enable(t, "kubernetes", "kubernetes")
	f.write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":      cluster.Host,
		"kubernetes_ca_cert":   string(cluster.CACert),
		"token_reviewer_jwt":   saToken(t, "coffer", "reviewer"),
		"disable_local_ca_jwt": true,
	})
	f.kubernetesRole(t, "kubernetes")

	a, s, err := f.login(t, "kubernetes", "app", saToken(t, "team-a", "app", audience))
	if err != nil {
		t.Fatalf("login team-a: %v", err)
	}
	md := s.Auth.Metadata
	if md["service_account_namespace"] != "team-a" || md["service_account_name"] != "app" || md["role"] != "app" || md["service_account_uid"] == "" {
		t.Errorf("metadata = %v", md)
	}
	if !contains(s.Auth.Policies, "per-namespace") || !contains(s.Auth.Policies, "default") {
		t.Errorf("policies = %v", s.Auth.Policies)
	}
	if s.Auth.LeaseDuration != 600 || !s.Auth.Renewable {
		t.Errorf("lease = %d renewable %v", s.Auth.LeaseDuration, s.Auth.Renewable)
	}
	b, _, err := f.login(t, "kubernetes", "app", saToken(t, "team-b", "app", audience))
	if err != nil {
		t.Fatalf("login team-b: %v", err)
	}
	checkIsolation(t, a, b)

	for name, jwt := range refusals(t) {
		_, _, err := f.login(t, "kubernetes", "app", jwt)
		wantStatus(t, name, err, http.StatusForbidden)
	}

	// A deleted service account's token: only TokenReview can tell.
	ctx := t.Context()
	if err := cluster.CreateServiceAccount(ctx, "team-a", "app-temp"); err != nil {
		t.Fatal(err)
	}
	f.write(t, "auth/kubernetes/role/temp", map[string]any{
		"bound_service_account_names": "app-temp", "bound_service_account_namespaces": "team-a",
		"audience": audience, "token_policies": "per-namespace",
	})
	tmp := saToken(t, "team-a", "app-temp", audience)
	if _, _, err := f.login(t, "kubernetes", "temp", tmp); err != nil {
		t.Fatalf("login before deletion: %v", err)
	}
	if err := cluster.Client.CoreV1().ServiceAccounts("team-a").Delete(ctx, "app-temp", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The apiserver's authenticator reads service accounts from an
	// informer cache, so the deletion reaches it shortly after.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, err = f.login(t, "kubernetes", "temp", tmp)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantStatus(t, "deleted service account", err, http.StatusForbidden)

	// No secret of the refused tokens or of the reviewer reaches the log.
	logs := f.p.Logs()
	if strings.Contains(logs, "eyJ") {
		t.Error("a JWT appears in the server log")
	}
}

// TestTokenReviewWithClientJWT: no reviewer JWT; the client's own token
// authorises the review, so only clients allowed to create TokenReviews
// can log in.
func TestTokenReviewWithClientJWT(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	if err := cluster.CreateServiceAccount(ctx, "team-b", "delegate"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.GrantAuthDelegator(ctx, "team-b", "delegate"); err != nil {
		t.Fatal(err)
	}
	f.enable(t, "k8s-self", "kubernetes")
	f.write(t, "auth/k8s-self/config", map[string]any{
		"kubernetes_host":      cluster.Host,
		"kubernetes_ca_cert":   string(cluster.CACert),
		"disable_local_ca_jwt": true,
	})
	f.write(t, "auth/k8s-self/role/any", map[string]any{
		"bound_service_account_names": "*", "bound_service_account_namespaces": "team-b",
		"audience": audience, "token_policies": "per-namespace",
	})
	// The apiserver must accept the client's token as a bearer, so it
	// carries the apiserver's own audience as well as coffer's.
	if _, _, err := f.login(t, "k8s-self", "any", saToken(t, "team-b", "delegate", audience, cluster.Issuer)); err != nil {
		t.Fatalf("login with a delegating client's token: %v", err)
	}
	_, _, err := f.login(t, "k8s-self", "any", saToken(t, "team-b", "app", audience, cluster.Issuer))
	wantStatus(t, "client without tokenreview rights", err, http.StatusForbidden)
}

// TestOfflineLogin: the signature is checked against the issuer's keys,
// found by OIDC discovery on the apiserver; coffer needs no cluster RBAC.
func TestOfflineLogin(t *testing.T) {
	f := setup(t)
	f.enable(t, "kubernetes", "kubernetes")
	f.write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":      cluster.Host,
		"kubernetes_ca_cert":   string(cluster.CACert),
		"validation":           "offline",
		"issuer":               cluster.Issuer,
		"disable_local_ca_jwt": true,
	})
	f.kubernetesRole(t, "kubernetes")
	a, _, err := f.login(t, "kubernetes", "app", saToken(t, "team-a", "app", audience))
	if err != nil {
		t.Fatalf("login team-a: %v", err)
	}
	b, _, err := f.login(t, "kubernetes", "app", saToken(t, "team-b", "app", audience))
	if err != nil {
		t.Fatalf("login team-b: %v", err)
	}
	checkIsolation(t, a, b)
	for name, jwt := range refusals(t) {
		_, _, err := f.login(t, "kubernetes", "app", jwt)
		wantStatus(t, name, err, http.StatusForbidden)
	}
}

// TestJWTMethodAgainstClusterIssuer: the jwt method trusts the cluster as
// an OIDC provider; claim_mappings put the namespace in the metadata, so
// the same templated policy isolates namespaces.
func TestJWTMethodAgainstClusterIssuer(t *testing.T) {
	f := setup(t)
	f.enable(t, "jwt", "jwt")
	f.write(t, "auth/jwt/config", map[string]any{
		"oidc_discovery_url":    cluster.Issuer,
		"oidc_discovery_ca_pem": string(cluster.CACert),
		"bound_issuer":          cluster.Issuer,
	})
	f.write(t, "auth/jwt/role/workload", map[string]any{
		"role_type":         "jwt",
		"user_claim":        "sub",
		"bound_audiences":   audience,
		"bound_claims":      map[string]any{"/kubernetes.io/namespace": "team-*"},
		"bound_claims_type": "glob",
		"claim_mappings":    map[string]any{"/kubernetes.io/namespace": "namespace"},
		"token_policies":    "per-namespace",
	})
	a, s, err := f.login(t, "jwt", "workload", saToken(t, "team-a", "app", audience))
	if err != nil {
		t.Fatalf("login team-a: %v", err)
	}
	if s.Auth.Metadata["namespace"] != "team-a" {
		t.Errorf("metadata = %v", s.Auth.Metadata)
	}
	b, _, err := f.login(t, "jwt", "workload", saToken(t, "team-b", "app", audience))
	if err != nil {
		t.Fatalf("login team-b: %v", err)
	}
	checkIsolation(t, a, b)
	for name, jwt := range map[string]string{
		"wrong audience":       saToken(t, "team-a", "app", "someone-else"),
		"unbound namespace":    saToken(t, "other", "app", audience),
		"expired":              expiredToken(t),
		"another issuer's key": foreignToken(t),
	} {
		_, _, err := f.login(t, "jwt", "workload", jwt)
		if err == nil {
			t.Errorf("%s: login succeeded", name)
			continue
		}
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode < 400 || re.StatusCode > 499 {
			t.Errorf("%s: got %v, want a 4xx", name, err)
		}
	}
}

// TestCLILogin: `coffer login -method=kubernetes role=app jwt=@FILE` with a
// token file, as a pod would.
func TestCLILogin(t *testing.T) {
	f := setup(t)
	f.enable(t, "kubernetes", "kubernetes")
	f.write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host": cluster.Host, "kubernetes_ca_cert": string(cluster.CACert),
		"token_reviewer_jwt": saToken(t, "coffer", "reviewer"), "disable_local_ca_jwt": true,
	})
	f.kubernetesRole(t, "kubernetes")
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(saToken(t, "team-a", "app", audience)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), servertest.Binary(t), args...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "COFFER_ADDR="+f.p.Addr, "VAULT_ADDR=", "VAULT_TOKEN=", "COFFER_TOKEN=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("login", "-method=kubernetes", "role=app", "jwt=@"+tokFile); err != nil {
		t.Fatalf("coffer login: %v\n%s", err, out)
	}
	out, err := run("kv", "put", "secret/team-a/cli", "k=v")
	if err != nil {
		t.Fatalf("kv put with the stored token: %v\n%s", err, out)
	}
	out, err = run("kv", "get", "secret/team-b/cli")
	if err == nil {
		t.Fatalf("kv get of another namespace succeeded:\n%s", out)
	}
	if !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "permission denied") {
		t.Errorf("kv get of another namespace: %s", out)
	}
}

// BenchmarkTokenReviewLogin measures a login whose every call goes to the
// apiserver's TokenReview API.
func BenchmarkTokenReviewLogin(b *testing.B) {
	benchLogin(b, map[string]any{"validation": "tokenreview"})
}

// BenchmarkOfflineLogin measures a login against the cached issuer keys,
// through the HTTP API of a real process.
func BenchmarkOfflineLogin(b *testing.B) {
	benchLogin(b, map[string]any{"validation": "offline", "issuer": cluster.Issuer})
}

func benchLogin(b *testing.B, cfg map[string]any) {
	ctx := context.Background()
	if err := cluster.CreateNamespace(ctx, "team-a"); err != nil {
		b.Fatal(err)
	}
	for _, sa := range [][2]string{{"team-a", "app"}, {"coffer", "reviewer"}} {
		_ = cluster.CreateNamespace(ctx, sa[0])
		if err := cluster.CreateServiceAccount(ctx, sa[0], sa[1]); err != nil {
			b.Fatal(err)
		}
	}
	if err := cluster.GrantAuthDelegator(ctx, "coffer", "reviewer"); err != nil {
		b.Fatal(err)
	}
	p := servertest.Start(b, servertest.Options{Dev: true})
	root, _ := api.NewClient(api.Config{Address: p.Addr, Token: "root"})
	if err := root.Sys().EnableAuth(ctx, "kubernetes", api.MountInput{Type: "kubernetes"}); err != nil {
		b.Fatal(err)
	}
	reviewer, err := cluster.ServiceAccountToken(ctx, "coffer", "reviewer", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	cfg["kubernetes_host"], cfg["kubernetes_ca_cert"], cfg["token_reviewer_jwt"], cfg["disable_local_ca_jwt"] =
		cluster.Host, string(cluster.CACert), reviewer, true
	if _, err := root.Logical().Write(ctx, "auth/kubernetes/config", cfg); err != nil {
		b.Fatal(err)
	}
	if _, err := root.Logical().Write(ctx, "auth/kubernetes/role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a", "audience": audience,
	}); err != nil {
		b.Fatal(err)
	}
	jwt, err := cluster.ServiceAccountToken(ctx, "team-a", "app", []string{audience}, 0)
	if err != nil {
		b.Fatal(err)
	}
	anon, _ := api.NewClient(api.Config{Address: p.Addr})
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := anon.Logical().Write(ctx, "auth/kubernetes/login", map[string]any{"role": "app", "jwt": jwt}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
