package posture_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

type fixture struct {
	objs       []posturetest.Object
	encryption string // EncryptionConfiguration YAML
	manifest   string // kube-apiserver manifest YAML
}

func objs(o ...posturetest.Object) fixture { return fixture{objs: o} }

func (f fixture) report(t *testing.T) *posture.Report {
	t.Helper()
	var o posture.FileOptions
	if f.encryption != "" {
		o.EncryptionConfig = writeFile(t, "encryption.yaml", f.encryption)
	}
	if f.manifest != "" {
		o.APIServerManifest = writeFile(t, "kube-apiserver.yaml", f.manifest)
	}
	objs := f.objs
	if len(objs) == 0 {
		objs = []posturetest.Object{posturetest.NS("empty")}
	}
	return analyze(t, loadWith(t, o, objs...))
}

func result(rep *posture.Report, id string) posture.CheckResult {
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	panic("no check " + id)
}

func encryptionConfig(providers string) string {
	return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n" + providers
}

const (
	identityFirst = "  - identity: {}\n  - aescbc: {keys: [{name: k1, secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaw==}]}\n"
	aescbcFirst   = "  - aescbc: {keys: [{name: k1, secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaw==}]}\n  - identity: {}\n"
	kmsV2First    = "  - kms: {apiVersion: v2, name: coffer, endpoint: unix:///run/coffer/kms.sock}\n  - identity: {}\n"
	kmsV1First    = "  - kms: {name: old, endpoint: unix:///run/kms.sock, cachesize: 100}\n"
)

func apiserverManifest(flags ...string) string {
	cmd := "    - kube-apiserver\n    - --authorization-mode=Node,RBAC\n"
	for _, f := range flags {
		cmd += "    - " + f + "\n"
	}
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system, labels: {component: kube-apiserver}}\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.34.4\n    command:\n" + cmd
}

func envSecret(name, secret string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "k"}}}
}

func withEnv(env ...corev1.EnvVar) corev1.PodSpec {
	c := posturetest.Container("app")
	c.Env = env
	return posturetest.Spec("app", c)
}

func mounted(secret string) corev1.PodSpec {
	c := posturetest.Container("app")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "v-" + secret, MountPath: "/s"}}
	s := posturetest.Spec("app", c)
	s.Volumes = []corev1.Volume{volume(secret)}
	return s
}

func aged(s *corev1.Secret, days int) *corev1.Secret {
	s.CreationTimestamp = metav1.NewTime(now.Add(-time.Duration(days) * 24 * time.Hour))
	return s
}

func immutable(s *corev1.Secret) *corev1.Secret {
	s.Immutable = posturetest.Bool(true)
	return s
}

