package kmsplugin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
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
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/cofferhq/coffer/api"
	"github.com/cofferhq/coffer/internal/k8s/kmsplugin"
	"github.com/cofferhq/coffer/internal/k8stest"
	"github.com/cofferhq/coffer/internal/servertest"
)

const (
	transitKey = "kube-apiserver"
	testNS     = "kms"
	nSecrets   = 12
)

// pluginPolicy is the least the plugin needs: encrypt and decrypt with
// its one key. The default policy (attached to every token) covers
// lookup-self and renew-self.
const pluginPolicy = `path "transit/encrypt/` + transitKey + `" { capabilities = ["update"] }
path "transit/decrypt/` + transitKey + `" { capabilities = ["update"] }
`

// requireBinaries skips (or, under CI=true, fails) when the control-plane
// binaries are missing, before anything is started for nothing.
func requireBinaries(t *testing.T) {
	t.Helper()
	for _, b := range []string{"kube-apiserver", "etcd", "etcdctl"} {
		if _, err := os.Stat(filepath.Join(k8stest.BinDir(), b)); err != nil {
			msg := fmt.Sprintf("%v: %s missing in %s (K8S_BIN); run `make k8s-bins`", k8stest.ErrNoBinaries, b, k8stest.BinDir())
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// pluginProc is `coffer kms-plugin` running as its own process.
type pluginProc struct {
	cmd     *exec.Cmd
	logPath string
	socket  string
	metrics string // host:port
	done    chan struct{}
}

// startPlugin starts the plugin; flags in extra come last and so win.
func startPlugin(t testing.TB, cofferAddr, tokenFile, dir, logName string, extra ...string) *pluginProc {
	t.Helper()
	p := &pluginProc{
		logPath: filepath.Join(dir, logName),
		socket:  filepath.Join(dir, "kms.sock"),
		metrics: servertest.FreeAddr(t),
		done:    make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(servertest.Binary(t), "kms-plugin",
		"-address", cofferAddr, "-key", transitKey, "-token-file", tokenFile,
		"-socket", p.socket, "-metrics-address", p.metrics, "-refresh", "2s", "-log-level", "debug")
	p.cmd.Args = append(p.cmd.Args, extra...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("--- kms-plugin log ---\n%s", tail(string(b), 60))
		}
	})
	return p
}

// stop sends SIGTERM and waits, killing after 10s.
func (p *pluginProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func dialKMS(t testing.TB, socket string) kmsapi.KeyManagementServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn)
}

// waitFor polls cond every interval until it returns true or timeout passes.
func waitFor(t *testing.T, what string, timeout, interval time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v (last: %s)", what, timeout, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(interval):
		}
	}
}

// storedObject is the part of the apiserver's kmsv2 EncryptedObject
// (k8s.io/apiserver .../envelope/kmsv2/v2/api.proto) the test checks.
type storedObject struct {
	keyID       string
	dekSource   []byte
	annotations map[string][]byte
}

// parseStored decodes an etcd value "k8s:enc:kms:v2:<provider>:<protobuf>".
func parseStored(raw []byte) (storedObject, error) {
	prefix := "k8s:enc:kms:v2:" + k8stest.KMSProviderName + ":"
	b, ok := bytes.CutPrefix(raw, []byte(prefix))
	if !ok {
		return storedObject{}, fmt.Errorf("etcd value does not start with %q: %q", prefix, raw[:min(len(raw), 40)])
	}
	o := storedObject{annotations: map[string][]byte{}}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return o, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num < 2 || num > 4 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return o, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return o, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 2:
			o.keyID = string(v)
		case 3:
			o.dekSource = v
		case 4: // map entry: key 1, value 2
			var k string
			var val []byte
			for len(v) > 0 {
				en, et, m := protowire.ConsumeTag(v)
				if m < 0 || et != protowire.BytesType {
					return o, errors.New("bad annotation entry")
				}
				fv, m2 := protowire.ConsumeBytes(v[m:])
				if m2 < 0 {
					return o, protowire.ParseError(m2)
				}
				if en == 1 {
					k = string(fv)
				} else {
					val = fv
				}
				v = v[m+m2:]
			}
			o.annotations[k] = val
		}
	}
	return o, nil
}

