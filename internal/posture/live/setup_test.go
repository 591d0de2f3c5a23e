package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// now is the time certificates in the scenario are made relative to.
var now = time.Now().UTC().Truncate(time.Second)

func fixedNow() time.Time { return now }

var (
	setupOnce sync.Once
	setupErr  error
)

// setup loads the scenario into the cluster once for all tests, then does
// what kube-controller-manager's aggregation controller would (the harness
// runs none): it writes the rules of every aggregated ClusterRole.
func setup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		setupErr = load(ctx, cluster.Client, posturetest.Scenario(now))
		if setupErr == nil {
			setupErr = aggregate(ctx, cluster.Client)
		}
	})
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
}

func load(ctx context.Context, cs kubernetes.Interface, objs []posturetest.Object) error {
	for _, o := range objs {
		if ns, ok := o.(*corev1.Namespace); ok {
			if err := cluster.CreateNamespace(ctx, ns.Name); err != nil {
				return err
			}
			continue
		}
		if err := create(ctx, cs, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T: %w", o, err)
		}
	}
	return nil
}

func create(ctx context.Context, cs kubernetes.Interface, o posturetest.Object) error {
	c := metav1.CreateOptions{}
	var err error
	switch v := o.(type) {
	case *corev1.ServiceAccount:
		_, err = cs.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, c)
	case *corev1.Secret:
		_, err = cs.CoreV1().Secrets(v.Namespace).Create(ctx, v, c)
	case *corev1.ConfigMap:
		_, err = cs.CoreV1().ConfigMaps(v.Namespace).Create(ctx, v, c)
	case *corev1.Pod:
		_, err = cs.CoreV1().Pods(v.Namespace).Create(ctx, v, c)
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(v.Namespace).Create(ctx, v, c)
	case *rbacv1.Role:
		_, err = cs.RbacV1().Roles(v.Namespace).Create(ctx, v, c)
	case *rbacv1.ClusterRole:
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, v, c)
	case *rbacv1.RoleBinding:
		_, err = cs.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, c)
	case *rbacv1.ClusterRoleBinding:
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, v, c)
	default:
		return fmt.Errorf("no create for %T", o)
	}
	return err
}

// aggregate writes each aggregated ClusterRole's rules as computed by the
// engine, standing in for the aggregation controller.
func aggregate(ctx context.Context, cs kubernetes.Interface) error {
	list, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	eng := rbac.New(nil, list.Items, nil, nil)
	for i := range list.Items {
		cr := &list.Items[i]
		if cr.AggregationRule == nil {
			continue
		}
		role, _ := eng.Role(rbac.Ref{Kind: rbac.ClusterRoleKind, Name: cr.Name})
		cr.Rules = []rbacv1.PolicyRule{}
		for _, r := range role.Rules {
			cr.Rules = append(cr.Rules, r.PolicyRule)
		}
		if _, err := cs.RbacV1().ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update aggregated ClusterRole %s: %w", cr.Name, err)
		}
	}
	return nil
}

// dump writes every object posture reads as `kubectl get -A -o json`
// would: one List with apiVersion and kind on each item.
func dump(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ctx := t.Context()
	var items []any
	add := func(apiVersion, kind string, list any, err error) {
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		b, _ := json.Marshal(list)
		var l struct {
			Items []map[string]any `json:"items"`
		}
		json.Unmarshal(b, &l)
		for _, it := range l.Items {
			it["apiVersion"], it["kind"] = apiVersion, kind
			items = append(items, it)
		}
	}
	all := metav1.ListOptions{}
	{
		l, err := cs.CoreV1().Namespaces().List(ctx, all)
		add("v1", "Namespace", l, err)
	}
	{
		l, err := cs.CoreV1().Pods("").List(ctx, all)
		add("v1", "Pod", l, err)
	}
	{
		l, err := cs.CoreV1().ServiceAccounts("").List(ctx, all)
		add("v1", "ServiceAccount", l, err)
	}
	{
		l, err := cs.CoreV1().Secrets("").List(ctx, all)
		add("v1", "Secret", l, err)
	}
	{
		l, err := cs.CoreV1().ConfigMaps("").List(ctx, all)
		add("v1", "ConfigMap", l, err)
	}
	{
		l, err := cs.CoreV1().ReplicationControllers("").List(ctx, all)
		add("v1", "ReplicationController", l, err)
	}
	{
		l, err := cs.AppsV1().Deployments("").List(ctx, all)
		add("apps/v1", "Deployment", l, err)
	}
	{
		l, err := cs.AppsV1().ReplicaSets("").List(ctx, all)
		add("apps/v1", "ReplicaSet", l, err)
	}
	{
		l, err := cs.AppsV1().StatefulSets("").List(ctx, all)
		add("apps/v1", "StatefulSet", l, err)
	}
	{
		l, err := cs.AppsV1().DaemonSets("").List(ctx, all)
		add("apps/v1", "DaemonSet", l, err)
	}
	{
		l, err := cs.BatchV1().Jobs("").List(ctx, all)
		add("batch/v1", "Job", l, err)
	}
	{
		l, err := cs.BatchV1().CronJobs("").List(ctx, all)
		add("batch/v1", "CronJob", l, err)
	}
	{
		l, err := cs.NetworkingV1().Ingresses("").List(ctx, all)
		add("networking.k8s.io/v1", "Ingress", l, err)
	}
	{
		l, err := cs.RbacV1().Roles("").List(ctx, all)
		add("rbac.authorization.k8s.io/v1", "Role", l, err)
	}
	{
		l, err := cs.RbacV1().ClusterRoles().List(ctx, all)
		add("rbac.authorization.k8s.io/v1", "ClusterRole", l, err)
	}
	{
		l, err := cs.RbacV1().RoleBindings("").List(ctx, all)
		add("rbac.authorization.k8s.io/v1", "RoleBinding", l, err)
	}
	{
		l, err := cs.RbacV1().ClusterRoleBindings().List(ctx, all)
		add("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", l, err)
	}
	{
		l, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, all)
		add("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", l, err)
	}
	{
		l, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, all)
		add("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", l, err)
	}
	var b bytes.Buffer
	if err := posturetest.WriteJSONList(&b, items...); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dump.json")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Types the dump covers; a compile-time reminder to extend dump with
// Snapshot.
var (
	_ = batchv1.Job{}
	_ = networkingv1.Ingress{}
	_ = admissionregistrationv1.MutatingWebhookConfiguration{}
	_ = posture.Snapshot{}
)
