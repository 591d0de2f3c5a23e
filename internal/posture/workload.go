package posture

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload is something that runs pods: a bare Pod or a controller's pod
// template. Pods and ReplicaSets whose controller is in the snapshot are
// folded into it, so a Deployment is judged once, not once per pod.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	Spec      *corev1.PodSpec
	// Labels and Annotations are the pod template's (or the pod's).
	Labels      map[string]string
	Annotations map[string]string
	// Pods counts the pods in the snapshot folded into this workload.
	Pods int
	// Owned is set for a Job, ReplicaSet or Pod whose controller is not in
	// the snapshot (such as a custom resource).
	Owned bool
}

// Ref renders "Deployment ns/name".
func (w *Workload) Ref() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// ServiceAccount is the service account the pods run as.
func (w *Workload) ServiceAccount() string {
	if w.Spec.ServiceAccountName != "" {
		return w.Spec.ServiceAccountName
	}
	if w.Spec.DeprecatedServiceAccount != "" {
		return w.Spec.DeprecatedServiceAccount
	}
	return "default"
}

type objKey struct{ kind, ns, name string }

func controllerOf(m *metav1.ObjectMeta) *metav1.OwnerReference {
	for i := range m.OwnerReferences {
		if r := &m.OwnerReferences[i]; r.Controller != nil && *r.Controller {
			return r
		}
	}
	return nil
}

// workloads returns the top-level workloads of s, sorted by namespace,
// kind and name.
func workloads(s *Snapshot) []*Workload {
	present := map[objKey]*Workload{}
	var all []*Workload
	type owned struct {
		w     *Workload
		owner *metav1.OwnerReference
	}
	var pending []owned
	add := func(kind string, m *metav1.ObjectMeta, spec *corev1.PodSpec, tmpl *metav1.ObjectMeta) {
		w := &Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name, Spec: spec}
		if tmpl != nil {
			w.Labels, w.Annotations = tmpl.Labels, tmpl.Annotations
		}
		if kind == "Pod" {
			w.Pods = 1
		}
		present[objKey{kind, m.Namespace, m.Name}] = w
		all = append(all, w)
		if c := controllerOf(m); c != nil {
			pending = append(pending, owned{w, c})
		}
	}
	for i := range s.Deployments {
		o := &s.Deployments[i]
		add("Deployment", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.ReplicaSets {
		o := &s.ReplicaSets[i]
		add("ReplicaSet", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.StatefulSets {
		o := &s.StatefulSets[i]
		add("StatefulSet", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.DaemonSets {
		o := &s.DaemonSets[i]
		add("DaemonSet", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.Jobs {
		o := &s.Jobs[i]
		add("Job", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.CronJobs {
		o := &s.CronJobs[i]
		add("CronJob", &o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template.Spec, &o.Spec.JobTemplate.Spec.Template.ObjectMeta)
	}
	for i := range s.ReplicationControllers {
		o := &s.ReplicationControllers[i]
		if o.Spec.Template == nil {
			continue
		}
		add("ReplicationController", &o.ObjectMeta, &o.Spec.Template.Spec, &o.Spec.Template.ObjectMeta)
	}
	for i := range s.Pods {
		o := &s.Pods[i]
		add("Pod", &o.ObjectMeta, &o.Spec, &o.ObjectMeta)
	}
	folded := map[*Workload]*Workload{}
	for _, p := range pending {
		if parent, ok := present[objKey{p.owner.Kind, p.w.Namespace, p.owner.Name}]; ok && parent != p.w {
			folded[p.w] = parent
		} else {
			p.w.Owned = p.owner.Kind != "Node" // mirror pods of static pods stand alone
		}
	}
	top := func(w *Workload) *Workload {
		for range 8 { // ownership chains are short; guard against cycles
			p, ok := folded[w]
			if !ok {
				return w
			}
			w = p
		}
		return w
	}
	out := make([]*Workload, 0, len(all))
	for _, w := range all {
		if _, ok := folded[w]; ok {
			if t := top(w); t != w {
				t.Pods += w.Pods
			}
			continue
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return out
}

// SecretUse is one reference from a pod spec to a Secret.
type SecretUse struct {
	Secret string
	// How: "env NAME", "envFrom", "volume NAME", "projected volume NAME",
	// "imagePullSecrets", "csi volume NAME".
	How string
	// Container is empty for pod-level uses (volumes, image pulls).
	Container string
}

// secretUses lists the Secrets a pod spec refers to.
func secretUses(spec *corev1.PodSpec) []SecretUse {
	var out []SecretUse
	for _, c := range allContainers(spec) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, SecretUse{Secret: e.ValueFrom.SecretKeyRef.Name, How: "env " + e.Name, Container: c.Name})
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, SecretUse{Secret: e.SecretRef.Name, How: "envFrom", Container: c.Name})
			}
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil:
			out = append(out, SecretUse{Secret: v.Secret.SecretName, How: "volume " + v.Name})
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					out = append(out, SecretUse{Secret: src.Secret.Name, How: "projected volume " + v.Name})
				}
			}
		case v.CSI != nil && v.CSI.NodePublishSecretRef != nil:
			out = append(out, SecretUse{Secret: v.CSI.NodePublishSecretRef.Name, How: "csi volume " + v.Name})
		}
	}
	for _, r := range spec.ImagePullSecrets {
		out = append(out, SecretUse{Secret: r.Name, How: "imagePullSecrets"})
	}
	return out
}

// container is a container of any kind with its name.
type container struct {
	Name    string
	Env     []corev1.EnvVar
	EnvFrom []corev1.EnvFromSource
	Command []string
	Args    []string
	Mounts  []corev1.VolumeMount
}

func allContainers(spec *corev1.PodSpec) []container {
	out := make([]container, 0, len(spec.InitContainers)+len(spec.Containers)+len(spec.EphemeralContainers))
	for _, c := range spec.InitContainers {
		out = append(out, container{c.Name, c.Env, c.EnvFrom, c.Command, c.Args, c.VolumeMounts})
	}
	for _, c := range spec.Containers {
		out = append(out, container{c.Name, c.Env, c.EnvFrom, c.Command, c.Args, c.VolumeMounts})
	}
	for _, c := range spec.EphemeralContainers {
		out = append(out, container{c.Name, c.Env, c.EnvFrom, c.Command, c.Args, c.VolumeMounts})
	}
	return out
}
