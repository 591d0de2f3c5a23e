package posturetest

import (
	"fmt"
	"math/rand/v2"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SyntheticConfig sizes a generated cluster.
type SyntheticConfig struct {
	Namespaces int
	// Bindings is the number of RoleBindings and ClusterRoleBindings;
	// roles come on top (3 per namespace and 20 cluster roles).
	Bindings int
	Pods     int
	Secrets  int
	Seed     uint64
	// Now is the reference time for certificates and ages.
	Now time.Time
}

// IssueScale is the size the posture issue sets its speed target at:
// 2,000 RBAC objects, 3,000 pods and 5,000 Secrets (10,000 objects with
// namespaces, service accounts and controllers).
var IssueScale = SyntheticConfig{Namespaces: 100, Bindings: 1680, Pods: 3000, Secrets: 5000, Seed: 1}

// LargeScale is a large cluster: 5,000 bindings and 20,000 pods.
var LargeScale = SyntheticConfig{Namespaces: 400, Bindings: 5000, Pods: 20000, Secrets: 10000, Seed: 2}

// Synthetic generates a cluster: per namespace five service accounts and
// three roles; Deployments with ReplicaSets owning most pods, the rest bare
// pods; Secrets of every type (some TLS, some legacy tokens, some stale);
// bindings to users, groups and service accounts, a tenth of them
// cluster-wide; a few ConfigMaps with a literal credential. The same
// config always yields the same objects.
func Synthetic(c SyntheticConfig) []Object {
	if c.Now.IsZero() {
		c.Now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	certOK, keyOK := Cert("synthetic-ok", c.Now.Add(200*24*time.Hour))
	certOld, keyOld := Cert("synthetic-old", c.Now.Add(-24*time.Hour))
	ns := func(i int) string { return fmt.Sprintf("team-%03d", i) }
	var out []Object
	for i := range c.Namespaces {
		n := ns(i)
		out = append(out, NS(n), SA(n, "default", nil))
		for j := range 5 {
			out = append(out, SA(n, fmt.Sprintf("sa-%d", j), nil))
		}
		out = append(out,
			Role(n, "reader", Rule("get,list", "core", "secrets")),
			Role(n, "dev", Rule("create,get,list", "core", "pods"), Rule("create", "core", "pods/exec")),
			Role(n, "viewer", Rule("get,list,watch", "core", "configmaps,pods,services")),
		)
		cm := map[string]string{"mode": "prod", "replicas": "3"}
		if i%10 == 0 {
			cm["aws"] = "aws_access_key_id = " + AWSKeyID
		}
		out = append(out, ConfigMap(n, "settings", cm))
	}
	clusterRoles := []string{"edit", "view", "admin"}
	for k := range 17 {
		name := fmt.Sprintf("custom-%02d", k)
		clusterRoles = append(clusterRoles, name)
		rules := []rbacv1.PolicyRule{Rule("get,list", "apps", "deployments,replicasets")}
		switch k % 4 {
		case 0:
			rules = append(rules, Rule("get", "core", "secrets"))
		case 1:
			rules = append(rules, Rule("create", "apps", "deployments"))
		case 2:
			rules = append(rules, Rule("impersonate", "core", "serviceaccounts"))
		}
		out = append(out, Labeled(ClusterRole(name, rules...), "example.com/aggregate-to-custom", fmt.Sprint(k%2 == 0)))
	}
	out = append(out, Aggregated("custom-all", "example.com/aggregate-to-custom"))
	clusterRoles = append(clusterRoles, "custom-all")

	// Secrets, spread evenly.
	type sref struct{ ns, name string }
	var secrets []sref
	for k := range c.Secrets {
		n := ns(k % max(1, c.Namespaces))
		name := fmt.Sprintf("secret-%05d", k)
		var s *corev1.Secret
		switch k % 20 {
		case 0:
			s = Secret(n, name, corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: certOK, corev1.TLSPrivateKeyKey: keyOK})
		case 1:
			s = Secret(n, name, corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: certOld, corev1.TLSPrivateKeyKey: keyOld})
		case 2:
			s = TokenSecret(n, name, fmt.Sprintf("sa-%d", k%5))
		case 3:
			s = Secret(n, name, corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)})
		case 4:
			s = Secret(n, name, "helm.sh/release.v1", map[string][]byte{"release": []byte("H4sI")})
		default:
			s = Secret(n, name, "", map[string][]byte{"password": []byte("p"), "user": []byte("u")})
		}
		s.CreationTimestamp = metav1.NewTime(c.Now.Add(-time.Duration(rng.IntN(400)) * 24 * time.Hour))
		out = append(out, s)
		secrets = append(secrets, sref{n, name})
	}
	secretIn := func(n string) string {
		for range 8 {
			s := secrets[rng.IntN(len(secrets))]
			if s.ns == n {
				return s.name
			}
		}
		return "missing"
	}

	// Pods: groups of five under a Deployment and its ReplicaSet, every
	// third group bare.
	for k := 0; k < c.Pods; k += 5 {
		n := ns(rng.IntN(max(1, c.Namespaces)))
		sa := fmt.Sprintf("sa-%d", rng.IntN(5))
		if rng.IntN(6) == 0 {
			sa = ""
		}
		ctr := Container("app")
		ctr.Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretIn(n)}, Key: "password"}}}, {Name: "MODE", Value: "prod"}}
		ctr.VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}
		spec := Spec(sa, ctr)
		spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretIn(n)}}}}
		name := fmt.Sprintf("app-%05d", k/5)
		group := (k / 5) % 3
		var owner *metav1.OwnerReference
		if group != 0 {
			d := Deployment(n, name, spec)
			rs := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
				ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: name + "-7d9f", OwnerReferences: []metav1.OwnerReference{controller("Deployment", name)}},
				Spec:       appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
			out = append(out, d, rs)
			o := controller("ReplicaSet", rs.Name)
			owner = &o
		}
		for p := range min(5, c.Pods-k) {
			pod := Pod(n, fmt.Sprintf("%s-%d", name, p), spec)
			if owner != nil {
				pod.OwnerReferences = []metav1.OwnerReference{*owner}
			}
			out = append(out, pod)
		}
	}

	// Bindings.
	for k := range c.Bindings {
		var subjects []rbacv1.Subject
		for range 1 + rng.IntN(3) {
			switch rng.IntN(3) {
			case 0:
				subjects = append(subjects, User(fmt.Sprintf("user-%04d", rng.IntN(max(1, c.Bindings/4)))))
			case 1:
				subjects = append(subjects, Group(fmt.Sprintf("group-%03d", rng.IntN(max(1, c.Bindings/20)))))
			default:
				subjects = append(subjects, ServiceAccount(ns(rng.IntN(max(1, c.Namespaces))), fmt.Sprintf("sa-%d", rng.IntN(5))))
			}
		}
		name := fmt.Sprintf("binding-%05d", k)
		if k%10 == 0 {
			out = append(out, ClusterRoleBinding(name, clusterRoles[rng.IntN(len(clusterRoles))], subjects...))
			continue
		}
		n := ns(rng.IntN(max(1, c.Namespaces)))
		if rng.IntN(2) == 0 {
			out = append(out, RoleBinding(n, name, "Role", []string{"reader", "dev", "viewer"}[rng.IntN(3)], subjects...))
		} else {
			out = append(out, RoleBinding(n, name, "ClusterRole", clusterRoles[rng.IntN(len(clusterRoles))], subjects...))
		}
	}
	return out
}

func controller(kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: Bool(true)}
}
