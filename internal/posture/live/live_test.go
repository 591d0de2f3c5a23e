package live

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func analyze(t *testing.T, s *posture.Snapshot) *posture.Report {
	t.Helper()
	rep, err := posture.Analyze(t.Context(), s, posture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func findingsOf(rep *posture.Report, check string) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Check == check {
			out = append(out, f.Object)
		}
	}
	return out
}

// TestLiveMatchesFiles reads the cluster through client-go and through a
// `kubectl get -A -o json`-style dump of the same objects, and expects the
// same snapshot and the same report from both.
func TestLiveMatchesFiles(t *testing.T) {
	setup(t)
	live, err := posture.LoadCluster(t.Context(), cluster.AdminConfig, posture.ClusterOptions{Now: fixedNow, PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Gaps) > 0 {
		t.Fatalf("admin read has gaps: %v", live.Gaps)
	}
	fromFile, err := posture.LoadFiles(t.Context(), []string{dump(t, cluster.Client)}, posture.FileOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(fromFile.Problems) > 0 || fromFile.BuiltinRoles != 0 {
		t.Fatalf("dump: problems %v, %d roles added", fromFile.Problems, fromFile.BuiltinRoles)
	}
	fromFile.Source = live.Source
	if !bytes.Equal(jsonOf(t, live), jsonOf(t, fromFile)) {
		t.Fatalf("snapshots differ: live %d objects, file %d", live.Objects(), fromFile.Objects())
	}
	want := len(posturetest.Scenario(now))
	if live.Objects() < want {
		t.Fatalf("live snapshot has %d objects, the scenario alone %d", live.Objects(), want)
	}

	a, b := analyze(t, live), analyze(t, fromFile)
	if !bytes.Equal(jsonOf(t, a.Findings), jsonOf(t, b.Findings)) || !bytes.Equal(jsonOf(t, a.Access), jsonOf(t, b.Access)) ||
		!bytes.Equal(jsonOf(t, a.Maturity), jsonOf(t, b.Maturity)) {
		t.Fatal("reports differ between the live and the file snapshot")
	}
	for check, object := range map[string]string{
		"anonymous-access":        "ClusterRoleBinding anonymous-secrets",
		"literal-credentials":     "ConfigMap shop/settings",
		"secret-readers":          "User reader",
		"secret-escalation":       "User pod-creator",
		"cluster-admin-bindings":  "ClusterRoleBinding bot-admin",
		"wildcard-rules":          "ClusterRole too-broad",
		"legacy-token-secrets":    "Secret ops/bot-token",
		"tls-expired":             "Secret shop/tls-expired",
		"tls-expiring":            "Secret shop/tls-soon",
		"secrets-in-env":          "Deployment shop/web",
		"secret-mount-unused":     "Deployment shop/web",
		"secret-shared":           "Secret shop/db",
		"unused-secrets":          "Secret shop/unused",
		"token-automount":         "Deployment shop/web",
		"default-service-account": "Pod shop/worker",
		"external-store":          "Deployment shop/web",
	} {
		if got := findingsOf(a, check); !slices.Contains(got, object) {
			t.Errorf("%s: findings on %v, want %s", check, got, object)
		}
	}
	// Every escalation user of the scenario reaches Secrets.
	reached := map[string]bool{}
	for _, sa := range a.Access {
		reached[sa.Subject.String()] = true
	}
	for _, u := range []string{"reader", "named-reader", "pod-creator", "updater", "execer", "attacher", "debugger", "impersonator",
		"group-impersonator", "binder", "escalator", "token-minter", "secret-writer", "ci-pod-creator", "ops-reader", "node-proxy",
		"csr-approver", "webhook-admin", "agg-user"} {
		if !reached["User "+u] {
			t.Errorf("User %s has no path to Secrets", u)
		}
	}
}

// TestLivePartialRead reads as a user who may list RBAC objects and the
// namespaces, and pods only in namespace shop: the loader falls back to
// per-namespace reads, records what it could not read, and the report says
// which checks that leaves unjudged.
func TestLivePartialRead(t *testing.T) {
	setup(t)
	ctx := t.Context()
	objs := []posturetest.Object{
		posturetest.ClusterRole("posture-auditor",
			posturetest.Rule("list", "core", "namespaces"),
			posturetest.Rule("list", "rbac.authorization.k8s.io", "roles,rolebindings,clusterroles,clusterrolebindings")),
		posturetest.ClusterRoleBinding("posture-auditor", "posture-auditor", posturetest.User("auditor")),
		posturetest.Role("shop", "posture-auditor-pods", posturetest.Rule("list", "core", "pods")),
		posturetest.RoleBinding("shop", "posture-auditor-pods", "Role", "posture-auditor-pods", posturetest.User("auditor")),
	}
	if err := load(ctx, cluster.Client, objs); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(cluster.AdminConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "auditor"}
	snap, err := posture.LoadCluster(ctx, cfg, posture.ClusterOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	gaps := map[string][]string{}
	for _, g := range snap.Gaps {
		gaps[g.Resource] = append(gaps[g.Resource], g.Namespace)
		if g.Reason != "forbidden" {
			t.Errorf("gap %+v: want forbidden", g)
		}
	}
	if got := gaps["secrets"]; !slices.Equal(got, []string{""}) {
		t.Errorf("secrets gaps = %q, want one for all namespaces", got)
	}
	if got := gaps["pods"]; len(got) == 0 || slices.Contains(got, "shop") || slices.Contains(got, "") {
		t.Errorf("pods gaps = %q, want every namespace but shop", got)
	}
	if len(gaps["roles"]) > 0 || len(snap.ClusterRoleBindings) == 0 {
		t.Errorf("RBAC not read: gaps %v", gaps["roles"])
	}
	for _, p := range snap.Pods {
		if p.Namespace != "shop" {
			t.Errorf("pod %s/%s read outside shop", p.Namespace, p.Name)
		}
	}
	if len(snap.Pods) == 0 {
		t.Error("no pods read in shop")
	}
	rep := analyze(t, snap)
	for _, c := range rep.Checks {
		switch c.ID {
		case "legacy-token-secrets", "stale-secrets", "tls-expired":
			if c.Status != posture.StatusNotEvaluated || !strings.Contains(c.Note, "secrets") {
				t.Errorf("%s: %s (%s), want not evaluated for lack of secrets", c.ID, c.Status, c.Note)
			}
		case "secret-escalation":
			if c.Status == posture.StatusNotEvaluated {
				t.Errorf("%s not evaluated though RBAC was read", c.ID)
			}
		case "secrets-in-env":
			if !strings.Contains(c.Note, "could not read") {
				t.Errorf("%s: note %q does not say what was missing", c.ID, c.Note)
			}
		}
	}
	var table bytes.Buffer
	if err := posture.WriteTable(&table, rep, posture.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "could not read secrets in all namespaces: forbidden") {
		t.Errorf("table does not report the gap:\n%s", table.String())
	}

	// Without list on namespaces the loader cannot fall back; with -n it
	// reads just the namespaces given.
	only, err := posture.LoadCluster(ctx, cfg, posture.ClusterOptions{Now: fixedNow, Namespaces: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(only.Pods) != len(snap.Pods) || !strings.Contains(only.Source, "namespaces shop") {
		t.Errorf("namespace-limited read: %d pods (want %d), source %q", len(only.Pods), len(snap.Pods), only.Source)
	}
	if _, err := cluster.Client.RbacV1().ClusterRoleBindings().Get(ctx, "posture-auditor", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}
