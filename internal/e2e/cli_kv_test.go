package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/servertest"
)

func TestCLIKVTokenPolicy(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	a := p.Addr
	home := t.TempDir()
	run := func(stdin string, args ...string) cliResult {
		t.Helper()
		r := runCLIHome(t, home, a, "root", stdin, args...)
		if r.code != 0 {
			t.Fatalf("coffer %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	file := filepath.Join(home, "cert.pem")
	writeFile(t, file, "-----BEGIN CERT-----\nabc\n")
	run("", "kv", "put", "secret/app/db", "user=svc", "pass=one", "cert=@"+file)
	run(`{"pass":"two","port":5432}`, "kv", "put", "secret/app/db", "-")
	if r := run("", "kv", "get", "-field=pass", "secret/app/db"); r.stdout != "two\n" {
		t.Fatalf("get -field: %q", r.stdout)
	}
	if r := run("", "kv", "get", "-field=pass", "-version=1", "secret/app/db"); r.stdout != "one\n" {
		t.Fatalf("get -version 1: %q", r.stdout)
	}
	if r := run("", "kv", "get", "-field=cert", "-version=1", "secret/app/db"); r.stdout != "-----BEGIN CERT-----\nabc\n\n" {
		t.Fatalf("k=@file: %q", r.stdout)
	}
	run("", "kv", "patch", "secret/app/db", "user=admin")
	r := run("", "kv", "get", "-format=json", "secret/app/db")
	var got struct {
		Data     map[string]any `json:"data"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Data["user"] != "admin" || got.Data["pass"] != "two" || got.Metadata["version"] != float64(3) {
		t.Fatalf("after patch: %s", r.stdout)
	}
	run("", "kv", "delete", "secret/app/db")
	if r := runCLIHome(t, home, a, "root", "", "kv", "get", "secret/app/db"); r.code != 1 || !strings.Contains(r.stderr, "deleted") {
		t.Fatalf("get deleted: %d %s", r.code, r.stderr)
	}
	run("", "kv", "undelete", "-versions=3", "secret/app/db")
	run("", "kv", "destroy", "-versions=1", "secret/app/db")
	run("", "kv", "metadata", "put", "-max-versions=4", "-custom-metadata=owner=team-a", "-rotation-period=720h", "-expire-after=2160h", "secret/app/db")
	r = run("", "kv", "metadata", "get", "-format=json", "secret/app/db")
	for _, want := range []string{`"owner": "team-a"`, `"max_versions": 4`, `"rotation_period"`, `"next_rotation"`, `"expire_after"`, `"destroyed": true`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("metadata get lacks %s:\n%s", want, r.stdout)
		}
	}
	if r := run("", "kv", "list", "-format=json", "secret/app"); !strings.Contains(r.stdout, `"db"`) {
		t.Fatalf("list: %s", r.stdout)
	}
	run("", "kv", "metadata", "delete", "secret/app/db")
	if r := runCLIHome(t, home, a, "root", "", "kv", "get", "secret/app/db"); r.code != 1 {
		t.Fatalf("get after metadata delete: %d", r.code)
	}
	if r := runCLIHome(t, home, a, "root", "", "kv", "put", "secret/x", "novalue"); r.code != 2 {
		t.Fatalf("bad k=v: %d %s", r.code, r.stderr)
	}

	// policies
	pol := filepath.Join(home, "app.hcl")
	writeFile(t, pol, `path "secret/data/app/*" {
  capabilities = ["read", "list"]
}
`)
	run("", "policy", "write", "app", pol)
	if r := run("", "policy", "list", "-format=json"); !strings.Contains(r.stdout, `"app"`) {
		t.Fatalf("policy list: %s", r.stdout)
	}
	if r := run("", "policy", "read", "-format=table", "app"); !strings.Contains(r.stdout, "secret/data/app/*") {
		t.Fatalf("policy read: %s", r.stdout)
	}
	run("", "policy", "fmt", pol)
	if b, _ := os.ReadFile(pol); !strings.Contains(string(b), `"secret/data/app/*"`) {
		t.Fatalf("policy fmt wrote %q", b)
	}
	if r := runCLIHome(t, home, a, "root", `path "x" { capabilities = ["reed"] }`, "policy", "fmt", "-"); r.code != 1 || !strings.Contains(r.stderr, "invalid capability") {
		t.Fatalf("policy fmt bad: %d %s", r.code, r.stderr)
	}

	// tokens
	r = run("", "token", "create", "-policy=app", "-ttl=1h", "-format=json")
	var auth struct {
		ClientToken string `json:"client_token"`
		Accessor    string `json:"accessor"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &auth); err != nil || !strings.HasPrefix(auth.ClientToken, "s.") {
		t.Fatalf("token create: %s", r.stdout)
	}
	if r := run("", "token", "lookup", "-format=json", auth.ClientToken); !strings.Contains(r.stdout, `"app"`) {
		t.Fatalf("token lookup: %s", r.stdout)
	}
	if r := run("", "token", "capabilities", "-format=json", auth.ClientToken, "secret/data/app/x"); !strings.Contains(r.stdout, "read") {
		t.Fatalf("token capabilities: %s", r.stdout)
	}
	run("", "token", "renew", "-increment=30m", auth.ClientToken)

	// login stores the token 0600 and later commands use it
	lhome := t.TempDir()
	if r := runCLIHome(t, lhome, a, "", "", "login", auth.ClientToken); r.code != 0 {
		t.Fatalf("login: %s", r.stderr)
	}
	fi, err := os.Stat(filepath.Join(lhome, ".coffer-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if r := runCLIHome(t, lhome, a, "", "", "token", "lookup", "-format=json"); r.code != 0 || !strings.Contains(r.stdout, auth.Accessor) {
		t.Fatalf("lookup with the stored token: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLIHome(t, lhome, a, "", "", "login", "s.nope"); r.code != 1 {
		t.Fatalf("login with a bad token: %d", r.code)
	}
	run("", "token", "revoke", "-accessor", auth.Accessor)
	if r := runCLIHome(t, lhome, a, "", "", "token", "lookup"); r.code != 1 {
		t.Fatalf("revoked token still works: %d", r.code)
	}

	// bench
	r = run("", "bench", "kv", "-duration=1s", "-concurrency=4", "-keys=20", "-op=mixed", "-procs=1", "-format=json")
	var br struct {
		Ops    int     `json:"ops"`
		Errors int     `json:"errors"`
		P99    float64 `json:"p99_ms"`
		Procs  int     `json:"procs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &br); err != nil || br.Ops == 0 || br.Errors != 0 || br.P99 <= 0 || br.Procs != 1 {
		t.Fatalf("bench: %s %v", r.stdout, err)
	}
	for _, bad := range []string{"-op=delete", "-procs=-1", "-concurrency=0"} {
		if r := runCLIHome(t, home, a, "root", "", "bench", "kv", bad); r.code != 2 {
			t.Fatalf("bench %s: exit %d, want 2", bad, r.code)
		}
	}
}

// TestCLIGenericPaths: read, write, list and delete reach any API path,
// as an operator configures an auth method.
func TestCLIGenericPaths(t *testing.T) {
	p := servertest.Start(t, servertest.Options{Dev: true})
	cli := newCLISession(t, p.Addr, "root")
	run, ok := cli.run, cli.ok
	ok("", "auth", "enable", "kubernetes")
	ok("", "write", "auth/kubernetes/config", "kubernetes_host=https://127.0.0.1:6443", "disable_local_ca_jwt=true")
	ok(`{"bound_service_account_names":["app"],"bound_service_account_namespaces":["team-a"],"token_policies":["p"]}`,
		"write", "auth/kubernetes/role/app", "-")
	ok("", "write", "/v1/auth/kubernetes/role/web", "bound_service_account_names=web", "bound_service_account_namespaces=web")
	if r := ok("", "read", "-field=kubernetes_host", "auth/kubernetes/config"); r.stdout != "https://127.0.0.1:6443\n" {
		t.Fatalf("read -field: %q", r.stdout)
	}
	if r := ok("", "list", "-format=table", "auth/kubernetes/role"); !strings.Contains(r.stdout, "app\n") || !strings.Contains(r.stdout, "web\n") {
		t.Fatalf("list: %q", r.stdout)
	}
	r := ok("", "read", "-format=json", "auth/kubernetes/role/app")
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.Data["token_policies"] == nil {
		t.Fatalf("read -format=json: %v %q", err, r.stdout)
	}
	ok("", "delete", "auth/kubernetes/role/web")
	if r := run("", "read", "auth/kubernetes/role/web"); r.code != 2 && r.code != 1 || !strings.Contains(r.stderr, "no value found") {
		t.Fatalf("read of a deleted role: %d %q", r.code, r.stderr)
	}
	// A token from a write response: token create through the generic path.
	if r := ok("", "write", "-field=token", "auth/token/create", "ttl=1m"); !strings.HasPrefix(r.stdout, "s.") {
		t.Fatalf("write -field=token: %q", r.stdout)
	}
	if r := run("", "write", "auth/kubernetes/role/x", "novalue"); r.code != 2 || !strings.Contains(r.stderr, "key=value") {
		t.Fatalf("bad argument: %d %q", r.code, r.stderr)
	}
}
