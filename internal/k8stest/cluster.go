package k8stest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Versions of the binaries this package is written for; hack/build-k8s.sh
// builds exactly these.
const (
	KubernetesVersion = "1.34.4"
	EtcdVersion       = "3.6.4"
)

// Errors.
var (
	// ErrNoBinaries means kube-apiserver, etcd or etcdctl was not found;
	// `make k8s-bins` builds them.
	ErrNoBinaries = errors.New("k8stest: control-plane binaries not found")
	// ErrKeyNotFound is returned by EtcdGet for a key that does not exist.
	ErrKeyNotFound = errors.New("k8stest: etcd key not found")
)

// DefaultReadyTimeout bounds how long Start and RestartAPIServer wait for
// /readyz; generous because the shared CI machines see heavy CPU steal.
const DefaultReadyTimeout = 180 * time.Second

// KMSProviderName is the name of the KMS v2 provider configured when
// Options.KMSSocket is set. It is part of every stored prefix
// ("k8s:enc:kms:v2:coffer-test:").
const KMSProviderName = "coffer-test"

// Options configures a control plane. The zero value is a plain cluster.
type Options struct {
	// KMSSocket, when set, is the path of a KMS v2 plugin's unix socket.
	// Secrets are then encrypted by a kms provider named KMSProviderName,
	// with identity as the fallback for reading plaintext data. The
	// plugin must be serving before Start, or /readyz never passes.
	KMSSocket string
	// ExtraAPIServerArgs are appended to kube-apiserver's flags; a flag
	// given here overrides the harness's value.
	ExtraAPIServerArgs []string
	// ReadyTimeout bounds each wait for readiness; DefaultReadyTimeout
	// when zero.
	ReadyTimeout time.Duration
}

// Cluster is a running etcd and kube-apiserver. Its fields are read-only.
type Cluster struct {
	Host         string       // https://127.0.0.1:<port>
	CACert       []byte       // PEM of the CA that signed the serving and admin certificates
	AdminConfig  *rest.Config // system:masters client certificate
	AdminToken   string       // static bearer token of a system:masters user
	Client       kubernetes.Interface
	Issuer       string // service-account issuer, equal to Host
	EtcdEndpoint string // http://127.0.0.1:<port>
	Dir          string // PKI, configs, etcd data and the logs etcd.log and kube-apiserver.log
	Kubeconfig   string // admin kubeconfig in Dir, for kubectl while debugging

	bins         binaries
	pki          *pki
	apiArgs      []string
	readyTimeout time.Duration
	httpClient   *http.Client // admin client certificate, for /readyz

	// mu guards the process fields, which RestartAPIServer replaces.
	mu        sync.Mutex
	etcd      *process
	apiserver *process

	stopOnce sync.Once
}

type binaries struct{ apiserver, etcd, etcdctl string }

// BinDir returns the directory searched for the binaries: $K8S_BIN, or the
// directory `make k8s-bins` builds into.
func BinDir() string {
	if d := os.Getenv("K8S_BIN"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "coffer", "k8s", "v"+KubernetesVersion, "bin")
}

func findBinaries() (binaries, error) {
	dir := BinDir()
	b := binaries{
		apiserver: filepath.Join(dir, "kube-apiserver"),
		etcd:      filepath.Join(dir, "etcd"),
		etcdctl:   filepath.Join(dir, "etcdctl"),
	}
	var missing []string
	for _, p := range []string{b.apiserver, b.etcd, b.etcdctl} {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Base(p))
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%w: %s missing in %s (K8S_BIN); run `make k8s-bins` to build them",
			ErrNoBinaries, strings.Join(missing, ", "), dir)
	}
	return b, nil
}

