// Package posturetest builds Kubernetes objects for posture's tests: small
// constructors for hand-written fixtures, a writer for the YAML and JSON
// forms kubectl produces, certificates with chosen expiry, and Synthetic,
// the generator of large clusters for benchmarks.
package posturetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Object is a Kubernetes object of any kind.
type Object = any

func meta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// NS returns a Namespace.
func NS(name string) *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: meta("", name)}
}

// SA returns a ServiceAccount; automount, when not nil, sets
// automountServiceAccountToken.
func SA(ns, name string, automount *bool) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(ns, name),
		AutomountServiceAccountToken: automount}
}

// Bool returns a pointer to b.
func Bool(b bool) *bool { return &b }

// Secret returns a Secret of type typ (Opaque when empty).
func Secret(ns, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	if typ == "" {
		typ = corev1.SecretTypeOpaque
	}
	return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(ns, name), Type: typ, Data: data}
}

// TokenSecret returns a legacy service-account token Secret for account sa.
func TokenSecret(ns, name, sa string) *corev1.Secret {
	s := Secret(ns, name, corev1.SecretTypeServiceAccountToken, nil)
	s.Annotations = map[string]string{corev1.ServiceAccountNameKey: sa}
	return s
}

// TLSSecret returns a kubernetes.io/tls Secret whose certificate expires at
// notAfter.
func TLSSecret(ns, name string, notAfter time.Time) *corev1.Secret {
	cert, key := Cert(name, notAfter)
	return Secret(ns, name, corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key})
}

// ConfigMap returns a ConfigMap.
func ConfigMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta(ns, name), Data: data}
}

// Container returns a container with an image.
func Container(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "registry.example/" + name + ":1"}
}

// Spec returns a pod spec running as service account sa with containers.
func Spec(sa string, containers ...corev1.Container) corev1.PodSpec {
	if len(containers) == 0 {
		containers = []corev1.Container{Container("app")}
	}
	return corev1.PodSpec{ServiceAccountName: sa, Containers: containers}
}

// Pod returns a Pod.
func Pod(ns, name string, spec corev1.PodSpec) *corev1.Pod {
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta(ns, name), Spec: spec}
}

// Deployment returns a Deployment of one replica.
func Deployment(ns, name string, spec corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta(ns, name),
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
}

// Rule returns a policy rule from comma-separated verbs, API groups
// ("core" or "" for the core group) and resources, limited to names.
func Rule(verbs, groups, resources string, names ...string) rbacv1.PolicyRule {
	split := func(s string) []string {
		var out []string
		for _, x := range strings.Split(s, ",") {
			if x == "core" {
				x = ""
			}
			out = append(out, x)
		}
		return out
	}
	return rbacv1.PolicyRule{Verbs: split(verbs), APIGroups: split(groups), Resources: split(resources), ResourceNames: names}
}

// URLRule returns a non-resource rule.
func URLRule(verbs string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: strings.Split(verbs, ","), NonResourceURLs: urls}
}

// ClusterRole returns a ClusterRole.
func ClusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: meta("", name), Rules: rules}
}

// Aggregated returns a ClusterRole aggregating the roles labelled
// label=true.
func Aggregated(name, label string) *rbacv1.ClusterRole {
	cr := ClusterRole(name)
	cr.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}
	return cr
}

// Labeled sets labels on a ClusterRole and returns it.
func Labeled(cr *rbacv1.ClusterRole, kv ...string) *rbacv1.ClusterRole {
	if cr.Labels == nil {
		cr.Labels = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		cr.Labels[kv[i]] = kv[i+1]
	}
	return cr
}

// Role returns a Role.
func Role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: meta(ns, name), Rules: rules}
}

// User, Group and ServiceAccount are binding subjects.
func User(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// Group is a group subject.
func Group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

// ServiceAccount is a service-account subject.
func ServiceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// ClusterRoleBinding binds ClusterRole role cluster-wide.
func ClusterRoleBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: meta("", name), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
}

// RoleBinding binds a Role or ClusterRole (kind) in namespace ns.
func RoleBinding(ns, name, kind, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: meta(ns, name), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}, Subjects: subjects}
}

// Cert returns a self-signed certificate and its key, in PEM, valid until
// notAfter.
func Cert(cn string, notAfter time.Time) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// WriteList writes objects as one `kind: List` YAML document, the form of
// `kubectl get -A -o yaml`.
func WriteList(w io.Writer, objs ...Object) error {
	b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs, "metadata": map[string]any{"resourceVersion": ""}})
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// WriteDocs writes objects as multi-document YAML, the form of Helm output.
func WriteDocs(w io.Writer, objs ...Object) error {
	for i, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n# Source: chart/templates/object-%d.yaml\n%s", i, b); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSONList writes objects as a JSON List, the form of
// `kubectl get -A -o json`.
func WriteJSONList(w io.Writer, objs ...Object) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
}
