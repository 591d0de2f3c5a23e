package posturetest

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Literal credentials the scenario plants; they are well-formed fakes.
const (
	GitHubToken = "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"
	AWSKeyID    = "AKIAQYLPMN5HHHFPZAM2"
)

// Scenario returns a small cluster in which every escalation edge and
// every check has an example: one user per edge (named after it), a
// service-account chain, an aggregated role, legacy token Secrets,
// literal credentials, secrets in env vars, expired and expiring
// certificates. Objects are in creation order (namespaces and service
// accounts first). now fixes certificate expiry.
func Scenario(now time.Time) []Object {
	r := Rule
	objs := []Object{
		NS("shop"), NS("ci"), NS("ops"),
		SA("shop", "default", nil), SA("ci", "default", nil), SA("ops", "default", nil),
		SA("shop", "app", nil), SA("shop", "quiet", Bool(false)), SA("ci", "deployer", nil), SA("ops", "bot", nil),

		// Secrets.
		Secret("shop", "db", "", map[string][]byte{"password": []byte("correct horse battery staple")}),
		Secret("shop", "unused", "", map[string][]byte{"k": []byte("v")}),
		func() Object {
			s := Secret("shop", "frozen", "", map[string][]byte{"k": []byte("v")})
			s.Immutable = Bool(true)
			return s
		}(),
		func() Object {
			s := Secret("shop", "synced", "", map[string][]byte{"k": []byte("v")})
			s.Labels = map[string]string{"reconcile.external-secrets.io/managed": "true"}
			return s
		}(),
		TLSSecret("shop", "tls-expired", now.Add(-48*time.Hour)),
		TLSSecret("shop", "tls-soon", now.Add(10*24*time.Hour)),
		TLSSecret("shop", "tls-fine", now.Add(300*24*time.Hour)),
		TokenSecret("ops", "bot-token", "bot"),
		ConfigMap("shop", "settings", map[string]string{"aws.ini": "[default]\naws_access_key_id = " + AWSKeyID + "\n", "mode": "fast"}),

		// Workloads.
		Deployment("shop", "web", func() corev1.PodSpec {
			c := Container("web")
			c.Env = []corev1.EnvVar{
				{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				{Name: "GITHUB_TOKEN", Value: GitHubToken},
			}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/tls"}}
			s := Spec("app", c)
			s.Volumes = []corev1.Volume{
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls-fine"}}},
				{Name: "spare", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "synced"}}},
			}
			return s
		}()),
		Pod("shop", "worker", func() corev1.PodSpec {
			c := Container("worker")
			c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
			return Spec("", c)
		}()),
		func() Object {
			p := Pod("shop", "injected", Spec("quiet"))
			p.Annotations = map[string]string{"coffer.example.com/inject": "true"}
			return p
		}(),
		Pod("ops", "runner", Spec("bot")),

		// Roles.
		ClusterRole("secret-reader", r("get,list,watch", "core", "secrets")),
		ClusterRole("pod-creator", r("create", "core", "pods")),
		ClusterRole("deployer", r("create,update,patch", "apps", "deployments")),
		ClusterRole("pod-patcher", r("patch", "core", "pods")),
		ClusterRole("execer", r("create", "core", "pods/exec")),
		ClusterRole("attacher", r("create", "core", "pods/attach")),
		ClusterRole("debugger", r("patch", "core", "pods/ephemeralcontainers")),
		ClusterRole("sa-impersonator", r("impersonate", "core", "serviceaccounts", "app")),
		ClusterRole("group-impersonator", r("impersonate", "core", "users,groups")),
		ClusterRole("binder", r("create", "rbac.authorization.k8s.io", "rolebindings"), r("bind", "rbac.authorization.k8s.io", "clusterroles")),
		ClusterRole("escalator", r("escalate,update", "rbac.authorization.k8s.io", "roles")),
		ClusterRole("token-minter", r("create", "core", "serviceaccounts/token")),
		ClusterRole("secret-writer", r("create,get", "core", "secrets")),
		ClusterRole("node-proxy", r("get", "core", "nodes/proxy")),
		ClusterRole("csr-approver",
			r("create,get", "certificates.k8s.io", "certificatesigningrequests"),
			r("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
			r("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client")),
		ClusterRole("webhook-admin", r("create,update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations")),
		ClusterRole("too-broad", r("*", "apps", "*")),
		ClusterRole("configmap-lister", r("list", "core", "configmaps")),
		Aggregated("shop-viewer", "example.com/aggregate-to-shop-viewer"),
		Labeled(ClusterRole("secret-peek", r("get", "core", "secrets")), "example.com/aggregate-to-shop-viewer", "true"),
		Role("shop", "db-only", r("get", "core", "secrets", "db")),

		// Bindings: one user per edge, in namespace shop unless said.
		RoleBinding("shop", "reader", "ClusterRole", "secret-reader", User("reader"), ServiceAccount("shop", "app")),
		RoleBinding("shop", "named-reader", "Role", "db-only", User("named-reader")),
		RoleBinding("shop", "pod-creator", "ClusterRole", "pod-creator", User("pod-creator")),
		RoleBinding("shop", "deployer", "ClusterRole", "deployer", ServiceAccount("ci", "deployer")),
		RoleBinding("shop", "updater", "ClusterRole", "pod-patcher", User("updater")),
		RoleBinding("shop", "execer", "ClusterRole", "execer", User("execer")),
		RoleBinding("shop", "attacher", "ClusterRole", "attacher", User("attacher")),
		RoleBinding("shop", "debugger", "ClusterRole", "debugger", User("debugger")),
		RoleBinding("shop", "impersonator", "ClusterRole", "sa-impersonator", User("impersonator")),
		ClusterRoleBinding("group-impersonator", "group-impersonator", User("group-impersonator")),
		RoleBinding("shop", "binder", "ClusterRole", "binder", User("binder")),
		RoleBinding("shop", "escalator", "ClusterRole", "escalator", User("escalator")),
		RoleBinding("shop", "token-minter", "ClusterRole", "token-minter", User("token-minter")),
		RoleBinding("ci", "secret-writer", "ClusterRole", "secret-writer", User("secret-writer")),
		RoleBinding("ci", "ci-pods", "ClusterRole", "pod-creator", User("ci-pod-creator")),
		RoleBinding("ops", "ops-reader", "ClusterRole", "secret-reader", User("ops-reader")),
		ClusterRoleBinding("node-proxy", "node-proxy", User("node-proxy")),
		ClusterRoleBinding("csr-approver", "csr-approver", User("csr-approver")),
		ClusterRoleBinding("webhook-admin", "webhook-admin", User("webhook-admin")),
		ClusterRoleBinding("bot-admin", "cluster-admin", ServiceAccount("ops", "bot")),
		ClusterRoleBinding("everyone-configmaps", "configmap-lister", Group("system:authenticated")),
		ClusterRoleBinding("anonymous-secrets", "secret-peek", Group("system:unauthenticated")),
		RoleBinding("shop", "viewer", "ClusterRole", "shop-viewer", User("agg-user")),
		RoleBinding("shop", "devs", "ClusterRole", "secret-reader", Group("devs")),
		RoleBinding("ops", "default-rights", "ClusterRole", "configmap-lister", ServiceAccount("ops", "default")),
	}
	return objs
}

// SetCreated backdates an object's creation time; posture reads it for
// the age of a Secret. Only file fixtures can do this: the apiserver sets
// creation times itself.
func SetCreated(o Object, t time.Time) {
	if m, ok := o.(metav1.Object); ok {
		m.SetCreationTimestamp(metav1.NewTime(t))
	}
}
