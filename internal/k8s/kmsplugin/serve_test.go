package kmsplugin

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/cofferhq/coffer/api"
)

// dialKMS connects to a plugin socket as the apiserver does.
func dialKMS(t *testing.T, socket string) kmsapi.KeyManagementServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe runs the plugin on a real socket against coffer's wire API
// over HTTP and talks to it with the KMS v2 gRPC client.
func TestServe(t *testing.T) {
	t.Parallel()
	f := newFakeCoffer(t)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, f.addToken(0, false))
	socket := filepath.Join(dir, "run", "kms.sock")
	metricsAddr := freeAddr(t)
	cfg := Config{Client: client, Auth: TokenFile{Path: tokenFile}, Key: f.key, Socket: socket,
		MetricsAddress: metricsAddr, Logger: (&logBuffer{}).logger()}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Lstat(socket); !os.IsNotExist(err) {
			t.Errorf("socket left behind after Run: %v", err)
		}
	}()

	kms := dialKMS(t, socket)
	var st *kmsapi.StatusResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err = kms.Status(ctx, &kmsapi.StatusRequest{})
		if err == nil && st.Healthz == "ok" || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || st.Healthz != "ok" || st.KeyId != "transit/kube:v1" || st.Version != "v2" {
		t.Fatalf("Status = %v, %v", st, err)
	}
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v, %v; want 0600", fi.Mode(), err)
	}

	dek := bytes.Repeat([]byte{7}, 32)
	enc, err := kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek, Uid: "u1"})
	if err != nil || enc.KeyId != "transit/kube:v1" {
		t.Fatalf("Encrypt = %v, %v", enc, err)
	}
	dec, err := kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations, Uid: "u2"})
	if err != nil || !bytes.Equal(dec.Plaintext, dek) {
		t.Fatalf("Decrypt = %v, %v", dec, err)
	}
	if _, err := kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: []byte("junk"), KeyId: enc.KeyId}); err == nil ||
		!strings.Contains(err.Error(), "InvalidArgument") {
		t.Errorf("Decrypt of junk over gRPC: %v", err)
	}

	code, body := httpGet(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{
		`coffer_kms_requests_total{method="Encrypt",outcome="OK"} 1`,
		`coffer_kms_requests_total{method="Decrypt",outcome="InvalidArgument"} 1`,
		`coffer_kms_dek_cache_hits_total 1`,
		`coffer_kms_dek_cache_entries 1`,
		`coffer_kms_healthy 1`,
		`coffer_kms_key_version 1`,
		`coffer_kms_request_duration_seconds_bucket{method="Status"`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if code, _ := httpGet(t, "http://"+metricsAddr+"/livez"); code != 200 {
		t.Errorf("/livez = %d", code)
	}
	if code, _ := httpGet(t, "http://"+metricsAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	f.set(func(f *fakeCoffer) { f.sealed = true })
	p.check(ctx, true)
	if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != 503 || !strings.Contains(body, "sealed") {
		t.Errorf("/readyz while sealed = %d %q", code, body)
	}

	// A second plugin on the same socket refuses to start.
	cfg.MetricsAddress = ""
	p2, _ := New(cfg)
	if err := p2.Run(ctx); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Errorf("second Run on a served socket: %v", err)
	}
}

func TestListenUnix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close() // a crashed plugin leaves its socket file behind
	ln, err := listenUnix(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()

	plain := filepath.Join(dir, "file")
	writeFile(t, plain, "x")
	if _, err := listenUnix(plain); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("listen on a regular file: %v", err)
	}
	if _, err := listenUnix(""); err == nil {
		t.Error("listen on an empty path succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary socket %s left behind", e.Name())
		}
	}
}
