package posture

import (
	"sort"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Snapshot is what posture analyses: the objects of a cluster, read from
// the API or from files, plus what could not be read.
//
// Secret values never enter a snapshot: loaders keep each Secret's keys
// with empty values, except the public certificates tls.crt and ca.crt
// that the certificate checks read. managedFields are reduced to the
// entries that wrote a Secret's data (with their times) and the
// last-applied-configuration annotation, which can hold a copy of a
// Secret, is dropped.
type Snapshot struct {
	// Source says where the snapshot came from: a cluster's address or
	// the files read.
	Source string `json:"source"`
	// Taken is when it was read; ages are measured from it.
	Taken time.Time `json:"taken"`

	Namespaces             []corev1.Namespace             `json:"namespaces,omitempty"`
	Pods                   []corev1.Pod                   `json:"pods,omitempty"`
	Deployments            []appsv1.Deployment            `json:"deployments,omitempty"`
	ReplicaSets            []appsv1.ReplicaSet            `json:"replicaSets,omitempty"`
	StatefulSets           []appsv1.StatefulSet           `json:"statefulSets,omitempty"`
	DaemonSets             []appsv1.DaemonSet             `json:"daemonSets,omitempty"`
	Jobs                   []batchv1.Job                  `json:"jobs,omitempty"`
	CronJobs               []batchv1.CronJob              `json:"cronJobs,omitempty"`
	ReplicationControllers []corev1.ReplicationController `json:"replicationControllers,omitempty"`
	ServiceAccounts        []corev1.ServiceAccount        `json:"serviceAccounts,omitempty"`
	Secrets                []corev1.Secret                `json:"secrets,omitempty"`
	ConfigMaps             []corev1.ConfigMap             `json:"configMaps,omitempty"`
	Ingresses              []networkingv1.Ingress         `json:"ingresses,omitempty"`
	Roles                  []rbacv1.Role                  `json:"roles,omitempty"`
	ClusterRoles           []rbacv1.ClusterRole           `json:"clusterRoles,omitempty"`
	RoleBindings           []rbacv1.RoleBinding           `json:"roleBindings,omitempty"`
	ClusterRoleBindings    []rbacv1.ClusterRoleBinding    `json:"clusterRoleBindings,omitempty"`

	MutatingWebhooks   []admissionregistrationv1.MutatingWebhookConfiguration   `json:"mutatingWebhookConfigurations,omitempty"`
	ValidatingWebhooks []admissionregistrationv1.ValidatingWebhookConfiguration `json:"validatingWebhookConfigurations,omitempty"`

	// Encryption is the apiserver's EncryptionConfiguration, when given.
	Encryption *EncryptionConfig `json:"encryption,omitempty"`
	// APIServer is the apiserver's command line, from a manifest file or
	// a kube-apiserver static pod in the snapshot.
	APIServer *APIServerConfig `json:"apiServer,omitempty"`

	// Gaps are the reads that failed (forbidden, not served, ...).
	Gaps []Gap `json:"gaps,omitempty"`
	// Problems are inputs that could not be decoded.
	Problems []Problem `json:"problems,omitempty"`
	// BuiltinRoles counts the default ClusterRoles added to a file load
	// because the files do not define them.
	BuiltinRoles int `json:"builtinRoles,omitempty"`
	// Skipped counts objects of kinds posture does not use, by kind.
	Skipped map[string]int `json:"skipped,omitempty"`
}

// Gap is a read that failed: a resource, in one namespace or in all
// ("" for all namespaces or cluster-scoped), and why.
type Gap struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Reason    string `json:"reason"`
}

// Problem is an input that could not be decoded, with its location.
type Problem struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Missing reports whether resource could not be read, in namespace ns or
// in all namespaces.
func (s *Snapshot) Missing(resource, ns string) bool {
	for _, g := range s.Gaps {
		if g.Resource == resource && (g.Namespace == "" || g.Namespace == ns) {
			return true
		}
	}
	return false
}

// MissingAny reports whether resource could not be read anywhere.
func (s *Snapshot) MissingAny(resource string) bool {
	for _, g := range s.Gaps {
		if g.Resource == resource {
			return true
		}
	}
	return false
}

// Objects counts the objects in the snapshot.
func (s *Snapshot) Objects() int {
	return len(s.Namespaces) + len(s.Pods) + len(s.Deployments) + len(s.ReplicaSets) + len(s.StatefulSets) +
		len(s.DaemonSets) + len(s.Jobs) + len(s.CronJobs) + len(s.ReplicationControllers) +
		len(s.ServiceAccounts) + len(s.Secrets) + len(s.ConfigMaps) + len(s.Ingresses) + len(s.Roles) +
		len(s.ClusterRoles) + len(s.RoleBindings) + len(s.ClusterRoleBindings) + len(s.MutatingWebhooks) +
		len(s.ValidatingWebhooks)
}

// keptSecretKeys are Secret keys whose values are public and kept.
var keptSecretKeys = map[string]bool{"tls.crt": true, "ca.crt": true}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimMeta drops what posture never reads and what could carry secret
// values: the type meta, managedFields and kubectl's last-applied copy.
func trimMeta(m *metav1.ObjectMeta, t *metav1.TypeMeta) {
	*t = metav1.TypeMeta{}
	m.ManagedFields = nil
	if _, ok := m.Annotations[lastApplied]; ok {
		delete(m.Annotations, lastApplied)
		if len(m.Annotations) == 0 {
			m.Annotations = nil
		}
	}
}