// Start starts etcd and kube-apiserver on free loopback ports, waits until
// the apiserver is ready and creates the bootstrap objects. ctx bounds the
// start only; the processes run until Stop. A missing binary is reported
// as ErrNoBinaries. On failure nothing is left running and the error
// carries the apiserver's verbose readiness report and the last log lines.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "k8stest-")
	if err != nil {
		return nil, fmt.Errorf("k8stest: %w", err)
	}
	c = &Cluster{Dir: dir, bins: bins, readyTimeout: opts.ReadyTimeout}
	if c.readyTimeout <= 0 {
		c.readyTimeout = DefaultReadyTimeout
	}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()

	if c.pki, err = newPKI(dir); err != nil {
		return c, fmt.Errorf("k8stest: pki: %w", err)
	}
	c.CACert = c.pki.caCert
	token, err := randomHex(16)
	if err != nil {
		return c, err
	}
	c.AdminToken = token
	tokens := filepath.Join(dir, "tokens.csv") // token,user,uid,"group,..."
	if err := os.WriteFile(tokens, []byte(token+`,coffer-static-admin,1001,"system:masters"`+"\n"), 0o600); err != nil {
		return c, fmt.Errorf("k8stest: %w", err)
	}
	var encryption string
	if opts.KMSSocket != "" {
		encryption = filepath.Join(dir, "encryption.yaml")
		if err := os.WriteFile(encryption, encryptionConfig(opts.KMSSocket), 0o600); err != nil {
			return c, fmt.Errorf("k8stest: %w", err)
		}
	}

	if err := c.startEtcd(ctx); err != nil {
		return c, err
	}
	if err := c.startAPIServer(ctx, tokens, encryption, opts.ExtraAPIServerArgs); err != nil {
		return c, err
	}
	if err := c.bootstrap(ctx); err != nil {
		return c, fmt.Errorf("k8stest: bootstrap: %w", err)
	}
	return c, nil
}

// portAttempts is how often a start is retried when its ports were taken
// between picking and binding them.
const portAttempts = 3

func (c *Cluster) startEtcd(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return fmt.Errorf("k8stest: %w", err)
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		p, err := startProcess("etcd", c.bins.etcd, []string{
			"--name=coffer-test",
			"--data-dir=" + filepath.Join(c.Dir, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=coffer-test=" + peer,
			"--listen-metrics-urls=",
			"--unsafe-no-fsync",
		}, filepath.Join(c.Dir, "etcd.log"))
		if err != nil {
			return fmt.Errorf("k8stest: %w", err)
		}
		c.setProcs(p, nil)
		c.EtcdEndpoint = client
		err = c.waitReady(ctx, p, func(ctx context.Context) error {
			return etcdHealthy(ctx, client)
		})
		if err == nil {
			return nil
		}
		p.stop()
		if !p.addrInUse() || attempt == portAttempts {
			return fmt.Errorf("k8stest: etcd not ready: %w\n--- last lines of %s ---\n%s",
				err, p.logPath, tail(p.logPath, 40))
		}
	}
}

func etcdHealthy(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct{ Health string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("/health: %w", err)
	}
	if h.Health != "true" {
		return fmt.Errorf("/health: %q", h.Health)
	}
	return nil
}

func (c *Cluster) startAPIServer(ctx context.Context, tokens, encryption string, extra []string) error {
	var err error
	for attempt := 1; ; attempt++ {
		ports, perr := freePorts(1)
		if perr != nil {
			return fmt.Errorf("k8stest: %w", perr)
		}
		c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		c.Issuer = c.Host
		c.apiArgs = []string{
			"--etcd-servers=" + c.EtcdEndpoint,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--endpoint-reconciler-type=none",
			"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
			"--tls-cert-file=" + c.pki.servingCertFile,
			"--tls-private-key-file=" + c.pki.servingKeyFile,
			"--client-ca-file=" + c.pki.caFile,
			"--token-auth-file=" + tokens,
			"--service-account-issuer=" + c.Issuer,
			"--service-account-key-file=" + c.pki.saPubFile,
			"--service-account-signing-key-file=" + c.pki.saKeyFile,
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
		}
		if encryption != "" {
			c.apiArgs = append(c.apiArgs, "--encryption-provider-config="+encryption)
		}
		c.apiArgs = append(c.apiArgs, extra...)
		if err = c.setupClients(); err != nil {
			return err
		}
		if err = c.runAPIServer(ctx); err == nil {
			return nil
		}
		c.mu.Lock()
		p := c.apiserver
		c.mu.Unlock()
		if p == nil || !p.addrInUse() || attempt == portAttempts {
			return err
		}
	}
}

// runAPIServer starts kube-apiserver with c.apiArgs and waits for /readyz.
// On failure the process is stopped and the error carries the dump.
func (c *Cluster) runAPIServer(ctx context.Context) error {
	p, err := startProcess("kube-apiserver", c.bins.apiserver, c.apiArgs, filepath.Join(c.Dir, "kube-apiserver.log"))
	if err != nil {
		return fmt.Errorf("k8stest: %w", err)
	}
	c.mu.Lock()
	c.apiserver = p
	c.mu.Unlock()
	var last error
	err = c.waitReady(ctx, p, func(ctx context.Context) error {
		last = c.readyz(ctx, "/readyz")
		return last
	})
	if err == nil {
		return nil
	}
	dump := c.dump(ctx, p)
	p.stop()
	return fmt.Errorf("k8stest: kube-apiserver not ready: %w\n%s", err, dump)
}

