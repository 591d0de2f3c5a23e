package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/servertest"
)

// TestBenchKMS runs `coffer kms-plugin` as its own process against a
// server, as on a control-plane node, and loads it with `coffer bench
// kms`: every operation as fast as answered and at a fixed rate, then
// bad flags and a socket nobody serves.
func TestBenchKMS(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	cli := newCLISession(t, p.Addr, "root")
	cli.ok("", "secrets", "enable", "transit")
	cli.ok("", "transit", "keys", "create", "kube-apiserver")
	policy := filepath.Join(cli.home, "kms.hcl")
	writeFile(t, policy, `path "transit/encrypt/kube-apiserver" { capabilities = ["update"] }
path "transit/decrypt/kube-apiserver" { capabilities = ["update"] }
`)
	cli.ok("", "policy", "write", "kms-plugin", policy)
	var tok struct {
		ClientToken string `json:"client_token"`
	}
	if r := cli.ok("", "token", "create", "-orphan", "-policy", "kms-plugin", "-period", "1h", "-format", "json"); json.Unmarshal([]byte(r.stdout), &tok) != nil || tok.ClientToken == "" {
		t.Fatalf("token create: %s", r.stdout)
	}
	tokenFile := filepath.Join(cli.home, "token")
	writeFile(t, tokenFile, tok.ClientToken)
	// Unix socket paths are short; the test's temp dir may not be.
	sockDir, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	socket := filepath.Join(sockDir, "kms.sock")
	metrics := servertest.FreeAddr(t)
	plugin := exec.CommandContext(t.Context(), servertest.Binary(t), "kms-plugin", "-address", p.Addr,
		"-key", "kube-apiserver", "-token-file", tokenFile, "-socket", socket, "-metrics-address", metrics)
	// The plugin runs on one CPU unless told otherwise (-procs).
	plugin.Env = append(os.Environ(), "GOMAXPROCS=")
	var logs strings.Builder
	plugin.Stdout, plugin.Stderr = &logs, &logs
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugin.Process.Kill(); _ = plugin.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin did not listen on %s", socket)
		}
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\ngo_sched_gomaxprocs_threads 1\n") {
		t.Errorf("plugin metrics: want go_sched_gomaxprocs_threads 1 (-procs defaults to 1)")
	}

	type result struct {
		Op     string  `json:"op"`
		Ops    int     `json:"ops"`
		Errors int     `json:"errors"`
		Rate   int     `json:"rate"`
		P99    float64 `json:"p99_ms"`
		First  string  `json:"first_error"`
	}
	for _, args := range [][]string{
		{"-op=encrypt"},
		{"-op=decrypt", "-keys=20"},
		{"-op=status"},
		{"-op=decrypt", "-keys=5", "-rate=200"},
	} {
		// The plugin may still be fetching its first token: the bench's
		// opening Status says so, and a retry a moment later succeeds.
		var r cliResult
		for range 50 {
			r = cli.run("", append([]string{"bench", "kms", "-socket", socket, "-duration=500ms", "-concurrency=4", "-procs=1", "-format=json"}, args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, "not healthy") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		var got result
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
			t.Fatalf("bench kms %v: exit %d: %s %s\nplugin: %s", args, r.code, r.stdout, r.stderr, logs.String())
		}
		if got.Ops == 0 || got.Errors != 0 || got.P99 <= 0 || got.Op != strings.TrimPrefix(args[0], "-op=") {
			t.Fatalf("bench kms %v: %+v", args, got)
		}
		if strings.Contains(args[len(args)-1], "-rate") && (got.Rate != 200 || got.Ops > 150) {
			t.Fatalf("bench kms %v: %d calls in 0.5s at 200/s: %+v", args, got.Ops, got)
		}
	}

	for _, bad := range [][]string{{"-op=rotate"}, {"-rate=-1"}, {"-concurrency=0"}, {"-keys=0", "-op=decrypt"}, {"-timeout=0"}} {
		args := append([]string{"bench", "kms", "-socket", socket}, bad...)
		if r := cli.run("", args...); r.code != 2 {
			t.Fatalf("bench kms %v: exit %d, want 2: %s", bad, r.code, r.stderr)
		}
	}
	if r := cli.run("", "bench", "kms"); r.code != 2 || !strings.Contains(r.stderr, "-socket") {
		t.Fatalf("bench kms without -socket: exit %d: %s", r.code, r.stderr)
	}
	nobody := filepath.Join(sockDir, "nobody.sock")
	if r := cli.run("", "bench", "kms", "-socket", nobody, "-timeout=1s"); r.code != 1 || !strings.Contains(r.stderr, nobody) {
		t.Fatalf("bench kms on a socket nobody serves: exit %d: %s", r.code, r.stderr)
	}
}
