package e2e

import (
	"encoding/json"
	"os"
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

// TestScanSARIFValidates checks `coffer scan -f sarif` output, from files
// and from git history, with Microsoft's reference validator
// (Sarif.Multitool validate: the SARIF 2.1.0 JSON schema plus its rules).
// `make sarif-tool` fetches it; SARIF_MULTITOOL names it.
func TestScanSARIFValidates(t *testing.T) {
	tool := os.Getenv("SARIF_MULTITOOL")
	if tool == "" {
		home, _ := os.UserHomeDir()
		tool = filepath.Join(home, ".cache/coffer/sarif-multitool/v5.7.0/package/Sarif.Multitool")
	}
	if _, err := os.Stat(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SARIF validator missing (%v); run `make sarif-tool`", err)
		}
		t.Skipf("SARIF validator missing (%v); run `make sarif-tool`", err)
	}
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=T", "-c", "user.email=t@example.org"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("init", "-q")
	key := "AKIA" + "Q3EGRIPVZ5JXNB2T"
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "zq8Fk3Lw9T"
	writeFile(t, filepath.Join(repo, "deploy config.env"), "AWS_ACCESS_KEY_ID="+key+"\nAWS_SECRET_ACCESS_KEY="+secret+"\n")
	writeFile(t, filepath.Join(repo, "db.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  url: postgres://app:"+"Xq7vLm2pR9sT4wZk"+"@db.internal:5432/app\n")
	git("add", ".")
	git("commit", "-q", "-m", "leak")
	git("rm", "-q", "db.yaml")
	git("commit", "-q", "-m", "remove")

	for name, args := range map[string][]string{
		"files":   {"scan", "--no-progress", "-f", "sarif", repo},
		"history": {"scan", "--no-progress", "-f", "sarif", "--git", "--repo", repo},
		"clean":   {"scan", "--no-progress", "-f", "sarif", t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "", "", "", args...)
			if name == "clean" && r.code != 0 || name != "clean" && r.code != 1 {
				t.Fatalf("scan: exit %d: %s", r.code, r.stderr)
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "scan.sarif"), filepath.Join(dir, "validation.sarif")
			writeFile(t, in, r.stdout)
			cmd := exec.Command(tool, "validate", in, "-o", out)
			cmd.Env = append(os.Environ(), "DOTNET_CLI_TELEMETRY_OPTOUT=1", "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1")
			msg, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("Sarif.Multitool validate: %v\n%s", err, msg)
			}
			var log struct {
				Runs []struct {
					Results []struct {
						RuleID  string `json:"ruleId"`
						Level   string `json:"level"`
						Message struct {
							Text string `json:"text"`
						} `json:"message"`
					} `json:"results"`
				} `json:"runs"`
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &log); err != nil {
				t.Fatalf("validator output: %v", err)
			}
			for _, run := range log.Runs {
				for _, res := range run.Results {
					if res.Level == "error" || res.Level == "warning" {
						t.Errorf("%s %s: %s", res.Level, res.RuleID, res.Message.Text)
					}
				}
			}
		})
	}
}