// trimSecret removes secret values from s (see Snapshot) and reduces its
// managedFields to the writes of its data.
func trimSecret(s *corev1.Secret) {
	var writes []metav1.ManagedFieldsEntry
	for _, f := range s.ManagedFields {
		if f.Time == nil || f.FieldsV1 == nil {
			continue
		}
		raw := string(f.FieldsV1.Raw)
		if strings.Contains(raw, `"f:data"`) || strings.Contains(raw, `"f:stringData"`) {
			writes = append(writes, metav1.ManagedFieldsEntry{Manager: f.Manager, Operation: f.Operation, Time: f.Time})
		}
	}
	trimMeta(&s.ObjectMeta, &s.TypeMeta)
	s.ManagedFields = writes
	data := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		if keptSecretKeys[k] {
			data[k] = v
		} else {
			data[k] = nil
		}
	}
	for k, v := range s.StringData { // manifests only; the API merges stringData into data
		if keptSecretKeys[k] {
			data[k] = []byte(v)
		} else {
			data[k] = nil
		}
	}
	if len(data) == 0 {
		data = nil
	}
	s.Data, s.StringData = data, nil
}

// add appends an object of a known type to the snapshot after trimming
// it; it reports false for a type posture does not keep.
func (s *Snapshot) add(obj any) bool {
	switch o := obj.(type) {
	case *corev1.Namespace:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.Namespaces = append(s.Namespaces, *o)
	case *corev1.Pod:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = corev1.PodStatus{Phase: o.Status.Phase}
		s.Pods = append(s.Pods, *o)
	case *appsv1.Deployment:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = appsv1.DeploymentStatus{}
		s.Deployments = append(s.Deployments, *o)
	case *appsv1.ReplicaSet:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = appsv1.ReplicaSetStatus{}
		s.ReplicaSets = append(s.ReplicaSets, *o)
	case *appsv1.StatefulSet:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = appsv1.StatefulSetStatus{}
		s.StatefulSets = append(s.StatefulSets, *o)
	case *appsv1.DaemonSet:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = appsv1.DaemonSetStatus{}
		s.DaemonSets = append(s.DaemonSets, *o)
	case *batchv1.Job:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = batchv1.JobStatus{}
		s.Jobs = append(s.Jobs, *o)
	case *batchv1.CronJob:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = batchv1.CronJobStatus{}
		s.CronJobs = append(s.CronJobs, *o)
	case *corev1.ReplicationController:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = corev1.ReplicationControllerStatus{}
		s.ReplicationControllers = append(s.ReplicationControllers, *o)
	case *corev1.ServiceAccount:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.ServiceAccounts = append(s.ServiceAccounts, *o)
	case *corev1.Secret:
		trimSecret(o)
		s.Secrets = append(s.Secrets, *o)
	case *corev1.ConfigMap:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.BinaryData = nil
		s.ConfigMaps = append(s.ConfigMaps, *o)
	case *networkingv1.Ingress:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		o.Status = networkingv1.IngressStatus{}
		s.Ingresses = append(s.Ingresses, *o)
	case *rbacv1.Role:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.Roles = append(s.Roles, *o)
	case *rbacv1.ClusterRole:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.ClusterRoles = append(s.ClusterRoles, *o)
	case *rbacv1.RoleBinding:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.RoleBindings = append(s.RoleBindings, *o)
	case *rbacv1.ClusterRoleBinding:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		s.ClusterRoleBindings = append(s.ClusterRoleBindings, *o)
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		for i := range o.Webhooks {
			o.Webhooks[i].ClientConfig.CABundle = nil
		}
		s.MutatingWebhooks = append(s.MutatingWebhooks, *o)
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		trimMeta(&o.ObjectMeta, &o.TypeMeta)
		for i := range o.Webhooks {
			o.Webhooks[i].ClientConfig.CABundle = nil
		}
		s.ValidatingWebhooks = append(s.ValidatingWebhooks, *o)
	default:
		return false
	}
	return true
}

// Sort orders every list by namespace and name, so that two snapshots of
// the same objects compare equal whatever order they were read in.
func (s *Snapshot) Sort() {
	sortBy(s.Namespaces, func(o *corev1.Namespace) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Pods, func(o *corev1.Pod) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Deployments, func(o *appsv1.Deployment) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ReplicaSets, func(o *appsv1.ReplicaSet) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.StatefulSets, func(o *appsv1.StatefulSet) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.DaemonSets, func(o *appsv1.DaemonSet) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Jobs, func(o *batchv1.Job) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.CronJobs, func(o *batchv1.CronJob) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ReplicationControllers, func(o *corev1.ReplicationController) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ServiceAccounts, func(o *corev1.ServiceAccount) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Secrets, func(o *corev1.Secret) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ConfigMaps, func(o *corev1.ConfigMap) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Ingresses, func(o *networkingv1.Ingress) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.Roles, func(o *rbacv1.Role) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ClusterRoles, func(o *rbacv1.ClusterRole) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.RoleBindings, func(o *rbacv1.RoleBinding) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ClusterRoleBindings, func(o *rbacv1.ClusterRoleBinding) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.MutatingWebhooks, func(o *admissionregistrationv1.MutatingWebhookConfiguration) *metav1.ObjectMeta { return &o.ObjectMeta })
	sortBy(s.ValidatingWebhooks, func(o *admissionregistrationv1.ValidatingWebhookConfiguration) *metav1.ObjectMeta {
		return &o.ObjectMeta
	})
	sort.Slice(s.Gaps, func(i, j int) bool {
		a, b := s.Gaps[i], s.Gaps[j]
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Namespace < b.Namespace
	})
}

func sortBy[T any](list []T, meta func(*T) *metav1.ObjectMeta) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := meta(&list[i]), meta(&list[j])
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}
