package live

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/cli"
	"github.com/cofferhq/coffer/internal/posture"
)

// TestLiveCLI runs `coffer posture` against the cluster through a
// kubeconfig, as a user would.
func TestLiveCLI(t *testing.T) {
	setup(t)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Execute(t.Context(), args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("posture", "--kubeconfig", cluster.Kubeconfig, "--format", "json", "--fail-on", "critical")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (critical findings): %s", code, stderr)
	}
	var rep posture.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != cluster.Host || len(rep.Gaps) > 0 || len(rep.Failing("critical")) == 0 {
		t.Errorf("report: source %q, gaps %v, %d critical", rep.Source, rep.Gaps, len(rep.Failing("critical")))
	}
	code, out, stderr = run("posture", "who-can", "get", "secrets", "-n", "shop", "--kubeconfig", cluster.Kubeconfig, "-format", "table")
	if code != 0 || !strings.Contains(out, "User reader") || !strings.Contains(out, "Group system:masters") {
		t.Errorf("who-can: exit %d %s\n%s", code, stderr, out)
	}
	code, out, _ = run("posture", "paths", "user:binder", "--kubeconfig", cluster.Kubeconfig, "-format", "table")
	if code != 0 || !strings.Contains(out, "[bind]") {
		t.Errorf("paths: exit %d\n%s", code, out)
	}
}
