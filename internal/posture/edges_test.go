package posture_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
	"github.com/cofferhq/coffer/internal/posture/rbac"
)

type rbacRule = rbacv1.PolicyRule

func volume(secret string) corev1.Volume {
	return corev1.Volume{Name: "v-" + secret, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
}

func kinds(a posture.Access) []string {
	var out []string
	for _, s := range a.Path {
		out = append(out, s.Kind)
	}
	return out
}

// findAccess returns the access of subject sub to target.
func findAccess(acc []posture.SubjectAccess, target string) (posture.Access, bool) {
	for _, sa := range acc {
		for _, a := range sa.Access {
			if a.Target.String() == target {
				return a, true
			}
		}
	}
	return posture.Access{}, false
}

func TestEscalationEdges(t *testing.T) {
	t.Parallel()
	pt := posturetest.Rule
	// base: a pod in shop mounting Secret s and running as SA shop/runner,
	// which can list secrets in namespace vault.
	podWith := func(sa string, automount *bool) []posturetest.Object {
		spec := posturetest.Spec(sa)
		spec.AutomountServiceAccountToken = automount
		spec.Volumes = append(spec.Volumes, volume("s"))
		return []posturetest.Object{
			posturetest.SA("shop", sa, nil),
			posturetest.Pod("shop", "p", spec),
			posturetest.ClusterRole("vault-reader", pt("list", "core", "secrets")),
			posturetest.RoleBinding("vault", "runner", "ClusterRole", "vault-reader", posturetest.ServiceAccount("shop", sa)),
		}
	}
	bindTo := func(kind, ns string, rules ...rbacRule) []posturetest.Object {
		cr := posturetest.ClusterRole("power", rules...)
		if kind == "cluster" {
			return []posturetest.Object{cr, posturetest.ClusterRoleBinding("power", "power", posturetest.User("eve"))}
		}
		return []posturetest.Object{cr, posturetest.RoleBinding(ns, "power", "ClusterRole", "power", posturetest.User("eve"))}
	}
	cat := func(parts ...[]posturetest.Object) []posturetest.Object { return slices.Concat(parts...) }

	cases := []struct {
		name   string
		objs   []posturetest.Object
		target string
		path   []string // nil: must not reach
	}{
		{"get secrets", bindTo("ns", "shop", pt("get", "core", "secrets")), "all Secrets in namespace shop", []string{"read-secrets"}},
		{"list secrets everywhere", bindTo("cluster", "", pt("list", "core", "secrets")), "all Secrets in every namespace", []string{"read-secrets"}},
		{"get one secret", bindTo("ns", "shop", pt("get", "core", "secrets", "db")), "Secret shop/db", []string{"read-secrets"}},
		{"create pods", bindTo("ns", "shop", pt("create", "core", "pods")), "all Secrets in namespace shop", []string{"create-pods"}},
		{"create pods then act as a service account", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "pods"))),
			"all Secrets in namespace vault", []string{"create-pods", "any-service-account", "read-secrets"}},
		{"create deployments", bindTo("ns", "shop", pt("create", "apps", "deployments")), "all Secrets in namespace shop", []string{"pod-controller"}},
		{"create cronjobs", bindTo("ns", "shop", pt("create", "batch", "cronjobs")), "all Secrets in namespace shop", []string{"pod-controller"}},
		{"create replicationcontrollers", bindTo("ns", "shop", pt("create", "core", "replicationcontrollers")), "all Secrets in namespace shop", []string{"pod-controller"}},
		{"patch one daemonset", bindTo("ns", "shop", pt("patch", "apps", "daemonsets", "agent")), "all Secrets in namespace shop", []string{"pod-controller"}},
		{"create with a name is no power", bindTo("ns", "shop", pt("create", "apps", "statefulsets", "x")), "all Secrets in namespace shop", nil},
		{"update pods", cat(podWith("runner", nil), bindTo("ns", "shop", pt("update", "core", "pods"))), "Secret shop/s", []string{"update-pods", "mounts"}},
		{"exec", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "pods/exec"))), "all Secrets in namespace vault", []string{"pods-exec", "runs-as", "read-secrets"}},
		{"exec by websocket get", cat(podWith("runner", nil), bindTo("ns", "shop", pt("get", "core", "pods/exec"))), "Secret shop/s", []string{"pods-exec", "mounts"}},
		{"exec without a mounted token", cat(podWith("runner", posturetest.Bool(false)), bindTo("ns", "shop", pt("create", "core", "pods/exec"))), "all Secrets in namespace vault", nil},
		{"exec into a named pod", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "pods/exec", "p"))), "Secret shop/s", []string{"pods-exec", "mounts"}},
		{"attach", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "pods/attach"))), "Secret shop/s", []string{"pods-attach", "mounts"}},
		{"ephemeral containers", cat(podWith("runner", nil), bindTo("ns", "shop", pt("patch", "core", "pods/ephemeralcontainers"))), "all Secrets in namespace vault", []string{"ephemeral-containers", "runs-as", "read-secrets"}},
		{"impersonate a service account", cat(podWith("runner", nil), bindTo("ns", "shop", pt("impersonate", "core", "serviceaccounts", "runner"))), "all Secrets in namespace vault", []string{"impersonate", "read-secrets"}},
		{"impersonate a user", cat(
			[]posturetest.Object{posturetest.ClusterRole("r", pt("get", "core", "secrets")), posturetest.RoleBinding("vault", "alice", "ClusterRole", "r", posturetest.User("alice"))},
			bindTo("cluster", "", pt("impersonate", "core", "users", "alice"))), "all Secrets in namespace vault", []string{"impersonate", "read-secrets"}},
		{"impersonate groups needs a user", bindTo("cluster", "", pt("impersonate", "core", "groups")), "all Secrets in every namespace", nil},
		{"impersonate system:masters", bindTo("cluster", "", pt("impersonate", "core", "users,groups")), "all Secrets in every namespace", []string{"impersonate", "read-secrets"}},
		{"bind any cluster role", bindTo("ns", "shop", pt("create", "rbac.authorization.k8s.io", "rolebindings"), pt("bind", "rbac.authorization.k8s.io", "clusterroles")),
			"all Secrets in namespace shop", []string{"bind", "read-secrets"}},
		{"bind alone is not enough", bindTo("ns", "shop", pt("bind", "rbac.authorization.k8s.io", "clusterroles")), "all Secrets in namespace shop", nil},
		{"bind a named role", cat(
			[]posturetest.Object{posturetest.ClusterRole("peek", pt("get", "core", "secrets"))},
			bindTo("ns", "shop", pt("create", "rbac.authorization.k8s.io", "rolebindings"), pt("bind", "rbac.authorization.k8s.io", "clusterroles", "peek"))),
			"all Secrets in namespace shop", []string{"bind", "read-secrets"}},
		{"bind a harmless role", cat(
			[]posturetest.Object{posturetest.ClusterRole("cm", pt("get", "core", "configmaps"))},
			bindTo("ns", "shop", pt("create", "rbac.authorization.k8s.io", "rolebindings"), pt("bind", "rbac.authorization.k8s.io", "clusterroles", "cm"))),
			"all Secrets in namespace shop", nil},
		{"cluster role bindings", bindTo("cluster", "", pt("create", "rbac.authorization.k8s.io", "clusterrolebindings"), pt("bind", "rbac.authorization.k8s.io", "clusterroles")),
			"all Secrets in every namespace", []string{"bind", "read-secrets"}},
		{"escalate roles", bindTo("ns", "shop", pt("escalate,patch", "rbac.authorization.k8s.io", "roles")), "all Secrets in namespace shop", []string{"escalate", "read-secrets"}},
		{"escalate cluster roles", bindTo("cluster", "", pt("escalate,update", "rbac.authorization.k8s.io", "clusterroles")), "all Secrets in every namespace", []string{"escalate", "read-secrets"}},
		{"mint a token", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "serviceaccounts/token", "runner"))), "all Secrets in namespace vault", []string{"serviceaccount-token", "read-secrets"}},
		{"mint any token", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create", "core", "serviceaccounts/token"))), "all Secrets in namespace vault", []string{"serviceaccount-token", "any-service-account", "read-secrets"}},
		{"write a token secret", cat(podWith("runner", nil), bindTo("ns", "shop", pt("create,get", "core", "secrets"))), "all Secrets in namespace vault", []string{"token-secret", "any-service-account", "read-secrets"}},
		{"read a stored token", cat(podWith("runner", nil),
			[]posturetest.Object{posturetest.TokenSecret("shop", "runner-token", "runner")},
			bindTo("ns", "shop", pt("list", "core", "secrets"))), "all Secrets in namespace vault", []string{"read-secrets", "stored-token", "read-secrets"}},
		{"nodes proxy", cat(podWith("runner", nil), bindTo("cluster", "", pt("get", "core", "nodes/proxy"))), "Secret shop/s", []string{"nodes-proxy", "every-namespace", "mounts"}},
		{"nodes proxy needs a cluster binding", cat(podWith("runner", nil), bindTo("ns", "shop", pt("get", "core", "nodes/proxy"))), "Secret shop/s", nil},
		{"approve a client certificate", bindTo("cluster", "",
			pt("create", "certificates.k8s.io", "certificatesigningrequests"),
			pt("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
			pt("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client")),
			"all Secrets in every namespace", []string{"csr-approval", "read-secrets"}},
		{"approve another signer", bindTo("cluster", "",
			pt("create", "certificates.k8s.io", "certificatesigningrequests"),
			pt("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
			pt("approve", "certificates.k8s.io", "signers", "example.com/other")),
			"all Secrets in every namespace", nil},
		{"mutating webhooks", bindTo("cluster", "", pt("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations")), "all Secrets in every namespace", []string{"webhook-configuration"}},
		{"validating webhooks", bindTo("cluster", "", pt("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations")), "all Secrets in every namespace", []string{"webhook-configuration"}},
		{"aggregated role", []posturetest.Object{
			posturetest.Aggregated("agg", "example.com/agg"),
			posturetest.Labeled(posturetest.ClusterRole("part", pt("get", "core", "secrets")), "example.com/agg", "true"),
			posturetest.RoleBinding("shop", "agg", "ClusterRole", "agg", posturetest.User("eve")),
		}, "all Secrets in namespace shop", []string{"read-secrets"}},
		{"nothing", bindTo("ns", "shop", pt("get,list", "core", "configmaps,pods")), "all Secrets in namespace shop", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := load(t, c.objs...)
			eve := rbac.Subject{Kind: rbac.UserKind, Name: "eve"}
			acc := posture.Paths(s, &eve)
			a, ok := findAccess(acc, c.target)
			if c.path == nil {
				if ok {
					t.Fatalf("eve reaches %s: %v", c.target, kinds(a))
				}
				return
			}
			if !ok {
				t.Fatalf("eve does not reach %s; reaches %v", c.target, acc)
			}
			if got := kinds(a); !slices.Equal(got, c.path) {
				t.Fatalf("path to %s = %v, want %v", c.target, got, c.path)
			}
			first := a.Path[0]
			if first.Reason == "" || (first.Kind != "every-namespace" && len(first.Via) == 0) {
				t.Errorf("first step is not explained: %+v", first)
			}
			if !strings.Contains(strings.Join(first.Via, " "), "power") && c.name != "aggregated role" {
				t.Errorf("first step does not name the binding: %v", first.Via)
			}
		})
	}
}

