package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

type run struct {
	code           int
	stdout, stderr string
}

func execute(t *testing.T, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(t.Context(), args, strings.NewReader(""), &out, &errb)
	return run{code, out.String(), errb.String()}
}

func scenarioFile(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := posturetest.WriteList(&b, posturetest.Scenario(time.Now())...); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dump.yaml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPostureCommand(t *testing.T) {
	t.Parallel()
	dump := scenarioFile(t)

	r := execute(t, "posture", "-f", dump, "--format", "json")
	if r.code != 1 {
		t.Fatalf("posture with findings: exit %d, stderr %s", r.code, r.stderr)
	}
	var rep posture.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("json: %v\n%.400s", err, r.stdout)
	}
	if len(rep.Findings) == 0 || len(rep.Checks) != len(posture.Checks()) || len(rep.Maturity.NextFixes) != 3 {
		t.Fatalf("report: %d findings, %d checks, %d fixes", len(rep.Findings), len(rep.Checks), len(rep.Maturity.NextFixes))
	}
	if strings.Contains(r.stdout, posturetest.GitHubToken) || strings.Contains(r.stdout, "correct horse") {
		t.Fatal("the report shows a secret")
	}

	if r := execute(t, "posture", "-f", dump, "--fail-on", "none"); r.code != 0 || !strings.Contains(r.stdout, "Maturity: level 0 (Exposed)") {
		t.Fatalf("--fail-on none: exit %d\n%.600s", r.code, r.stdout)
	}
	if r := execute(t, "posture", "-f", dump, "--fail-on", "none", "--min-level", "2"); r.code != 1 || !strings.Contains(r.stderr, "below --min-level 2") {
		t.Fatalf("--min-level: exit %d, %s", r.code, r.stderr)
	}

	r = execute(t, "posture", "-f", dump, "--format", "sarif", "--fail-on", "none")
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string           `json:"ruleId"`
				Locations []map[string]any `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 {
		t.Fatalf("sarif: %v %.300s", err, r.stdout)
	}
	if len(sarif.Runs[0].Tool.Driver.Rules) != len(posture.Checks()) || len(sarif.Runs[0].Results) != len(rep.Findings) {
		t.Errorf("sarif: %d rules, %d results", len(sarif.Runs[0].Tool.Driver.Rules), len(sarif.Runs[0].Results))
	}

	html := filepath.Join(t.TempDir(), "report.html")
	r = execute(t, "posture", "-f", dump, "--format", "html", "-o", html)
	if r.code != 1 || !strings.Contains(r.stderr, "report in "+html) {
		t.Fatalf("html: exit %d, %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"<svg", "all Secrets in namespace shop", "User execer", "pods-exec", "Level 0: Exposed"} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, external := range []string{"<script", "<link", " src=", "@import", "url(http"} {
		if strings.Contains(page, external) {
			t.Errorf("html refers to an external asset: %q", external)
		}
	}
}

func TestPostureSubcommands(t *testing.T) {
	t.Parallel()
	dump := scenarioFile(t)

	r := execute(t, "posture", "who-can", "get", "secrets", "-n", "shop", "-f", dump, "-format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "reader"`) || !strings.Contains(r.stdout, "RoleBinding") {
		t.Fatalf("who-can: exit %d %s\n%.500s", r.code, r.stderr, r.stdout)
	}
	r = execute(t, "posture", "who-can", "get", "secrets", "-n", "shop", "-f", dump, "-format", "table")
	if r.code != 0 || !strings.Contains(r.stdout, "User named-reader") || !strings.Contains(r.stdout, "db") {
		t.Fatalf("who-can table: exit %d\n%s", r.code, r.stdout)
	}
	r = execute(t, "posture", "who-can", "create", "pods/exec", "-n", "shop", "-f", dump, "-format", "table")
	if r.code != 0 || !strings.Contains(r.stdout, "User execer") || strings.Contains(r.stdout, "User reader") {
		t.Fatalf("who-can pods/exec:\n%s", r.stdout)
	}
	r = execute(t, "posture", "who-can", "get", "widgets", "-f", dump, "-format", "table")
	if r.code != 0 || !strings.Contains(r.stderr, "not built in") {
		t.Fatalf("unknown resource: exit %d %s", r.code, r.stderr)
	}

	r = execute(t, "posture", "paths", "user:execer", "-f", dump, "-format", "table")
	if r.code != 0 || !strings.Contains(r.stdout, "[pods-exec]") || !strings.Contains(r.stdout, "via RoleBinding shop/execer") {
		t.Fatalf("paths: exit %d\n%s", r.code, r.stdout)
	}
	r = execute(t, "posture", "paths", "-f", dump, "-format", "json")
	var acc []posture.SubjectAccess
	if err := json.Unmarshal([]byte(r.stdout), &acc); err != nil || len(acc) < 10 {
		t.Fatalf("paths json: %v, %d subjects", err, len(acc))
	}

	r = execute(t, "posture", "permissions", "serviceaccount:shop/app", "-f", dump, "-format", "table")
	if r.code != 0 || !strings.Contains(r.stdout, "get,list,watch secrets") || !strings.Contains(r.stdout, "as Group system:authenticated") && !strings.Contains(r.stdout, "secret-reader") {
		t.Fatalf("permissions:\n%s", r.stdout)
	}

	r = execute(t, "posture", "checks", "-format", "table")
	for _, c := range posture.Checks() {
		if !strings.Contains(r.stdout, c.ID) {
			t.Errorf("checks lacks %s", c.ID)
		}
	}
}

func TestPostureUsageErrors(t *testing.T) {
	t.Parallel()
	dump := scenarioFile(t)
	for _, args := range [][]string{
		{"posture", "-f", dump, "--format", "xml"},
		{"posture", "-f", dump, "--fail-on", "severe"},
		{"posture", "-f", filepath.Join(t.TempDir(), "missing.yaml")},
		{"posture", "-f", dump, "--allow-reader", "robot:x"},
		{"posture", "who-can", "get", "-f", dump},
		{"posture", "paths", "nobody", "-f", dump},
		{"posture", "-f", dump, "--kubeconfig", "/dev/null"},
		{"posture", "--kubeconfig", filepath.Join(t.TempDir(), "none")},
	} {
		if r := execute(t, args...); r.code != 2 || !strings.HasPrefix(r.stderr, "coffer: error: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