// TestChecks has a failing and a passing fixture for every check.
func TestChecks(t *testing.T) {
	t.Parallel()
	pt := posturetest.Rule
	sa := posturetest.SA
	app := sa("shop", "app", nil)
	cases := []struct {
		check  string
		fail   fixture
		object string // the failing finding's object
		pass   fixture
	}{
		{"anonymous-access",
			objs(posturetest.ClusterRole("r", pt("list", "core", "configmaps")), posturetest.ClusterRoleBinding("b", "r", posturetest.Group("system:authenticated"))),
			"ClusterRoleBinding b",
			objs(posturetest.ClusterRole("r", posturetest.URLRule("get", "/healthz")), posturetest.ClusterRoleBinding("b", "r", posturetest.Group("system:unauthenticated")))},
		{"literal-credentials",
			objs(app, posturetest.Deployment("shop", "web", withEnv(corev1.EnvVar{Name: "GITHUB_TOKEN", Value: posturetest.GitHubToken}))),
			"Deployment shop/web",
			objs(app, posturetest.Deployment("shop", "web", withEnv(corev1.EnvVar{Name: "MODE", Value: "fast"})), posturetest.ConfigMap("shop", "c", map[string]string{"x": "y"}))},
		{"literal-credentials",
			objs(posturetest.ConfigMap("shop", "aws", map[string]string{"credentials": "aws_access_key_id = " + posturetest.AWSKeyID + "\n"})),
			"ConfigMap shop/aws",
			objs(posturetest.ConfigMap("shop", "aws", map[string]string{"region": "eu-west-1"}))},
		{"literal-credentials",
			objs(app, posturetest.Pod("shop", "cli", func() corev1.PodSpec {
				c := posturetest.Container("cli")
				c.Args = []string{"--token", posturetest.GitHubToken}
				return posturetest.Spec("app", c)
			}())),
			"Pod shop/cli",
			objs(app, posturetest.Pod("shop", "cli", posturetest.Spec("app")))},
		{"encryption-missing",
			fixture{manifest: apiserverManifest()}, "kube-apiserver (",
			fixture{manifest: apiserverManifest("--encryption-provider-config=/etc/kubernetes/enc.yaml")}},
		{"encryption-missing",
			fixture{encryption: "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [configmaps]\n  providers:\n" + kmsV2First},
			"EncryptionConfiguration",
			fixture{encryption: encryptionConfig(aescbcFirst)}},
		{"encryption-identity-first",
			fixture{encryption: encryptionConfig(identityFirst)}, "EncryptionConfiguration",
			fixture{encryption: encryptionConfig(aescbcFirst)}},
		{"secret-readers",
			objs(posturetest.ClusterRole("r", pt("get", "core", "secrets")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice"))),
			"User alice",
			objs(posturetest.ClusterRole("r", pt("get", "core", "secrets")), posturetest.ClusterRoleBinding("b", "r", posturetest.ServiceAccount("kube-system", "controller")))},
		{"secret-escalation",
			objs(posturetest.ClusterRole("r", pt("create", "core", "pods")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice"))),
			"User alice",
			objs(posturetest.ClusterRole("r", pt("get,list", "core", "pods")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice")))},
		{"cluster-admin-bindings",
			objs(posturetest.ClusterRoleBinding("ops", "cluster-admin", posturetest.Group("ops"))), "ClusterRoleBinding ops",
			objs(posturetest.ClusterRoleBinding("break-glass", "cluster-admin", posturetest.Group("system:masters")), posturetest.ClusterRoleBinding("v", "view", posturetest.Group("ops")))},
		{"wildcard-rules",
			objs(posturetest.Role("shop", "r", pt("*", "core", "configmaps"))), "Role shop/r",
			objs(posturetest.Role("shop", "r", pt("get", "core", "configmaps")))},
		{"token-automount",
			objs(app, posturetest.ClusterRole("r", pt("get", "core", "pods")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.ServiceAccount("shop", "app")),
				posturetest.Deployment("shop", "web", posturetest.Spec("app"))), "Deployment shop/web",
			objs(sa("shop", "app", posturetest.Bool(false)), posturetest.ClusterRole("r", pt("get", "core", "pods")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.ServiceAccount("shop", "app")),
				posturetest.Deployment("shop", "web", posturetest.Spec("app")))},
		{"default-service-account",
			objs(posturetest.Deployment("shop", "web", posturetest.Spec(""))), "Deployment shop/web",
			objs(app, posturetest.Deployment("shop", "web", posturetest.Spec("app")), sa("shop", "default", posturetest.Bool(false)))},
		{"default-service-account",
			objs(sa("shop", "default", nil), posturetest.ClusterRole("r", pt("get", "core", "pods")), posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.ServiceAccount("shop", "default"))),
			"ServiceAccount shop/default",
			objs(sa("shop", "default", nil))},
		{"secrets-in-env",
			objs(app, posturetest.Deployment("shop", "web", withEnv(envSecret("DB", "db")))), "Deployment shop/web",
			objs(app, posturetest.Deployment("shop", "web", mounted("db")))},
		{"legacy-token-secrets",
			objs(posturetest.TokenSecret("shop", "app-token", "app")), "Secret shop/app-token",
			objs(posturetest.Secret("shop", "db", "", nil))},
		{"stale-secrets",
			objs(aged(posturetest.Secret("shop", "db", "", nil), 400)), "Secret shop/db",
			objs(aged(posturetest.Secret("shop", "db", "", nil), 10))},
		{"unused-secrets",
			objs(app, posturetest.Secret("shop", "orphan", "", nil), posturetest.Secret("shop", "db", "", nil), posturetest.Deployment("shop", "web", mounted("db"))),
			"Secret shop/orphan",
			objs(app, posturetest.Secret("shop", "db", "", nil), posturetest.Deployment("shop", "web", mounted("db")))},
		{"tls-expired",
			objs(posturetest.TLSSecret("shop", "tls", now.Add(-time.Hour))), "Secret shop/tls",
			objs(posturetest.TLSSecret("shop", "tls", now.Add(100*24*time.Hour)))},
		{"tls-expiring",
			objs(posturetest.TLSSecret("shop", "tls", now.Add(5*24*time.Hour))), "Secret shop/tls",
			objs(posturetest.TLSSecret("shop", "tls", now.Add(100*24*time.Hour)))},
		{"mutable-secrets",
			objs(posturetest.Secret("shop", "db", "", nil)), "Secret shop/db",
			objs(immutable(posturetest.Secret("shop", "db", "", nil)))},
		{"secret-mount-unused",
			objs(app, posturetest.Deployment("shop", "web", func() corev1.PodSpec {
				s := posturetest.Spec("app")
				s.Volumes = []corev1.Volume{volume("db")}
				return s
			}())), "Deployment shop/web",
			objs(app, posturetest.Deployment("shop", "web", mounted("db")))},
		{"secret-shared",
			objs(app, posturetest.Secret("shop", "db", "", nil), posturetest.Deployment("shop", "a", mounted("db")), posturetest.Deployment("shop", "b", mounted("db"))),
			"Secret shop/db",
			objs(app, posturetest.Secret("shop", "db", "", nil), posturetest.Secret("shop", "db2", "", nil), posturetest.Deployment("shop", "a", mounted("db")), posturetest.Deployment("shop", "b", mounted("db2")))},
		{"encryption-not-kms-v2",
			fixture{encryption: encryptionConfig(aescbcFirst)}, "EncryptionConfiguration",
			fixture{encryption: encryptionConfig(kmsV2First)}},
		{"encryption-not-kms-v2",
			fixture{encryption: encryptionConfig(kmsV1First)}, "EncryptionConfiguration",
			fixture{encryption: encryptionConfig(kmsV2First)}},
		{"external-store",
			objs(app, posturetest.Secret("shop", "db", "", nil), posturetest.Deployment("shop", "web", mounted("db"))), "Deployment shop/web",
			objs(app, func() *corev1.Secret {
				s := posturetest.Secret("shop", "db", "", nil)
				s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "db", UID: "1"}}
				return s
			}(), posturetest.Deployment("shop", "web", mounted("db")))},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.check] = true
		t.Run(c.check, func(t *testing.T) {
			t.Parallel()
			rep := c.fail.report(t)
			r := result(rep, c.check)
			if r.Status != posture.StatusFail {
				t.Fatalf("failing fixture: status %s (%s), want fail", r.Status, r.Note)
			}
			var objects []string
			for _, f := range rep.Findings {
				if f.Check == c.check {
					objects = append(objects, f.Object)
					if f.Message == "" || f.Fingerprint == "" || f.Severity == "" {
						t.Errorf("finding lacks message, fingerprint or severity: %+v", f)
					}
				}
			}
			if !slices.ContainsFunc(objects, func(o string) bool { return strings.HasPrefix(o, c.object) }) {
				t.Errorf("findings on %v, want one on %q", objects, c.object)
			}
			rep = c.pass.report(t)
			if r := result(rep, c.check); r.Status != posture.StatusPass || r.Evaluated == 0 {
				var fs []string
				for _, f := range rep.Findings {
					if f.Check == c.check {
						fs = append(fs, f.Message)
					}
				}
				t.Fatalf("passing fixture: status %s, %d evaluated (%s); findings %v", r.Status, r.Evaluated, r.Note, fs)
			}
		})
	}
	for _, c := range posture.Checks() {
		if !seen[c.ID] {
			t.Errorf("check %s has no fixtures", c.ID)
		}
	}
}

func TestChecksNotEvaluated(t *testing.T) {
	t.Parallel()
	rep := fixture{}.report(t)
	for _, id := range []string{"encryption-missing", "encryption-identity-first", "encryption-not-kms-v2"} {
		if r := result(rep, id); r.Status != posture.StatusNotEvaluated || !strings.Contains(r.Note, "--encryption-config") {
			t.Errorf("%s without configuration: %s (%s)", id, r.Status, r.Note)
		}
	}
	// The flag alone: encryption is on, its providers unknown.
	rep = fixture{manifest: apiserverManifest("--encryption-provider-config", "/etc/enc.yaml")}.report(t)
	if r := result(rep, "encryption-missing"); r.Status != posture.StatusPass {
		t.Errorf("encryption-missing with the flag: %s", r.Status)
	}
	if r := result(rep, "encryption-identity-first"); r.Status != posture.StatusNotEvaluated {
		t.Errorf("encryption-identity-first with only the flag: %s", r.Status)
	}
}

func TestCheckInfo(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	for _, c := range posture.Checks() {
		if ids[c.ID] {
			t.Errorf("duplicate check %s", c.ID)
		}
		ids[c.ID] = true
		if c.Title == "" || c.Remediation == "" || c.Severity.Rank() < 1 || !slices.Contains(posture.Aspects, c.Aspect) || c.Level < 0 || c.Level > 4 {
			t.Errorf("check %s is incomplete: %+v", c.ID, c)
		}
	}
}
