package posture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cofferhq/coffer/internal/k8s/kclient"
)

// DefaultPageSize is the page size of list calls.
const DefaultPageSize = 500

// ClusterOptions configure LoadCluster.
type ClusterOptions struct {
	// Namespaces limits namespaced reads to these namespaces; all when
	// empty. Cluster-scoped objects (RBAC cluster roles and bindings,
	// webhooks, namespaces) are read in any case.
	Namespaces []string
	// EncryptionConfig and APIServerManifest are optional files.
	EncryptionConfig  string
	APIServerManifest string
	// RBACOnly reads namespaces and RBAC objects only (for who-can).
	RBACOnly bool
	// PageSize of list calls; DefaultPageSize when zero.
	PageSize int64
	// Now is the snapshot time; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per read; nil discards.
	Logger *slog.Logger
}

// ErrUnreachable is returned by LoadCluster when no read succeeded and
// the failures were not answers from the apiserver.
var ErrUnreachable = errors.New("posture: cannot read from the cluster")

// LoadCluster reads a snapshot from a live cluster through the API with
// list calls only (read-only, paginated). A read that is refused is not
// an error: it is recorded in Snapshot.Gaps and analysis reports what it
// could not judge. A namespaced resource that cannot be listed across all
// namespaces is listed namespace by namespace when the namespaces are
// known (from ClusterOptions.Namespaces or a readable namespace list).
func LoadCluster(ctx context.Context, cfg *rest.Config, o ClusterOptions) (*Snapshot, error) {
	kc, err := kclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("posture: client: %w", err)
	}
	host := cfg.Host
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page := o.PageSize
	if page <= 0 {
		page = DefaultPageSize
	}
	l := &clusterLoader{snap: &Snapshot{Source: host}, page: page, log: log, only: o.Namespaces}

	l.cluster(ctx, "namespaces", func(ctx context.Context, opt metav1.ListOptions) (string, error) {
		list := &corev1.NamespaceList{}
		err := kc.List(ctx, kclient.Path("", "v1", "", "namespaces"), opt, list)
		if err != nil {
			return "", err
		}
		for i := range list.Items {
			if len(l.only) == 0 || slices.Contains(l.only, list.Items[i].Name) {
				l.snap.add(&list.Items[i])
			}
		}
		return list.Continue, nil
	})
	l.namespaces = slices.Clone(l.only)
	if len(l.namespaces) == 0 {
		for _, n := range l.snap.Namespaces {
			l.namespaces = append(l.namespaces, n.Name)
		}
	}

	l.cluster(ctx, "clusterroles", func(ctx context.Context, opt metav1.ListOptions) (string, error) {
		list := &rbacv1.ClusterRoleList{}
		err := kc.List(ctx, kclient.Path("rbac.authorization.k8s.io", "v1", "", "clusterroles"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.cluster(ctx, "clusterrolebindings", func(ctx context.Context, opt metav1.ListOptions) (string, error) {
		list := &rbacv1.ClusterRoleBindingList{}
		err := kc.List(ctx, kclient.Path("rbac.authorization.k8s.io", "v1", "", "clusterrolebindings"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "roles", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &rbacv1.RoleList{}
		err := kc.List(ctx, kclient.Path("rbac.authorization.k8s.io", "v1", ns, "roles"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "rolebindings", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &rbacv1.RoleBindingList{}
		err := kc.List(ctx, kclient.Path("rbac.authorization.k8s.io", "v1", ns, "rolebindings"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	if o.RBACOnly {
		return l.done(ctx, o)
	}
	l.cluster(ctx, "mutatingwebhookconfigurations", func(ctx context.Context, opt metav1.ListOptions) (string, error) {
		list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
		err := kc.List(ctx, kclient.Path("admissionregistration.k8s.io", "v1", "", "mutatingwebhookconfigurations"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.cluster(ctx, "validatingwebhookconfigurations", func(ctx context.Context, opt metav1.ListOptions) (string, error) {
		list := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
		err := kc.List(ctx, kclient.Path("admissionregistration.k8s.io", "v1", "", "validatingwebhookconfigurations"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})

	l.namespaced(ctx, "serviceaccounts", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &corev1.ServiceAccountList{}
		err := kc.List(ctx, kclient.Path("", "v1", ns, "serviceaccounts"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "secrets", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &corev1.SecretList{}
		err := kc.List(ctx, kclient.Path("", "v1", ns, "secrets"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "configmaps", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &corev1.ConfigMapList{}
		err := kc.List(ctx, kclient.Path("", "v1", ns, "configmaps"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "pods", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &corev1.PodList{}
		err := kc.List(ctx, kclient.Path("", "v1", ns, "pods"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "replicationcontrollers", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &corev1.ReplicationControllerList{}
		err := kc.List(ctx, kclient.Path("", "v1", ns, "replicationcontrollers"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "deployments", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &appsv1.DeploymentList{}
		err := kc.List(ctx, kclient.Path("apps", "v1", ns, "deployments"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "replicasets", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &appsv1.ReplicaSetList{}
		err := kc.List(ctx, kclient.Path("apps", "v1", ns, "replicasets"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "statefulsets", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &appsv1.StatefulSetList{}
		err := kc.List(ctx, kclient.Path("apps", "v1", ns, "statefulsets"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "daemonsets", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &appsv1.DaemonSetList{}
		err := kc.List(ctx, kclient.Path("apps", "v1", ns, "daemonsets"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "jobs", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &batchv1.JobList{}
		err := kc.List(ctx, kclient.Path("batch", "v1", ns, "jobs"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "cronjobs", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &batchv1.CronJobList{}
		err := kc.List(ctx, kclient.Path("batch", "v1", ns, "cronjobs"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})
	l.namespaced(ctx, "ingresses", func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error) {
		list := &networkingv1.IngressList{}
		err := kc.List(ctx, kclient.Path("networking.k8s.io", "v1", ns, "ingresses"), opt, list)
		return addAll(l, list, err, func() (string, int) { return list.Continue, len(list.Items) }, func(i int) any { return &list.Items[i] })
	})

	return l.done(ctx, o)
}

func (l *clusterLoader) done(ctx context.Context, o ClusterOptions) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.reads == 0 && l.transport != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, l.transport)
	}
	if len(o.Namespaces) > 0 {
		l.snap.Source += " (namespaces " + strings.Join(o.Namespaces, ", ") + ")"
	}
	if err := finish(l.snap, o.EncryptionConfig, o.APIServerManifest, o.Now); err != nil {
		return nil, err
	}
	return l.snap, nil
}

// addAll adds a page's items; list is nil when err is set.
func addAll[L any](l *clusterLoader, list *L, err error, meta func() (string, int), item func(int) any) (string, error) {
	if err != nil {
		return "", err
	}
	cont, n := meta()
	for i := range n {
		l.snap.add(item(i))
	}
	return cont, nil
}

type clusterLoader struct {
	snap       *Snapshot
	page       int64
	log        *slog.Logger
	only       []string // ClusterOptions.Namespaces
	namespaces []string // namespaces to fall back to, one by one
	reads      int      // successful list calls
	transport  error    // last error that was not an API status
}

type pageFunc func(ctx context.Context, opt metav1.ListOptions) (cont string, err error)

// list pages through one list call. started reports whether the first
// page succeeded (later failures leave partial results).
func (l *clusterLoader) list(ctx context.Context, f pageFunc) (started bool, err error) {
	opt := metav1.ListOptions{Limit: l.page}
	for {
		cont, err := f(ctx, opt)
		if err != nil {
			var st apierrors.APIStatus
			if !errors.As(err, &st) {
				l.transport = err
			}
			return started, err
		}
		started = true
		l.reads++
		if cont == "" {
			return true, nil
		}
		opt.Continue = cont
	}
}

func (l *clusterLoader) gap(resource, ns string, err error) {
	reason := err.Error()
	switch {
	case apierrors.IsForbidden(err):
		reason = "forbidden"
	case apierrors.IsUnauthorized(err):
		reason = "unauthorized"
	case apierrors.IsNotFound(err):
		reason = "not served by this cluster"
	}
	l.log.Debug("posture: read failed", "resource", resource, "namespace", ns, "reason", reason)
	l.snap.Gaps = append(l.snap.Gaps, Gap{Resource: resource, Namespace: ns, Reason: reason})
}

func (l *clusterLoader) cluster(ctx context.Context, resource string, f pageFunc) {
	if ctx.Err() != nil {
		return
	}
	if _, err := l.list(ctx, f); err != nil {
		l.gap(resource, "", err)
	}
}

// namespaced lists a namespaced resource across all namespaces, or
// namespace by namespace when that is refused or ClusterOptions limits
// the namespaces. Namespaces that all fail alike become one gap.
func (l *clusterLoader) namespaced(ctx context.Context, resource string, f func(ctx context.Context, ns string, opt metav1.ListOptions) (string, error)) {
	if ctx.Err() != nil {
		return
	}
	if len(l.only) == 0 {
		started, err := l.list(ctx, func(ctx context.Context, opt metav1.ListOptions) (string, error) { return f(ctx, "", opt) })
		if err == nil {
			return
		}
		if started || len(l.namespaces) == 0 || !(apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)) {
			l.gap(resource, "", err)
			return
		}
	}
	var failed []Gap
	for _, ns := range l.namespaces {
		if _, err := l.list(ctx, func(ctx context.Context, opt metav1.ListOptions) (string, error) { return f(ctx, ns, opt) }); err != nil {
			before := len(l.snap.Gaps)
			l.gap(resource, ns, err)
			failed = append(failed, l.snap.Gaps[before])
			l.snap.Gaps = l.snap.Gaps[:before]
		}
	}
	if len(failed) == len(l.namespaces) && len(failed) > 0 && len(l.only) == 0 {
		same := true
		for _, g := range failed {
			same = same && g.Reason == failed[0].Reason
		}
		if same {
			l.snap.Gaps = append(l.snap.Gaps, Gap{Resource: resource, Reason: failed[0].Reason})
			return
		}
	}
	l.snap.Gaps = append(l.snap.Gaps, failed...)
}
