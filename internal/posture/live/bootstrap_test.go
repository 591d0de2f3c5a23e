package live

import (
	"os"
	"sort"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestWriteBootstrapRoles regenerates posture's copy of the apiserver's
// default ClusterRoles when COFFER_WRITE_BOOTSTRAP_ROLES names the file
// (internal/posture/bootstrap_roles.yaml); otherwise it only checks that
// the apiserver has them.
func TestWriteBootstrapRoles(t *testing.T) {
	list, err := cluster.Client.RbacV1().ClusterRoles().List(t.Context(), metav1.ListOptions{LabelSelector: "kubernetes.io/bootstrapping=rbac-defaults"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) < 20 {
		t.Fatalf("only %d default ClusterRoles", len(list.Items))
	}
	path := os.Getenv("COFFER_WRITE_BOOTSTRAP_ROLES")
	if path == "" {
		return
	}
	var out []rbacv1.ClusterRole
	for _, cr := range list.Items {
		out = append(out, rbacv1.ClusterRole{
			TypeMeta:        metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta:      metav1.ObjectMeta{Name: cr.Name, Labels: cr.Labels},
			Rules:           cr.Rules,
			AggregationRule: cr.AggregationRule,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": out})
	if err != nil {
		t.Fatal(err)
	}
	head := "# The default ClusterRoles of kube-apiserver v1.34.4 (label kubernetes.io/bootstrapping=rbac-defaults),\n" +
		"# used for manifests that bind them without defining them. Regenerate with:\n" +
		"#   COFFER_WRITE_BOOTSTRAP_ROLES=$PWD/internal/posture/bootstrap_roles.yaml go test ./internal/posture/live -run TestWriteBootstrapRoles\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d ClusterRoles to %s", len(out), path)
}
