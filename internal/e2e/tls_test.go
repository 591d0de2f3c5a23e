package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/api"
	"github.com/cofferhq/coffer/internal/servertest"
)

// writeCert writes a self-signed serving certificate for 127.0.0.1.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coffer-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

// TestTLSListenerAndGracefulStop serves over TLS by default and exits
// cleanly on SIGTERM.
func TestTLSListenerAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	cfg := `storage:
  bolt:
    path: {{DIR}}/coffer.db
listener:
  address: {{ADDR}}
  tls:
    cert_file: ` + cert + `
    key_file: ` + key + `
log:
  format: json
`
	p := servertest.Start(t, servertest.Options{Dir: dir, Config: cfg})
	addr := strings.Replace(p.Addr, "http://", "https://", 1)
	c, err := api.NewClient(api.Config{Address: addr, CACert: cert})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Sys().SealStatus(t.Context())
	if err != nil || st.Initialized {
		t.Fatalf("seal-status over TLS: %+v %v", st, err)
	}
	// plain HTTP to a TLS listener does not get an answer
	if status, _, err := mustClient(t, p.Addr).Raw(t.Context(), "GET", "sys/health", nil, nil, nil); err == nil && status == 200 {
		t.Fatal("plain HTTP answered on a TLS listener")
	}
	// an untrusted client refuses the certificate
	bad, _ := api.NewClient(api.Config{Address: addr})
	if _, err := bad.Sys().SealStatus(t.Context()); err == nil {
		t.Fatal("client without the CA accepted the certificate")
	}
	p.Stop()
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), "coffer server stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.Logs())
	}
}

func TestTLSRequiredUnlessDisabled(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/c.yaml"
	writeFile(t, cfg, "storage:\n  bolt:\n    path: "+dir+"/x.db\nlistener:\n  address: 127.0.0.1:0\n")
	r := runCLI(t, "", "", "", "server", "-config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "cert_file and key_file are required") {
		t.Fatalf("no TLS config: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(dir + "/x.db"); err == nil {
		t.Fatal("a rejected config still created the database")
	}
}

func mustClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
