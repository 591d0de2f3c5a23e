package scan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/scan"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

// A few credentials with valid structure, generated once.
var (
	gen       = scantest.NewGen(7)
	ghToken   = gen.CRC32Token("ghp_")
	npmToken  = gen.CRC32Token("npm_")
	stripeKey = "sk_live_" + gen.Password(30)
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Dev One", "-c", "user.email=dev@example.org",
		"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestExitSemantics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "clean.go", "package x\n")
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{dir}}); err != nil {
		t.Fatalf("clean dir: %v", err)
	}
	write(t, dir, "leak.go", "const t = \""+ghToken+"\"\n")
	res, err := scan.Run(t.Context(), scan.Options{Paths: []string{dir}})
	if !errors.Is(err, scan.ErrFindings) || len(res.Findings) != 1 {
		t.Fatalf("Run = %v, %v; want one finding and ErrFindings", res, err)
	}
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{dir}, Format: "xml"}); !errors.Is(err, scan.ErrUsage) {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{dir}, Git: true, Staged: true}); !errors.Is(err, scan.ErrUsage) {
		t.Fatalf("two git modes: %v", err)
	}
}

func TestRedactionAndFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "a.env", "GITHUB_TOKEN="+ghToken+"\n")
	for _, format := range []string{scan.FormatTable, scan.FormatJSON, scan.FormatSARIF} {
		var out bytes.Buffer
		_, _ = scan.Run(t.Context(), scan.Options{Paths: []string{dir}, Format: format, Output: &out})
		if strings.Contains(out.String(), ghToken) {
			t.Errorf("%s output leaks the secret:\n%s", format, out.String())
		}
		if !strings.Contains(out.String(), "github-pat") {
			t.Errorf("%s output lacks the rule id:\n%s", format, out.String())
		}
	}
	var out bytes.Buffer
	_, _ = scan.Run(t.Context(), scan.Options{Paths: []string{dir}, ShowSecrets: true, Output: &out})
	if !strings.Contains(out.String(), ghToken) {
		t.Error("--show-secrets did not show the secret")
	}
	// The fingerprint does not depend on the line.
	f1, _ := runJSON(t, scan.Options{Paths: []string{dir}})
	write(t, dir, "a.env", "# moved down\n\nGITHUB_TOKEN="+ghToken+"\n")
	f2, _ := runJSON(t, scan.Options{Paths: []string{dir}})
	if len(f1) != 1 || len(f2) != 1 || f1[0].Fingerprint != f2[0].Fingerprint || f1[0].Line == f2[0].Line {
		t.Fatalf("fingerprints %v vs %v", f1, f2)
	}
}

func TestBaselineIgnoreAndConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write(t, src, "a.go", "var a = \""+ghToken+"\"\nvar b = \""+npmToken+"\" // coffer:ignore\n")
	write(t, src, "vendor/lib.go", "var c = \""+stripeKey+"\"\n")
	findings, _ := runJSON(t, scan.Options{Paths: []string{src}})
	if len(findings) != 2 {
		t.Fatalf("want 2 findings (inline ignore honoured), got %+v", findings)
	}
	base := filepath.Join(dir, "baseline.json")
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{src}, WriteBaseline: base}); err != nil {
		t.Fatalf("write baseline: %v", err)
	}
	write(t, src, "new.py", "KEY = '"+npmToken+"'\n")
	findings, _ = runJSON(t, scan.Options{Paths: []string{src}, Baseline: base})
	if len(findings) != 1 || !strings.HasSuffix(findings[0].File, "new.py") {
		t.Fatalf("with baseline: %+v, want only new.py", findings)
	}
	cfg := write(t, dir, "cfg.yaml", "allowlist:\n  paths: ['/vendor/']\n  fingerprints: ["+findings[0].Fingerprint+"]\n")
	findings, _ = runJSON(t, scan.Options{Paths: []string{src}, ConfigFile: cfg})
	if len(findings) != 1 || !strings.HasSuffix(findings[0].File, "a.go") {
		t.Fatalf("with config: %+v, want only a.go", findings)
	}
	bad := write(t, dir, "bad.yaml", "allowlist:\n  pathz: []\n")
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{src}, ConfigFile: bad}); !errors.Is(err, scan.ErrConfig) {
		t.Fatalf("unknown config key: %v", err)
	}
}

func TestUserRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "src/a.txt", "acme_9f3c1e7a5b2d4086c1f9e3a7b5d20c4e\n"+ghToken+"\n")
	rules := write(t, dir, "rules.yaml", `version: 1
rules:
  - id: acme-token
    description: ACME token
    family: saas
    severity: high
    keywords: [acme_]
    regex: '\b(acme_[a-f0-9]{32})\b'
    secretGroup: 1
  - id: github-pat
    disabled: true
`)
	findings, _ := runJSON(t, scan.Options{Paths: []string{filepath.Join(dir, "src")}, RulesFile: rules})
	if len(findings) != 1 || findings[0].Rule != "acme-token" {
		t.Fatalf("findings %+v, want only acme-token", findings)
	}
}

func TestSARIF(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "dir with space/ä.yaml", "token: "+npmToken+"\n")
	var out bytes.Buffer
	_, _ = scan.Run(t.Context(), scan.Options{Paths: []string{dir}, Format: scan.FormatSARIF, Output: &out})
	checkSARIF(t, out.Bytes(), 1)
}

func TestGitHistory(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	write(t, repo, "README.md", "hello\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "init")
	write(t, repo, "config/app.env", "X=1\nGITHUB_TOKEN="+ghToken+"\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "add config")
	first := git(t, repo, "rev-parse", "HEAD")
	// The same blob under another name, later: scanned once, reported
	// with the first commit and path.
	write(t, repo, "copy/app.env", "X=1\nGITHUB_TOKEN="+ghToken+"\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "copy")
	git(t, repo, "rm", "-q", "config/app.env", "copy/app.env")
	git(t, repo, "commit", "-qm", "remove")
	base := git(t, repo, "rev-parse", "HEAD")
	write(t, repo, "later.txt", "npm "+npmToken+"\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "later")

	findings, err := runJSON(t, scan.Options{Git: true, Repo: repo})
	if !errors.Is(err, scan.ErrFindings) {
		t.Fatal(err)
	}
	if len(findings) != 2 {
		t.Fatalf("findings %+v, want 2", findings)
	}
	f := findings[0]
	if f.File != "config/app.env" || f.Line != 2 || f.Commit == nil || f.Commit.Hash != first || f.Commit.Author != "Dev One" {
		t.Fatalf("history finding %+v (commit %+v), want config/app.env:2 in %s by Dev One", f, f.Commit, first)
	}
	findings, _ = runJSON(t, scan.Options{Since: base, Repo: repo})
	if len(findings) != 1 || findings[0].File != "later.txt" {
		t.Fatalf("--since: %+v, want later.txt only", findings)
	}
	var out bytes.Buffer
	_, _ = scan.Run(t.Context(), scan.Options{Git: true, Repo: repo, Format: scan.FormatSARIF, Output: &out})
	checkSARIF(t, out.Bytes(), 2)
}

func TestStaged(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	write(t, repo, "app.py", "A = 1\nOLD = '"+npmToken+"'\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "init")
	if findings, err := runJSON(t, scan.Options{Staged: true, Repo: repo}); err != nil || len(findings) != 0 {
		t.Fatalf("nothing staged: %v %+v", err, findings)
	}
	write(t, repo, "app.py", "A = 1\nOLD = '"+npmToken+"'\nB = 2\nNEW = '"+ghToken+"'\n")
	write(t, repo, "other.txt", "unstaged "+stripeKey+"\n")
	git(t, repo, "add", "app.py")
	findings, err := runJSON(t, scan.Options{Staged: true, Repo: repo})
	if !errors.Is(err, scan.ErrFindings) || len(findings) != 1 || findings[0].Line != 4 || findings[0].Rule != "github-pat" {
		t.Fatalf("staged: %v %+v, want github-pat at app.py:4 only", err, findings)
	}
}

func TestCorruptGitObject(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	write(t, repo, "a.txt", "good "+ghToken+"\n")
	write(t, repo, "b.txt", "will be corrupted\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "init")
	blob := git(t, repo, "rev-parse", "HEAD:b.txt")
	obj := filepath.Join(repo, ".git", "objects", blob[:2], blob[2:])
	if err := os.Chmod(obj, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("not zlib at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	res, err := scan.Run(t.Context(), scan.Options{Git: true, Repo: repo, Warnings: &warn})
	if !errors.Is(err, scan.ErrFindings) || len(res.Findings) != 1 {
		t.Fatalf("corrupt repo: %v, %+v", err, res)
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning for the corrupt object")
	}
	if _, err := scan.Run(t.Context(), scan.Options{Git: true, Repo: t.TempDir()}); err == nil || errors.Is(err, scan.ErrFindings) {
		t.Fatalf("not a repository: %v, want an error", err)
	}
}

// TestBadInput: binary files, invalid UTF-8, a 10 MB line, deep YAML,
// alias bombs, unreadable entries: scanned or skipped with a warning.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "blob.dat", "\x00\x01\x02"+ghToken+strings.Repeat("\x00", 100))
	write(t, dir, "latin1.txt", "caf\xe9 \xff\xfe token: "+npmToken+" \xc3\x28\n")
	line := strings.Repeat("a=1;", 10<<20/4) + " key " + ghToken + strings.Repeat(" password", 1000) + "\n"
	write(t, dir, "long.js", line)
	bomb := "kind: Secret\na: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i, prev := 0, "a"; i < 15; i++ {
		n := "b" + string(rune('a'+i))
		bomb += n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 9) + "*" + prev + "]\n"
		prev = n
	}
	write(t, dir, "bomb.yaml", bomb)
	write(t, dir, "deep.yaml", "kind: Secret\nx: "+strings.Repeat("[", 50000)+strings.Repeat("]", 50000)+"\n")
	write(t, dir, "package-lock.json", `{"integrity": "sha512-`+ghToken+`"}`)
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	start := time.Now()
	res, err := scan.Run(t.Context(), scan.Options{Paths: []string{dir, filepath.Join(dir, "dangling"), filepath.Join(dir, "nope")},
		Warnings: &warn, ShowSecrets: true})
	if !errors.Is(err, scan.ErrFindings) {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v", d)
	}
	got := map[string]bool{}
	for _, f := range res.Findings {
		got[filepath.Base(f.File)] = true
	}
	if !got["latin1.txt"] || !got["long.js"] || got["blob.dat"] || got["package-lock.json"] {
		t.Errorf("findings in %v; want latin1.txt and long.js, not the binary or the lock file", got)
	}
	if res.Stats.Binary != 1 {
		t.Errorf("binary skipped %d, want 1", res.Stats.Binary)
	}
	if !strings.Contains(warn.String(), "dangling") || !strings.Contains(warn.String(), "nope") {
		t.Errorf("warnings %q lack the unreadable paths", warn.String())
	}
}

func TestStdinAndManifests(t *testing.T) {
	t.Parallel()
	dump := `{"kind":"List","apiVersion":"v1","items":[
{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","namespace":"prod"},"data":{"password":"` + b64(gen.Password(20)) + `","username":"` + b64("app") + `"}},
{"kind":"Secret","apiVersion":"v1","metadata":{"name":"ph"},"data":{"password":"` + b64("changeme") + `"}}]}`
	findings, err := runJSON(t, scan.Options{Paths: []string{"-"}, Stdin: strings.NewReader(dump)})
	if !errors.Is(err, scan.ErrFindings) || len(findings) != 1 || findings[0].Kubernetes == nil || findings[0].Kubernetes.Key != "password" {
		t.Fatalf("stdin dump: %v %+v, want one finding for db.password", err, findings)
	}
}

func TestInstallHook(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	p, err := scan.InstallHook(t.Context(), repo, "/opt/coffer bin/coffer", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if !strings.Contains(string(b), "scan --staged") || !strings.Contains(string(b), "'/opt/coffer bin/coffer'") || st.Mode()&0o111 == 0 {
		t.Fatalf("hook %s (mode %v):\n%s", p, st.Mode(), b)
	}
	if _, err := scan.InstallHook(t.Context(), repo, "coffer", false); err != nil {
		t.Fatalf("re-install over our own hook: %v", err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho mine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := scan.InstallHook(t.Context(), repo, "coffer", false); !errors.Is(err, scan.ErrHookExists) {
		t.Fatalf("foreign hook: %v", err)
	}
	if _, err := scan.InstallHook(t.Context(), repo, "coffer", true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := scan.InstallHook(t.Context(), t.TempDir(), "coffer", false); err == nil {
		t.Fatal("not a repository: no error")
	}
	// The hook runs and blocks a commit with a secret (COFFER_BIN points
	// it at a stand-in that records its arguments).
	stub := write(t, t.TempDir(), "coffer", "#!/bin/sh\necho \"$@\" > \""+filepath.Join(repo, "args")+"\"\nexit 1\n")
	_ = os.Chmod(stub, 0o755)
	write(t, repo, "x.txt", "x\n")
	git(t, repo, "add", ".")
	cmd := exec.Command("git", "-C", repo, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x")
	cmd.Env = append(os.Environ(), "COFFER_BIN="+stub)
	if err := cmd.Run(); err == nil {
		t.Fatal("commit went through a failing hook")
	}
	args, _ := os.ReadFile(filepath.Join(repo, "args"))
	if !strings.Contains(string(args), "scan --staged") {
		t.Fatalf("hook ran %q", args)
	}
}

func b64(s string) string { return jsonB64(s) }

func jsonB64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}
