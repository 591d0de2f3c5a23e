package live

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// sarTriples is how many random requests are put to both authorizers.
const sarTriples = 2000

// TestLiveSubjectAccessReview compares the RBAC engine with the
// apiserver's authorizer: for a generated set of (subject, verb,
// resource, namespace, name) requests it asks the apiserver with a
// SubjectAccessReview and the engine with Allowed, and expects the same
// answer every time. The subjects are the scenario's users, service
// accounts and groups plus the control plane's own (kube-system
// controllers, the scheduler), so Kubernetes' default roles and bindings
// are covered as well.
func TestLiveSubjectAccessReview(t *testing.T) {
	setup(t)
	snap, err := posture.LoadCluster(t.Context(), cluster.AdminConfig, posture.ClusterOptions{Now: fixedNow, RBACOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	eng := rbac.New(snap.Roles, snap.ClusterRoles, snap.RoleBindings, snap.ClusterRoleBindings)

	var identities []rbac.Identity
	for _, u := range []string{"reader", "named-reader", "pod-creator", "updater", "execer", "attacher", "debugger", "impersonator",
		"group-impersonator", "binder", "escalator", "token-minter", "secret-writer", "ci-pod-creator", "ops-reader", "node-proxy",
		"csr-approver", "webhook-admin", "agg-user", "nobody", "system:kube-scheduler", "system:kube-controller-manager"} {
		identities = append(identities, rbac.Subject{Kind: rbac.UserKind, Name: u}.Identity())
	}
	for _, sa := range [][2]string{{"shop", "app"}, {"shop", "default"}, {"ci", "deployer"}, {"ops", "bot"}, {"ops", "default"},
		{"kube-system", "replicaset-controller"}, {"kube-system", "namespace-controller"}, {"kube-system", "clusterrole-aggregation-controller"},
		{"kube-system", "generic-garbage-collector"}, {"kube-system", "job-controller"}} {
		identities = append(identities, rbac.Subject{Kind: rbac.ServiceAccountKind, Namespace: sa[0], Name: sa[1]}.Identity())
	}
	identities = append(identities,
		rbac.Identity{User: "carol", Groups: []string{"devs", rbac.Authenticated}},
		rbac.Subject{Kind: rbac.UserKind, Name: rbac.Anonymous}.Identity(),
		rbac.Identity{User: "dave", Groups: []string{rbac.Masters, rbac.Authenticated}},
	)

	type res struct{ group, resource, sub string }
	resources := []res{
		{"", "secrets", ""}, {"", "pods", ""}, {"", "pods", "exec"}, {"", "pods", "attach"}, {"", "pods", "ephemeralcontainers"},
		{"", "configmaps", ""}, {"", "serviceaccounts", ""}, {"", "serviceaccounts", "token"}, {"", "users", ""}, {"", "groups", ""},
		{"", "nodes", ""}, {"", "nodes", "proxy"}, {"", "namespaces", ""}, {"", "replicationcontrollers", ""}, {"", "events", ""},
		{"apps", "deployments", ""}, {"apps", "deployments", "scale"}, {"apps", "daemonsets", ""}, {"apps", "replicasets", ""},
		{"batch", "jobs", ""}, {"batch", "cronjobs", ""},
		{"rbac.authorization.k8s.io", "roles", ""}, {"rbac.authorization.k8s.io", "clusterroles", ""},
		{"rbac.authorization.k8s.io", "rolebindings", ""}, {"rbac.authorization.k8s.io", "clusterrolebindings", ""},
		{"certificates.k8s.io", "certificatesigningrequests", ""}, {"certificates.k8s.io", "certificatesigningrequests", "approval"},
		{"certificates.k8s.io", "signers", ""}, {"admissionregistration.k8s.io", "mutatingwebhookconfigurations", ""},
		{"authentication.k8s.io", "tokenreviews", ""}, {"coordination.k8s.io", "leases", ""}, {"extensions", "deployments", ""},
	}
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "impersonate", "bind", "escalate", "approve", "use"}
	namespaces := []string{"shop", "ci", "ops", "kube-system", "default", ""}
	names := []string{"", "", "db", "app", "p", "kubernetes.io/kube-apiserver-client", "admin", "x"}
	paths := []string{"/healthz", "/livez", "/readyz", "/metrics", "/api", "/apis", "/version", "/openapi/v2", "/logs/x", "/.well-known/openid-configuration", "/debug/pprof"}

	rng := rand.New(rand.NewPCG(8, 8))
	type triple struct {
		id  rbac.Identity
		req rbac.Request
	}
	var triples []triple
	for range sarTriples {
		id := identities[rng.IntN(len(identities))]
		var req rbac.Request
		if rng.IntN(8) == 0 {
			req = rbac.Request{Verb: []string{"get", "post", "put", "delete"}[rng.IntN(4)], Path: paths[rng.IntN(len(paths))]}
		} else {
			r := resources[rng.IntN(len(resources))]
			req = rbac.Request{Verb: verbs[rng.IntN(len(verbs))], Group: r.group, Resource: r.resource, Subresource: r.sub,
				Namespace: namespaces[rng.IntN(len(namespaces))], Name: names[rng.IntN(len(names))]}
		}
		triples = append(triples, triple{id, req})
	}

	type answer struct {
		i       int
		allowed bool
		err     error
	}
	answers := make([]answer, len(triples))
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				tr := triples[i]
				spec := authorizationv1.SubjectAccessReviewSpec{User: tr.id.User, Groups: tr.id.Groups}
				if tr.req.Resource != "" {
					spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Namespace: tr.req.Namespace, Verb: tr.req.Verb,
						Group: tr.req.Group, Resource: tr.req.Resource, Subresource: tr.req.Subresource, Name: tr.req.Name}
				} else {
					spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: tr.req.Path, Verb: tr.req.Verb}
				}
				sar, err := cluster.Client.AuthorizationV1().SubjectAccessReviews().Create(t.Context(),
					&authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
				if err != nil {
					answers[i] = answer{i: i, err: err}
					continue
				}
				answers[i] = answer{i: i, allowed: sar.Status.Allowed}
			}
		})
	}
	for i := range triples {
		work <- i
	}
	close(work)
	wg.Wait()

	allowed, mismatches := 0, 0
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("SubjectAccessReview: %v", a.err)
		}
		tr := triples[i]
		grants := eng.Allowed(tr.id, tr.req)
		if a.allowed {
			allowed++
		}
		if got := len(grants) > 0; got != a.allowed {
			mismatches++
			if mismatches <= 20 {
				t.Errorf("%s as %s %v: apiserver says %v, engine %v (%v)", tr.req, tr.id.User, tr.id.Groups, a.allowed, got, grantPaths(grants))
			}
		}
	}
	t.Logf("%d requests: %d allowed, %d denied, %d mismatches", len(triples), allowed, len(triples)-allowed, mismatches)
	if allowed < sarTriples/20 || allowed > sarTriples*19/20 {
		t.Errorf("the sample is lopsided: %d of %d allowed", allowed, len(triples))
	}
}

func grantPaths(gs []rbac.Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, fmt.Sprintf("%s [%v]", g.Path(), g.Rule))
	}
	return out
}
