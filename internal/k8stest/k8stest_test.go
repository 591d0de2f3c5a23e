package k8stest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var cluster *Cluster

func TestMain(m *testing.M) { os.Exit(Main(m, Options{}, &cluster)) }

// anonymousGet fetches url from the cluster trusting only its CA, with no
// client credentials, and decodes the JSON body into v.
func anonymousGet(t *testing.T, url string, v any) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cluster.CACert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func mustNamespace(t *testing.T, ns string) {
	t.Helper()
	if err := cluster.CreateNamespace(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
}

func TestTokenReview(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const ns = "tokenreview"
	mustNamespace(t, ns)
	if err := cluster.CreateServiceAccount(ctx, ns, "coffer-agent"); err != nil {
		t.Fatal(err)
	}
	token, err := cluster.ServiceAccountToken(ctx, ns, "coffer-agent", []string{"coffer"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		audiences []string
		wantAuth  bool
	}{
		{"own audience", []string{"coffer"}, true},
		{"other audience", []string{"other"}, false},
		{"apiserver audience", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			review, err := cluster.Client.AuthenticationV1().TokenReviews().Create(t.Context(), &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: tt.audiences},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st := review.Status
			if st.Authenticated != tt.wantAuth {
				t.Fatalf("authenticated = %v (error %q), want %v", st.Authenticated, st.Error, tt.wantAuth)
			}
			if !tt.wantAuth {
				return
			}
			if want := "system:serviceaccount:" + ns + ":coffer-agent"; st.User.Username != want {
				t.Errorf("username = %q, want %q", st.User.Username, want)
			}
			if !slices.Equal(st.Audiences, []string{"coffer"}) {
				t.Errorf("audiences = %q, want [coffer]", st.Audiences)
			}
		})
	}
}

// TestGrantAuthDelegator checks that a service account may create
// TokenReviews only once it has been granted system:auth-delegator.
func TestGrantAuthDelegator(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const ns = "delegator"
	mustNamespace(t, ns)
	if err := cluster.CreateServiceAccount(ctx, ns, "coffer-server"); err != nil {
		t.Fatal(err)
	}
	serverToken, err := cluster.ServiceAccountToken(ctx, ns, "coffer-server", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cluster.AdminConfig)
	cfg.BearerToken = serverToken
	asServer, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review := func() error {
		_, err := asServer.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: serverToken},
		}, metav1.CreateOptions{})
		return err
	}

	if err := review(); !apierrors.IsForbidden(err) {
		t.Fatalf("TokenReview before the grant: err = %v, want Forbidden", err)
	}
	if err := cluster.GrantAuthDelegator(ctx, ns, "coffer-server"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.GrantAuthDelegator(ctx, ns, "coffer-server"); err != nil {
		t.Fatalf("second grant: %v", err)
	}
	// The RBAC authorizer reads bindings from an informer, so the grant
	// takes effect after a short delay.
	deadline := time.Now().Add(30 * time.Second)
	for err = review(); apierrors.IsForbidden(err) && time.Now().Before(deadline); err = review() {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TokenReview after the grant: %v", err)
	}
}