func TestInheritedPaths(t *testing.T) {
	t.Parallel()
	s := load(t,
		posturetest.ClusterRole("r", posturetest.Rule("list", "core", "secrets")),
		posturetest.ClusterRoleBinding("everyone", "r", posturetest.Group("system:authenticated")),
		posturetest.ClusterRoleBinding("alice", "r", posturetest.User("alice")),
		posturetest.ClusterRoleBinding("bob", "other", posturetest.User("bob")),
		posturetest.ClusterRole("other", posturetest.Rule("get", "core", "pods")),
	)
	bob := rbac.Subject{Kind: rbac.UserKind, Name: "bob"}
	acc := posture.Paths(s, &bob)
	a, ok := findAccess(acc, "all Secrets in every namespace")
	if !ok || !a.Inherited || !strings.Contains(a.Path[0].Via[0], "as Group system:authenticated") {
		t.Fatalf("bob's access = %+v, want inherited from system:authenticated", acc)
	}
	all := posture.Paths(s, nil)
	var subjects []string
	for _, sa := range all {
		subjects = append(subjects, sa.Subject.Key())
	}
	if want := []string{"Group:system:authenticated", "User:alice"}; !slices.Equal(subjects, want) {
		t.Errorf("subjects with paths = %v, want %v (bob only inherits)", subjects, want)
	}
}