// TestKubernetes runs the real thing: a coffer server with the transit
// engine, `coffer kms-plugin` on a socket, and kube-apiserver with etcd
// configured to encrypt Secrets through it.
func TestKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coffer, the plugin, etcd and kube-apiserver")
	}
	requireBinaries(t)
	ctx := t.Context()
	dir := t.TempDir()
	top := t // owns the processes, which outlive each step

	// coffer: transit key, a policy for the plugin and a short-lived,
	// renewable token, so the plugin has to renew it during the test.
	coffer := servertest.Start(t, servertest.Options{Dev: true})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- coffer log ---\n%s", tail(coffer.Logs(), 40))
		}
	})
	root, err := api.NewClient(api.Config{Address: coffer.Addr, Token: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().Mount(ctx, "transit", api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	if _, err := root.Logical().Write(ctx, "transit/keys/"+transitKey, map[string]any{}); err != nil {
		t.Fatalf("create transit key: %v", err)
	}
	if _, err := root.Logical().Write(ctx, "sys/policies/acl/kms-plugin", map[string]any{"policy": pluginPolicy}); err != nil {
		t.Fatalf("write policy: %v", err)
	}
	tok, err := root.Logical().Write(ctx, "auth/token/create", map[string]any{
		"policies": []string{"kms-plugin"}, "ttl": "20s", "renewable": true, "no_parent": true})
	if err != nil || tok == nil || tok.Auth == nil {
		t.Fatalf("create plugin token: %v", err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tok.Auth.ClientToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The plugin, serving before the apiserver starts.
	begin := time.Now()
	plugin := startPlugin(t, coffer.Addr, tokenFile, dir, "kms-plugin.log")
	listening := waitFor(t, "plugin socket", 30*time.Second, 2*time.Millisecond, func() (bool, string) {
		_, err := os.Stat(plugin.socket)
		return err == nil, fmt.Sprint(err)
	})
	kms := dialKMS(t, plugin.socket)
	status1 := func() (*kmsapi.StatusResponse, error) {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return kms.Status(sctx, &kmsapi.StatusRequest{}, grpc.WaitForReady(true))
	}
	waitFor(t, "plugin healthy", 30*time.Second, 10*time.Millisecond, func() (bool, string) {
		st, err := status1()
		return err == nil && st.Healthz == "ok", fmt.Sprint(st, err)
	})
	t.Logf("plugin cold start: socket served %v after the process started, healthy Status after %v",
		listening.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if st, _ := status1(); st.KeyId != "transit/"+transitKey+":v1" || st.Version != "v2" {
		t.Fatalf("Status = %v", st)
	}

	start := time.Now()
	cluster, err := k8stest.Start(ctx, k8stest.Options{KMSSocket: plugin.socket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	t.Logf("control plane ready in %v (plugin started %v before)", time.Since(start).Round(time.Millisecond),
		start.Sub(begin).Round(time.Millisecond))
	if err := cluster.CreateNamespace(ctx, testNS); err != nil {
		t.Fatal(err)
	}
	secrets := cluster.Client.CoreV1().Secrets(testNS)

	markers := make([]string, nSecrets)
	name := func(i int) string { return fmt.Sprintf("s-%02d", i) }
	etcdKey := func(n string) string { return "/registry/secrets/" + testNS + "/" + n }
	stored := func(t *testing.T, n string) storedObject {
		t.Helper()
		raw, err := cluster.EtcdGet(ctx, etcdKey(n))
		if err != nil {
			t.Fatal(err)
		}
		o, err := parseStored(raw)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		return o
	}
	readBack := func(t *testing.T) {
		t.Helper()
		for i := range nSecrets {
			s, err := secrets.Get(ctx, name(i), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get %s: %v", name(i), err)
			}
			if got := string(s.Data["password"]); got != markers[i] {
				t.Fatalf("%s: password = %q, want %q", name(i), got, markers[i])
			}
		}
	}
	keyV := func(v int) string { return fmt.Sprintf("transit/%s:v%d", transitKey, v) }

	ok := t.Run("encrypted at rest", func(t *testing.T) {
		for i := range nSecrets {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			markers[i] = "plaintext-marker-" + hex.EncodeToString(b)
			if _, err := secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name(i)},
				Data:       map[string][]byte{"password": []byte(markers[i])},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range nSecrets {
			raw, err := cluster.EtcdGet(ctx, etcdKey(name(i)))
			if err != nil {
				t.Fatal(err)
			}
			for _, leak := range []string{markers[i], base64.StdEncoding.EncodeToString([]byte(markers[i]))} {
				if bytes.Contains(raw, []byte(leak)) {
					t.Fatalf("%s: etcd holds the plaintext", name(i))
				}
			}
			o, err := parseStored(raw)
			if err != nil {
				t.Fatalf("%s: %v", name(i), err)
			}
			// The DEK source is the seed sealed under the plugin's local
			// KEK (nonce, 32-byte seed, tag); the KEK, wrapped by transit
			// key version 1, is an annotation.
			if o.keyID != keyV(1) || len(o.dekSource) != 12+32+16 ||
				string(o.annotations[kmsplugin.AnnotationFormat]) != kmsplugin.FormatLocalKEK ||
				!bytes.HasPrefix(o.annotations[kmsplugin.AnnotationKEK], []byte("vault:v1:")) {
				t.Fatalf("%s: stored key id %q, DEK source %q, annotations %q", name(i), o.keyID, o.dekSource, o.annotations)
			}
		}
		readBack(t)
	})
	if !ok {
		return
	}

	ok = t.Run("rotation", func(t *testing.T) {
		if _, err := root.Logical().Write(ctx, "transit/keys/"+transitKey+"/rotate", map[string]any{}); err != nil {
			t.Fatalf("rotate: %v", err)
		}
		d := waitFor(t, "plugin key id v2", 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			st, err := status1()
			return err == nil && st.KeyId == keyV(2), fmt.Sprint(st, err)
		})
		t.Logf("plugin reported the new key id %v after the rotation", d.Round(time.Millisecond))
		// The apiserver polls Status every minute while healthy; new
		// writes switch to the new key id after that poll.
		probe := 0
		d = waitFor(t, "apiserver writes under v2", 150*time.Second, 3*time.Second, func() (bool, string) {
			probe++
			n := fmt.Sprintf("probe-%d", probe)
			if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n},
				StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
				return false, err.Error()
			}
			id := stored(t, n).keyID
			return id == keyV(2), id
		})
		t.Logf("apiserver switched to the new key id %v later", d.Round(time.Millisecond))
		if id := stored(t, name(0)).keyID; id != keyV(1) {
			t.Fatalf("an old Secret is under %q before the rewrite", id)
		}

		// Restart the plugin (empty cache) and the apiserver (no cached
		// seeds): reading the Secrets now takes Decrypt calls through
		// coffer for the v1 and the v2 seed.
		// The first plugin has been up for over a minute with a token
		// created for 20s: it kept working because it renewed the token.
		if _, body := metricsBody(t, plugin.metrics); !strings.Contains(body, `coffer_kms_token_operations_total{operation="renew",result="ok"}`) {
			t.Errorf("no successful token renewal in the first plugin's metrics")
		}
		plugin.stop()
		plugin = startPlugin(top, coffer.Addr, tokenFile, dir, "kms-plugin-2.log")
		begin := time.Now()
		if err := cluster.RestartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("plugin and apiserver restarted in %v", time.Since(begin).Round(time.Millisecond))
		readBack(t)
		_, body := metricsBody(t, plugin.metrics)
		if misses, _ := strconv.Atoi(metricLine(body, "coffer_kms_dek_cache_misses_total")); misses < 2 {
			t.Errorf("Decrypt calls through coffer after the restarts = %d, want at least 2 (the v1 and the v2 seed)", misses)
		}

		rewrite := func() kmsplugin.RewriteResult {
			t.Helper()
			cmd := exec.CommandContext(ctx, servertest.Binary(t), "kms-plugin", "rewrite-secrets",
				"-kubeconfig", cluster.Kubeconfig, "-format", "json", "-page-size", "5")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			begin := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("rewrite-secrets: %v\n%s", err, errb.String())
			}
			var res kmsplugin.RewriteResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("rewrite-secrets output %q: %v", out.String(), err)
			}
			t.Logf("rewrite-secrets: %+v in %v", res, time.Since(begin).Round(time.Millisecond))
			return res
		}
		res := rewrite()
		if res.Failed != 0 || res.Rewritten < nSecrets || res.Rewritten+res.Current != res.Listed || res.Listed < nSecrets+probe {
			t.Errorf("rewrite result %+v, want the %d old Secrets rewritten and none failed", res, nSecrets)
		}
		rvs := map[string]string{}
		for i := range nSecrets {
			if o := stored(t, name(i)); o.keyID != keyV(2) || !bytes.HasPrefix(o.annotations[kmsplugin.AnnotationKEK], []byte("vault:v2:")) {
				t.Errorf("%s after the rewrite: key id %q, KEK %.12q", name(i), o.keyID, o.annotations[kmsplugin.AnnotationKEK])
			}
			s, err := secrets.Get(ctx, name(i), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rvs[s.Name] = s.ResourceVersion
		}
		readBack(t)
		// Secrets already under the current key id are not written again.
		if res := rewrite(); res.Rewritten != 0 || res.Current != res.Listed {
			t.Errorf("second rewrite result %+v, want every Secret current", res)
		}
		for n, rv := range rvs {
			if s, err := secrets.Get(ctx, n, metav1.GetOptions{}); err != nil || s.ResourceVersion != rv {
				t.Errorf("%s rewritten although it was current: resourceVersion %s -> %v (%v)", n, rv, s.ResourceVersion, err)
			}
		}
	})
	if !ok {
		return
	}

	t.Run("coffer sealed", func(t *testing.T) {
		decrypt := func(ct []byte, keyID string, ann map[string][]byte) ([]byte, error) {
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			r, err := kms.Decrypt(dctx, &kmsapi.DecryptRequest{Ciphertext: ct, KeyId: keyID, Annotations: ann, Uid: "test"})
			if err != nil {
				return nil, err
			}
			return r.Plaintext, nil
		}
		o := stored(t, name(0))
		before, err := decrypt(o.dekSource, o.keyID, o.annotations)
		if err != nil || len(before) != 32 {
			t.Fatalf("Decrypt of a stored seed: %d bytes, %v", len(before), err)
		}
		// A transit ciphertext the plugin has never seen (the format of
		// plugins before local KEKs).
		enc, err := root.Logical().Write(ctx, "transit/encrypt/"+transitKey,
			map[string]any{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 32))})
		if err != nil {
			t.Fatal(err)
		}
		unseen := []byte(enc.Data["ciphertext"].(string))

		if err := root.Sys().Seal(ctx); err != nil {
			t.Fatalf("seal coffer: %v", err)
		}
		d := waitFor(t, "plugin unhealthy", 30*time.Second, 200*time.Millisecond, func() (bool, string) {
			st, err := status1()
			return err == nil && st.Healthz != "ok", fmt.Sprint(st, err)
		})
		st, _ := status1()
		t.Logf("plugin unhealthy %v after the seal: healthz %q, key id %q", d.Round(time.Millisecond), st.Healthz, st.KeyId)
		if !strings.Contains(st.Healthz, "sealed") || st.KeyId != keyV(2) {
			t.Errorf("Status while sealed = %v; want healthz saying sealed and the last key id", st)
		}
		d = waitFor(t, "apiserver reports the KMS provider unhealthy", 90*time.Second, time.Second, func() (bool, string) {
			body, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/readyz/kms-providers").DoRaw(ctx)
			return err != nil, string(body)
		})
		t.Logf("apiserver /readyz/kms-providers failed %v later", d.Round(time.Millisecond))

		readBack(t) // the apiserver's cached seeds
		after, err := decrypt(o.dekSource, o.keyID, o.annotations)
		if err != nil || !bytes.Equal(after, before) {
			t.Errorf("Decrypt of a recently used seed while sealed: %v (same bytes: %v)", err, bytes.Equal(after, before))
		}
		if _, err := decrypt(unseen, keyV(2), nil); status.Code(err) != codes.Unavailable {
			t.Errorf("Decrypt of an unseen ciphertext while sealed: %v, want Unavailable", err)
		}
		_, werr := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "while-sealed"},
			StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
		t.Logf("Secret write while coffer is sealed: err = %v", werr)

		_, body := metricsBody(t, plugin.metrics)
		for _, want := range []string{"coffer_kms_healthy 0", `coffer_kms_requests_total{method="Encrypt",outcome="OK"}`,
			`coffer_kms_coffer_errors_total{kind="sealed"`} {
			if !strings.Contains(body, want) {
				t.Errorf("plugin metrics lack %s", want)
			}
		}
		if hits := metricLine(body, "coffer_kms_dek_cache_hits_total"); hits == "" || hits == "0" {
			t.Errorf("no cache hits recorded (%q)", hits)
		}
	})
}

func metricsBody(t *testing.T, addr string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricLine returns the value of an unlabelled series in a Prometheus
// text exposition, or "".
func metricLine(body, name string) string {
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