// TestIssuerDiscovery reads the OIDC discovery document and the JWKS
// anonymously and verifies a service-account token with them offline, as a
// verifier outside the cluster would.
func TestIssuerDiscovery(t *testing.T) {
	t.Parallel()
	var discovery struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	anonymousGet(t, cluster.Issuer+"/.well-known/openid-configuration", &discovery)
	if discovery.Issuer != cluster.Issuer {
		t.Errorf("issuer = %q, want %q", discovery.Issuer, cluster.Issuer)
	}
	if want := cluster.Issuer + "/openid/v1/jwks"; discovery.JWKSURI != want {
		t.Fatalf("jwks_uri = %q, want %q", discovery.JWKSURI, want)
	}
	var jwks struct {
		Keys []struct{ Kid, Kty, Alg, Use, N, E string }
	}
	anonymousGet(t, discovery.JWKSURI, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "RS256" {
		t.Fatalf("JWKS = %+v, want one RS256 key", jwks.Keys)
	}

	token, err := cluster.ServiceAccountToken(t.Context(), "default", "default", []string{"coffer"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	var header struct{ Alg, Kid string }
	var claims struct {
		Iss string   `json:"iss"`
		Aud []string `json:"aud"`
		Sub string   `json:"sub"`
		Exp int64    `json:"exp"`
	}
	decodeSegment(t, parts[0], &header)
	decodeSegment(t, parts[1], &claims)
	key := jwks.Keys[0]
	if header.Alg != "RS256" || header.Kid != key.Kid {
		t.Fatalf("token header = %+v, want RS256 and kid %q", header, key.Kid)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(b64(t, key.N)), E: int(new(big.Int).SetBytes(b64(t, key.E)).Int64())}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], b64(t, parts[2])); err != nil {
		t.Fatalf("token signature does not verify with the JWKS key: %v", err)
	}
	if claims.Iss != cluster.Issuer || !slices.Equal(claims.Aud, []string{"coffer"}) ||
		claims.Sub != "system:serviceaccount:default:default" || time.Unix(claims.Exp, 0).Before(time.Now()) {
		t.Errorf("claims = %+v", claims)
	}
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func decodeSegment(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal(b64(t, s), v); err != nil {
		t.Fatalf("JWT segment: %v", err)
	}
}

func TestSecret(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const ns = "secrets"
	mustNamespace(t, ns)
	secrets := cluster.Client.CoreV1().Secrets(ns)
	want := map[string][]byte{"password": []byte("hunter2")}
	if _, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "demo"},
		Data:       want,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := secrets.Get(ctx, "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data["password"], want["password"]) {
		t.Errorf("data = %q, want %q", got.Data, want)
	}

	// Without a KMS provider the value is stored as plain protobuf.
	raw, err := cluster.EtcdGet(ctx, "/registry/secrets/"+ns+"/demo")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("k8s\x00")) || !bytes.Contains(raw, []byte("hunter2")) {
		t.Errorf("etcd value = %q, want a plaintext protobuf", raw)
	}
	if _, err := cluster.EtcdGet(ctx, "/registry/secrets/"+ns+"/absent"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("EtcdGet of a missing key: err = %v, want ErrKeyNotFound", err)
	}
}

func TestBootstrapObjects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if _, err := cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Errorf("serviceaccount %s/default: %v", ns, err)
		}
		cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, rootCAConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Errorf("configmap %s/%s: %v", ns, rootCAConfigMap, err)
		} else if cm.Data["ca.crt"] != string(cluster.CACert) {
			t.Errorf("configmap %s/%s does not hold the CA", ns, rootCAConfigMap)
		}
	}
}

// TestAdminToken checks the static bearer token and the version stamp.
func TestAdminToken(t *testing.T) {
	t.Parallel()
	cfg := rest.AnonymousClientConfig(cluster.AdminConfig)
	cfg.BearerToken = cluster.AdminToken
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if want := "v" + KubernetesVersion; v.GitVersion != want {
		t.Errorf("server version = %q, want %q", v.GitVersion, want)
	}
	if _, err := client.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("list namespaces with the admin token: %v", err)
	}
}

// TestRestartAPIServer runs before the parallel tests (it does not call
// t.Parallel), so the restart disturbs none of them.
func TestRestartAPIServer(t *testing.T) {
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives-restart"}, Data: map[string]string{"k": "v"}}
	if _, err := cluster.Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := cluster.apiserver.pid()
	start := time.Now()
	if err := cluster.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver restart: %v", time.Since(start).Round(time.Millisecond))
	if cluster.apiserver.pid() == before {
		t.Error("apiserver pid unchanged after restart")
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("configmap after restart: %v", err)
	}
}

// TestStartStop starts a second control plane and checks that Stop leaves
// no process and no directory behind.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second control plane")
	}
	ctx, cancel := context.WithTimeout(t.Context(), DefaultReadyTimeout+time.Minute)
	defer cancel()
	start := time.Now()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second control plane ready in %v", time.Since(start).Round(time.Millisecond))
	logRSS(t, c)
	pids := []int{c.etcd.pid(), c.apiserver.pid()}
	c.Stop()
	c.Stop()
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + itoa(pid)); err == nil {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s after Stop: %v, want it removed", c.Dir, err)
	}
}

func TestStartWithoutBinaries(t *testing.T) {
	t.Setenv("K8S_BIN", t.TempDir())
	_, err := Start(t.Context(), Options{})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start: err = %v, want ErrNoBinaries", err)
	}
	if !strings.Contains(err.Error(), "make k8s-bins") {
		t.Errorf("error %q does not say how to build the binaries", err)
	}
}

func TestResources(t *testing.T) {
	t.Parallel()
	logRSS(t, cluster)
}

// logRSS logs the resident memory of c's processes (a report, not a check).
func logRSS(t *testing.T, c *Cluster) {
	for _, p := range []*process{c.etcd, c.apiserver} {
		b, err := os.ReadFile("/proc/" + itoa(p.pid()) + "/status")
		if err != nil {
			t.Logf("%s: %v", p.name, err)
			continue
		}
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "VmRSS:") {
				t.Logf("%s (pid %d) %s", p.name, p.pid(), strings.Join(strings.Fields(line), " "))
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
