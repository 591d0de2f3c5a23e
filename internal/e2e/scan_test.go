package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanCLI runs the real binary over a directory with a planted AWS
// key and over a clean one, in each output format.
func TestScanCLI(t *testing.T) {
	dir := t.TempDir()
	// assembled so this test file itself holds no complete key
	key := "AKIA" + "Q3EGRIPVZ5JXNB2T"
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "zq8Fk3Lw9T"
	writeFile(t, filepath.Join(dir, "config.env"), "AWS_ACCESS_KEY_ID="+key+"\nAWS_SECRET_ACCESS_KEY="+secret+"\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	clean := t.TempDir()
	writeFile(t, filepath.Join(clean, "README.md"), "password: changeme\nuuid: 123e4567-e89b-12d3-a456-426614174000\n")

	r := runCLI(t, "", "", "", "scan", "--no-progress", "-f", "json", dir)
	if r.code != 1 {
		t.Fatalf("scan with a secret: exit %d, stderr %s", r.code, r.stderr)
	}
	var findings []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &findings); err != nil {
		var wrapped struct {
			Findings []map[string]any `json:"findings"`
		}
		if err2 := json.Unmarshal([]byte(r.stdout), &wrapped); err2 != nil {
			t.Fatalf("json output: %v\n%s", err, r.stdout)
		}
		findings = wrapped.Findings
	}
	if len(findings) == 0 || strings.Contains(r.stdout, secret) {
		t.Fatalf("findings %d; secret shown unredacted: %v", len(findings), strings.Contains(r.stdout, secret))
	}
	r = runCLI(t, "", "", "", "scan", "--no-progress", "-f", "sarif", dir)
	if r.code != 1 || !strings.Contains(r.stdout, `"version": "2.1.0"`) && !strings.Contains(r.stdout, `"version":"2.1.0"`) {
		t.Fatalf("sarif: %d %.300s", r.code, r.stdout)
	}
	if r := runCLI(t, "", "", "", "scan", "--no-progress", clean); r.code != 0 {
		t.Fatalf("clean scan: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", "", "", "scan", "--no-such-flag"); r.code != 2 {
		t.Fatalf("bad flag: exit %d", r.code)
	}
	// install-hook in a git repository writes an executable pre-commit hook
	repo := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	if r := runCLI(t, "", "", "", "scan", "install-hook", "--repo", repo); r.code != 0 {
		t.Fatalf("install-hook: %d %s", r.code, r.stderr)
	}
}
