package compat

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	vault "github.com/hashicorp/vault/api"
	k8sauth "github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/cofferhq/coffer/internal/servertest"
)

func pubPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestHashiCorpKubernetesLogin logs in with the HashiCorp client's
// kubernetes auth helper (api/auth/kubernetes), reading the token from a
// file as in a pod, against an offline-validating kubernetes mount.
func TestHashiCorpKubernetesLogin(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	root := vaultClient(t, p.Addr, "root")
	ctx := t.Context()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const iss = "https://kubernetes.default.svc.cluster.local"
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		"auth/kubernetes/config": {"kubernetes_host": "https://127.0.0.1:1", "validation": "offline", "issuer": iss,
			"pem_keys": []string{pubPEM(t, &key.PublicKey)}, "disable_local_ca_jwt": true},
		"auth/kubernetes/role/app": {"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
			"audience": "coffer", "token_policies": "app", "token_ttl": "5m"},
		"sys/policies/acl/app": {"policy": `path "secret/data/team-a/*" { capabilities = ["read", "create", "update"] }`},
	} {
		if _, err := root.Logical().WriteWithContext(ctx, path, data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	now := time.Now()
	jwt := signJWT(t, jose.RS256, key, map[string]any{
		"iss": iss, "sub": "system:serviceaccount:team-a:app", "aud": []string{"coffer"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{"namespace": "team-a",
			"serviceaccount": map[string]any{"name": "app", "uid": "7d6c2f1e-0000-4000-8000-000000000001"},
			"pod":            map[string]any{"name": "app-0", "uid": "7d6c2f1e-0000-4000-8000-000000000002"}},
	})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}

	c := vaultClient(t, p.Addr, "")
	m, err := k8sauth.NewKubernetesAuth("app", k8sauth.WithServiceAccountTokenPath(file))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Auth().Login(ctx, m)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if c.Token() == "" || s.Auth.Metadata["pod_name"] != "app-0" || s.Auth.Metadata["service_account_namespace"] != "team-a" {
		t.Fatalf("login: token %q metadata %v", c.Token(), s.Auth.Metadata)
	}
	if _, err := c.KVv2("secret").Put(ctx, "team-a/db", map[string]any{"pw": "x"}); err != nil {
		t.Fatalf("kv put with the login token: %v", err)
	}
	if _, err := c.KVv2("secret").Get(ctx, "team-b/db"); statusOf(err) != 403 {
		t.Fatalf("kv get outside the policy: %v", err)
	}
	// The token renews and looks itself up like any Vault token.
	if _, err := c.Auth().Token().RenewSelfWithContext(ctx, 60); err != nil {
		t.Fatalf("renew-self: %v", err)
	}

	bad, err := k8sauth.NewKubernetesAuth("app", k8sauth.WithServiceAccountToken(signJWT(t, jose.RS256, key, map[string]any{
		"iss": iss, "sub": "system:serviceaccount:team-b:app", "aud": []string{"coffer"},
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{"namespace": "team-b", "serviceaccount": map[string]any{"name": "app", "uid": "u"}},
	})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vaultClient(t, p.Addr, "").Auth().Login(ctx, bad); statusOf(err) != 403 {
		t.Fatalf("login from an unbound namespace: %v", err)
	}
}

// TestHashiCorpJWTLogin logs in through the jwt method with the client's
// Logical API, as CI integrations do, using an ES256 token.
func TestHashiCorpJWTLogin(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	root := vaultClient(t, p.Addr, "root")
	ctx := t.Context()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, "jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	const iss = "https://token.actions.githubusercontent.com"
	for path, data := range map[string]map[string]any{
		"auth/jwt/config": {"jwt_validation_pubkeys": []string{pubPEM(t, &key.PublicKey)}, "bound_issuer": iss},
		"auth/jwt/role/ci": {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "https://github.com/cofferhq",
			"bound_claims": map[string]any{"repository": "cofferhq/*"}, "bound_claims_type": "glob",
			"claim_mappings": map[string]any{"repository": "repository", "repository_owner": "owner"}, "token_policies": "ci", "token_ttl": "2m"},
		"sys/policies/acl/ci": {"policy": `path "secret/data/ci/{{identity.metadata.owner}}/*" { capabilities = ["read"] }`},
	} {
		if _, err := root.Logical().WriteWithContext(ctx, path, data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	if _, err := root.KVv2("secret").Put(ctx, "ci/cofferhq/coffer", map[string]any{"deploy_key": "k"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(repo string) map[string]any {
		return map[string]any{"iss": iss, "sub": "repo:" + repo + ":ref:refs/heads/main", "aud": "https://github.com/cofferhq",
			"repository": repo, "repository_owner": strings.Split(repo, "/")[0], "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	}
	c := vaultClient(t, p.Addr, "")
	s, err := c.Logical().WriteWithContext(ctx, "auth/jwt/login", map[string]any{"role": "ci",
		"jwt": signJWT(t, jose.ES256, key, claims("cofferhq/coffer"))})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if s.Auth == nil || s.Auth.LeaseDuration != 120 || s.Auth.Metadata["repository"] != "cofferhq/coffer" {
		t.Fatalf("login auth: %+v", s.Auth)
	}
	c.SetToken(s.Auth.ClientToken)
	if got, err := c.KVv2("secret").Get(ctx, "ci/cofferhq/coffer"); err != nil || got.Data["deploy_key"] != "k" {
		t.Fatalf("read with the ci token: %+v %v", got, err)
	}
	_, err = vaultClient(t, p.Addr, "").Logical().WriteWithContext(ctx, "auth/jwt/login", map[string]any{"role": "ci",
		"jwt": signJWT(t, jose.ES256, key, claims("evil/coffer"))})
	if st := statusOf(err); st < 400 || st > 499 {
		t.Fatalf("login of an unbound repository: %v", err)
	}
}
