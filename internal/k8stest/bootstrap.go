package k8stest

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IssuerDiscoveryBinding is the ClusterRoleBinding that lets anonymous
// clients read /.well-known/openid-configuration and /openid/v1/jwks, as
// an OIDC verifier outside the cluster would. Kubernetes binds the role
// only to service accounts by default.
const IssuerDiscoveryBinding = "coffer-test:service-account-issuer-discovery"

// rootCAConfigMap is what kube-controller-manager publishes in every
// namespace for projected service-account volumes.
const rootCAConfigMap = "kube-root-ca.crt"

// bootstrap creates what kube-controller-manager would, which this harness
// does not run: a default service account and the root CA ConfigMap in the
// system namespaces. It also binds issuer discovery to anonymous users.
func (c *Cluster) bootstrap(ctx context.Context) error {
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		// The apiserver creates these namespaces in a post-start hook that
		// /readyz covers; tolerate a late one anyway.
		if err := retryNotFound(ctx, func() error { return c.populateNamespace(ctx, ns) }); err != nil {
			return err
		}
	}
	_, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: IssuerDiscoveryBinding},
		RoleRef: rbacv1.RoleRef{
			APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery",
		},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create clusterrolebinding %s: %w", IssuerDiscoveryBinding, err)
	}
	return nil
}

func retryNotFound(ctx context.Context, f func() error) error {
	for {
		err := f()
		if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// CreateNamespace creates namespace name with what kube-controller-manager
// would add: the default service account and the kube-root-ca.crt
// ConfigMap. A namespace that exists already is completed, not an error.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8stest: create namespace %s: %w", name, err)
	}
	return c.populateNamespace(ctx, name)
}

func (c *Cluster) populateNamespace(ctx context.Context, ns string) error {
	if err := c.CreateServiceAccount(ctx, ns, "default"); err != nil {
		return err
	}
	_, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: rootCAConfigMap},
		Data:       map[string]string{"ca.crt": string(c.CACert)},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8stest: create configmap %s/%s: %w", ns, rootCAConfigMap, err)
	}
	return nil
}

// CreateServiceAccount creates service account ns/name; one that exists
// already is not an error.
func (c *Cluster) CreateServiceAccount(ctx context.Context, ns, name string) error {
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8stest: create serviceaccount %s/%s: %w", ns, name, err)
	}
	return nil
}

// ServiceAccountToken returns a token for service account ns/name from the
// TokenRequest API, valid for audiences (the apiserver's own audience, the
// issuer, when empty) and for ttl (the server's default, one hour, when
// zero; the server's minimum is ten minutes).
func (c *Cluster) ServiceAccountToken(ctx context.Context, ns, name string, audiences []string, ttl time.Duration) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if ttl > 0 {
		secs := int64(ttl / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	resp, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("k8stest: token for serviceaccount %s/%s: %w", ns, name, err)
	}
	return resp.Status.Token, nil
}

// GrantAuthDelegator binds ClusterRole system:auth-delegator to service
// account ns/name, which lets it create TokenReviews and
// SubjectAccessReviews, as a server that authenticates Kubernetes service
// accounts needs. Granting twice is not an error.
func (c *Cluster) GrantAuthDelegator(ctx context.Context, ns, name string) error {
	binding := "coffer-test:auth-delegator:" + ns + ":" + name
	_, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("k8stest: create clusterrolebinding %s: %w", binding, err)
	}
	return nil
}
