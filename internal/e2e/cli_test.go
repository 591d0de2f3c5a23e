package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, addr, token, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLIHome(t, t.TempDir(), addr, token, stdin, args...)
}

func runCLIHome(t *testing.T, home, addr, token, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(servertest.Binary(t), args...)
	cmd.Env = []string{"COFFER_ADDR=" + addr, "HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if token != "" {
		cmd.Env = append(cmd.Env, "COFFER_TOKEN="+token)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String(), errb.String()}
}

// cliSession runs coffer commands against one server as one token, with
// its own HOME.
type cliSession struct {
	t                 *testing.T
	home, addr, token string
}

func newCLISession(t *testing.T, addr, token string) *cliSession {
	return &cliSession{t: t, home: t.TempDir(), addr: addr, token: token}
}

// run runs a command and returns what it did.
func (s *cliSession) run(stdin string, args ...string) cliResult {
	s.t.Helper()
	return runCLIHome(s.t, s.home, s.addr, s.token, stdin, args...)
}

// ok runs a command that must exit 0.
func (s *cliSession) ok(stdin string, args ...string) cliResult {
	s.t.Helper()
	r := s.run(stdin, args...)
	if r.code != 0 {
		s.t.Fatalf("coffer %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func TestCLIOperatorFlow(t *testing.T) {
	p := servertest.Start(t, servertest.Options{})
	a := p.Addr

	r := runCLI(t, a, "", "", "operator", "init", "-key-shares", "5", "-key-threshold=3", "-format", "json")
	if r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	var init struct {
		Keys       []string `json:"keys"`
		KeysBase64 []string `json:"keys_base64"`
		RootToken  string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &init); err != nil || len(init.Keys) != 5 {
		t.Fatalf("init output %q: %v", r.stdout, err)
	}
	status := func() map[string]any {
		r := runCLI(t, a, "", "", "status", "--format=json")
		if r.code != 0 {
			t.Fatalf("status: %d %s", r.code, r.stderr)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if st := status(); st["sealed"] != true || st["initialized"] != true {
		t.Fatalf("status after init: %v", st)
	}
	// share 1 as an argument (hex), share 2 on stdin (base64), share 3 with "-".
	if r = runCLI(t, a, "", "", "operator", "unseal", init.Keys[0]); r.code != 0 {
		t.Fatalf("unseal 1: %s", r.stderr)
	}
	if r = runCLI(t, a, "", init.KeysBase64[1]+"\n", "operator", "unseal"); r.code != 0 {
		t.Fatalf("unseal 2 (stdin): %s", r.stderr)
	}
	if st := status(); st["progress"] != float64(2) {
		t.Fatalf("progress: %v", st)
	}
	if r = runCLI(t, a, "", init.Keys[4]+"\n", "operator", "unseal", "-"); r.code != 0 {
		t.Fatalf("unseal 3: %s", r.stderr)
	}
	if st := status(); st["sealed"] != false {
		t.Fatalf("still sealed: %v", st)
	}
	tok := init.RootToken
	if r = runCLI(t, a, tok, "", "secrets", "enable", "-path=kv2", "-version=2", "kv"); r.code != 0 {
		t.Fatalf("secrets enable: %s", r.stderr)
	}
	r = runCLI(t, a, tok, "", "secrets", "list", "-format=json")
	if r.code != 0 || !strings.Contains(r.stdout, `"kv2/"`) {
		t.Fatalf("secrets list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, a, tok, "", "secrets", "list", "-format=table")
	if !strings.Contains(r.stdout, "kv2/") || !strings.Contains(r.stdout, "Path") {
		t.Fatalf("secrets list table: %s", r.stdout)
	}
	if r = runCLI(t, a, tok, "", "secrets", "disable", "kv2"); r.code != 0 {
		t.Fatalf("secrets disable: %s", r.stderr)
	}
	if r = runCLI(t, a, tok, "", "operator", "rotate"); r.code != 0 {
		t.Fatalf("rotate: %s", r.stderr)
	}
	r = runCLI(t, a, tok, "", "operator", "key-status", "-format=yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "term: 2") {
		t.Fatalf("key-status: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// a non-root token cannot seal
	if r = runCLI(t, a, "s.bogus", "", "operator", "seal"); r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("seal with a bad token: %d %s", r.code, r.stderr)
	}
	if r = runCLI(t, a, tok, "", "operator", "seal"); r.code != 0 {
		t.Fatalf("seal: %s", r.stderr)
	}
	if st := status(); st["sealed"] != true {
		t.Fatalf("not sealed: %v", st)
	}
}

func TestCLIExitCodes(t *testing.T) {
	dead := "http://" + servertest.FreeAddr(t)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"nosuch"}, 2, "unknown command"},
		{"unknown flag", []string{"status", "-nosuchflag"}, 2, "unknown"},
		{"extra argument", []string{"status", "extra"}, 2, "expected at most 0"},
		{"bad format", []string{"status", "-format=xml"}, 2, "want table, json or yaml"},
		{"bad shares", []string{"operator", "init", "-key-shares=0"}, 2, "key-shares"},
		{"server without config", []string{"server"}, 2, "-config"},
		{"server dev off loopback", []string{"server", "-dev", "-dev-listen-address=0.0.0.0:8200"}, 2, "loopback"},
		{"server down", []string{"status"}, 1, "connection refused"},
		{"help", []string{"help"}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dead, "", "", tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tc.code, r.stderr)
			}
			if tc.msg != "" && !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("stderr %q does not contain %q", r.stderr, tc.msg)
			}
			if tc.code != 0 && !strings.HasPrefix(r.stderr, "coffer: error: ") {
				t.Fatalf("stderr %q lacks the coffer: error: prefix", r.stderr)
			}
		})
	}
}

func TestConfigErrorsReported(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/bad.yaml"
	writeFile(t, cfg, "storage:\n  bolt:\n    pathh: /x\nlistener:\n  adress: 1\n")
	r := runCLI(t, "", "", "", "server", "-config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, `line 3: unknown key "pathh"`) || !strings.Contains(r.stderr, `line 5: unknown key "adress"`) {
		t.Fatalf("unknown keys: %d %s", r.code, r.stderr)
	}
	writeFile(t, cfg, "storage:\n  bolt: {}\nlistener:\n  address: nope\n  read_timeout: soon\nlog:\n  level: loud\n")
	r = runCLI(t, "", "", "", "server", "-config", cfg)
	for _, want := range []string{"storage.bolt.path", "listener.address", "listener.tls", "read_timeout", "log.level"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("config errors %q do not mention %s", r.stderr, want)
		}
	}
}