// dump describes an apiserver that did not become ready.
func (c *Cluster) dump(ctx context.Context, p *process) string {
	var b strings.Builder
	// A fresh context: the start's may be what ran out.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	verbose := c.readyz(dctx, "/readyz?verbose")
	fmt.Fprintf(&b, "--- %s/readyz?verbose ---\n%v\n", c.Host, verbose)
	fmt.Fprintf(&b, "--- last lines of %s ---\n%s\n", p.logPath, tail(p.logPath, 60))
	etcdLog := filepath.Join(c.Dir, "etcd.log")
	fmt.Fprintf(&b, "--- last lines of %s ---\n%s", etcdLog, tail(etcdLog, 15))
	return b.String()
}

// readyz GETs path as the admin (so failed checks carry their reasons) and
// returns nil for 200, else an error holding the body.
func (c *Cluster) readyz(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Host+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s\n%s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// waitReady polls check every 200 ms until it succeeds, p exits, ctx ends
// or c.readyTimeout passes.
func (c *Cluster) waitReady(ctx context.Context, p *process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.readyTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s %w", p.name, err)
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %v (last check: %v)", ctx.Err(), c.readyTimeout, last)
		case <-tick.C:
		}
	}
}

func (c *Cluster) setupClients() error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CACert) {
		return errors.New("k8stest: bad CA certificate")
	}
	cert, err := tls.X509KeyPair(c.pki.adminCert, c.pki.adminKey)
	if err != nil {
		return fmt.Errorf("k8stest: admin key pair: %w", err)
	}
	c.httpClient = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	c.AdminConfig = &rest.Config{
		Host: c.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.CACert,
			CertData: c.pki.adminCert,
			KeyData:  c.pki.adminKey,
		},
		QPS:   100,
		Burst: 200,
	}
	if c.Client, err = kubernetes.NewForConfig(c.AdminConfig); err != nil {
		return fmt.Errorf("k8stest: client: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return os.WriteFile(c.Kubeconfig, kubeconfig(c.Host, c.pki), 0o600)
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags, port and etcd data, then waits for /readyz. Clients built from
// AdminConfig keep working. KMS tests use it to make the server fetch its
// keys again.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	if p != nil {
		p.stop()
	}
	return c.runAPIServer(ctx)
}

// Stop stops the apiserver, then etcd, and removes Dir unless the
// environment sets K8STEST_KEEP=1. It is safe to call more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		etcd, apiserver := c.etcd, c.apiserver
		c.mu.Unlock()
		if apiserver != nil {
			apiserver.stop()
		}
		if etcd != nil {
			etcd.stop()
		}
		if c.httpClient != nil {
			c.httpClient.CloseIdleConnections()
		}
		if os.Getenv("K8STEST_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "k8stest: K8STEST_KEEP=1: keeping %s\n", c.Dir)
			return
		}
		_ = os.RemoveAll(c.Dir)
	})
}

func (c *Cluster) setProcs(etcd, apiserver *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcd, c.apiserver = etcd, apiserver
}

// EtcdGet returns the raw value stored in etcd under key, such as
// "/registry/secrets/<namespace>/<name>", or ErrKeyNotFound.
func (c *Cluster) EtcdGet(ctx context.Context, key string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bins.etcdctl, "--endpoints="+c.EtcdEndpoint, "get", key, "-w", "json")
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("k8stest: etcdctl get %s: %w: %s", key, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("k8stest: etcdctl get %s: %w", key, err)
	}
	var r struct {
		Kvs []struct {
			Value []byte `json:"value"` // base64 in etcdctl's JSON, decoded by encoding/json
		} `json:"kvs"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("k8stest: etcdctl get %s: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, key)
	}
	return r.Kvs[0].Value, nil
}

func encryptionConfig(socket string) []byte {
	endpoint, _ := json.Marshal("unix://" + socket) // a JSON string is a YAML string
	return []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["secrets"]
    providers:
      - kms:
          apiVersion: v2
          name: ` + KMSProviderName + `
          endpoint: ` + string(endpoint) + `
          timeout: 3s
      - identity: {}
`)
}

func kubeconfig(host string, p *pki) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	dir := filepath.Dir(p.caFile)
	return []byte(`apiVersion: v1
kind: Config
clusters:
  - name: k8stest
    cluster:
      server: ` + q(host) + `
      certificate-authority: ` + q(p.caFile) + `
users:
  - name: admin
    user:
      client-certificate: ` + q(filepath.Join(dir, "admin.crt")) + `
      client-key: ` + q(filepath.Join(dir, "admin.key")) + `
contexts:
  - name: k8stest
    context: {cluster: k8stest, user: admin}
current-context: k8stest
`)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
