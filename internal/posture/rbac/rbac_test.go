package rbac_test

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cofferhq/coffer/internal/posture/posturetest"
	"github.com/cofferhq/coffer/internal/posture/rbac"
)

type objects struct {
	roles []rbacv1.Role
	crs   []rbacv1.ClusterRole
	rbs   []rbacv1.RoleBinding
	crbs  []rbacv1.ClusterRoleBinding
}

func build(objs ...any) *rbac.Engine {
	var o objects
	for _, x := range objs {
		switch v := x.(type) {
		case *rbacv1.Role:
			o.roles = append(o.roles, *v)
		case *rbacv1.ClusterRole:
			o.crs = append(o.crs, *v)
		case *rbacv1.RoleBinding:
			o.rbs = append(o.rbs, *v)
		case *rbacv1.ClusterRoleBinding:
			o.crbs = append(o.crbs, *v)
		}
	}
	return rbac.New(o.roles, o.crs, o.rbs, o.crbs)
}

var (
	alice = rbac.Subject{Kind: rbac.UserKind, Name: "alice"}
	bob   = rbac.Subject{Kind: rbac.UserKind, Name: "bob"}
	app   = rbac.Subject{Kind: rbac.ServiceAccountKind, Namespace: "shop", Name: "app"}
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	pt := posturetest.Rule
	cases := []struct {
		name    string
		objs    []any
		who     rbac.Identity
		req     rbac.Request
		allowed bool
	}{
		{"exact rule", []any{
			posturetest.Role("shop", "r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "Role", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop", Name: "db"}, true},
		{"other verb denied", []any{
			posturetest.Role("shop", "r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "Role", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "list", Resource: "secrets", Namespace: "shop"}, false},
		{"role binding does not reach another namespace", []any{
			posturetest.Role("shop", "r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "Role", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "other"}, false},
		{"role binding does not reach all namespaces", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets"}, false},
		{"cluster role through role binding", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}, true},
		{"cluster role binding everywhere", []any{
			posturetest.ClusterRole("r", pt("list", "core", "secrets")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "list", Resource: "secrets"}, true},
		{"wildcards", []any{
			posturetest.ClusterRole("r", pt("*", "*", "*")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "x"}, true},
		{"wildcard resources do not give non-resource URLs", []any{
			posturetest.ClusterRole("r", pt("*", "*", "*")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Path: "/metrics"}, false},
		{"group must match", []any{
			posturetest.ClusterRole("r", pt("get", "apps", "deployments")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Group: "extensions", Resource: "deployments", Namespace: "a"}, false},
		{"star slash subresource", []any{
			posturetest.ClusterRole("r", pt("create", "core", "*/exec")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "a"}, true},
		{"resource does not give its subresource", []any{
			posturetest.ClusterRole("r", pt("create", "core", "pods")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "a"}, false},
		{"resource slash star is not a wildcard", []any{
			posturetest.ClusterRole("r", pt("create", "core", "pods/*")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "a"}, false},
		{"resource name allows that name", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets", "db")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "a", Name: "db"}, true},
		{"resource name denies other names", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets", "db")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "a", Name: "other"}, false},
		{"resource name denies list", []any{
			posturetest.ClusterRole("r", pt("list", "core", "secrets", "db")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "list", Resource: "secrets", Namespace: "a"}, false},
		{"non-resource exact", []any{
			posturetest.ClusterRole("r", posturetest.URLRule("get", "/healthz")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Path: "/healthz"}, true},
		{"non-resource prefix", []any{
			posturetest.ClusterRole("r", posturetest.URLRule("get", "/logs/*")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Path: "/logs/kube-apiserver.log"}, true},
		{"non-resource prefix is a prefix only", []any{
			posturetest.ClusterRole("r", posturetest.URLRule("get", "/logs/*")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Path: "/metrics"}, false},
		{"non-resource through a role binding is not granted", []any{
			posturetest.ClusterRole("r", posturetest.URLRule("get", "*")),
			posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Path: "/metrics"}, false},
		{"service account subject", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.ServiceAccount("shop", "app")),
		}, app.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}, true},
		{"service account without namespace means the binding's", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.RoleBinding("shop", "b", "ClusterRole", "r", posturetest.ServiceAccount("", "app")),
		}, app.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}, true},
		{"service account without namespace in a cluster binding matches nothing", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.ServiceAccount("", "app")),
		}, app.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}, false},
		{"user named as a service account", []any{
			posturetest.ClusterRole("r", pt("get", "core", "secrets")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.User("system:serviceaccount:shop:app")),
		}, app.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}, true},
		{"all authenticated", []any{
			posturetest.ClusterRole("r", pt("list", "core", "configmaps")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.Group(rbac.Authenticated)),
		}, app.Identity(), rbac.Request{Verb: "list", Resource: "configmaps", Namespace: "x"}, true},
		{"all service accounts", []any{
			posturetest.ClusterRole("r", pt("list", "core", "configmaps")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.Group(rbac.AllServiceAccounts)),
		}, app.Identity(), rbac.Request{Verb: "list", Resource: "configmaps", Namespace: "x"}, true},
		{"service accounts of a namespace", []any{
			posturetest.ClusterRole("r", pt("list", "core", "configmaps")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.Group("system:serviceaccounts:shop")),
		}, app.Identity(), rbac.Request{Verb: "list", Resource: "configmaps", Namespace: "x"}, true},
		{"users are not service accounts", []any{
			posturetest.ClusterRole("r", pt("list", "core", "configmaps")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.Group(rbac.AllServiceAccounts)),
		}, alice.Identity(), rbac.Request{Verb: "list", Resource: "configmaps", Namespace: "x"}, false},
		{"anonymous is not authenticated", []any{
			posturetest.ClusterRole("r", pt("list", "core", "configmaps")),
			posturetest.ClusterRoleBinding("b", "r", posturetest.Group(rbac.Authenticated)),
		}, rbac.Subject{Kind: rbac.UserKind, Name: rbac.Anonymous}.Identity(), rbac.Request{Verb: "list", Resource: "configmaps", Namespace: "x"}, false},
		{"missing role grants nothing", []any{
			posturetest.ClusterRoleBinding("b", "nope", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "x"}, false},
		{"aggregated role", []any{
			posturetest.Aggregated("agg", "example.com/agg"),
			posturetest.Labeled(posturetest.ClusterRole("part", pt("get", "core", "secrets")), "example.com/agg", "true"),
			posturetest.ClusterRoleBinding("b", "agg", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "x"}, true},
		{"aggregation is transitive", []any{
			posturetest.Aggregated("top", "example.com/top"),
			posturetest.Labeled(posturetest.Aggregated("mid", "example.com/mid"), "example.com/top", "true"),
			posturetest.Labeled(posturetest.ClusterRole("leaf", pt("create", "core", "pods")), "example.com/mid", "true"),
			posturetest.ClusterRoleBinding("b", "top", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "create", Resource: "pods", Namespace: "x"}, true},
		{"aggregation replaces stored rules", []any{
			func() *rbacv1.ClusterRole {
				cr := posturetest.Aggregated("agg", "example.com/agg")
				cr.Rules = []rbacv1.PolicyRule{pt("delete", "core", "pods")}
				return cr
			}(),
			posturetest.ClusterRoleBinding("b", "agg", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "delete", Resource: "pods", Namespace: "x"}, false},
		{"aggregation label must match", []any{
			posturetest.Aggregated("agg", "example.com/agg"),
			posturetest.Labeled(posturetest.ClusterRole("part", pt("get", "core", "secrets")), "example.com/agg", "false"),
			posturetest.ClusterRoleBinding("b", "agg", posturetest.User("alice")),
		}, alice.Identity(), rbac.Request{Verb: "get", Resource: "secrets", Namespace: "x"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := build(c.objs...)
			grants := e.Allowed(c.who, c.req)
			if got := len(grants) > 0; got != c.allowed {
				t.Fatalf("Allowed(%v, %s) = %v (%v), want %v", c.who, c.req, got, grants, c.allowed)
			}
			for _, g := range grants {
				if !rbac.Allows(&g.Rule, c.req) {
					t.Errorf("grant %s does not allow the request", g.Path())
				}
			}
		})
	}
}

func TestGrantExplains(t *testing.T) {
	t.Parallel()
	e := build(
		posturetest.Aggregated("agg", "example.com/agg"),
		posturetest.Labeled(posturetest.ClusterRole("part", posturetest.Rule("get", "core", "secrets")), "example.com/agg", "true"),
		posturetest.RoleBinding("shop", "b", "ClusterRole", "agg", posturetest.Group("devs")),
	)
	grants := e.Allowed(rbac.Identity{User: "carol", Groups: []string{"devs"}}, rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop", Name: "x"})
	if len(grants) != 1 {
		t.Fatalf("grants = %v", grants)
	}
	g := grants[0]
	if g.Subject.Key() != "Group:devs" || g.From != "part" || g.Namespace != "shop" {
		t.Errorf("grant = %+v", g)
	}
	if want := "RoleBinding shop/b -> ClusterRole agg (aggregated from ClusterRole part)"; g.Path() != want {
		t.Errorf("Path = %q, want %q", g.Path(), want)
	}
}

func TestWhoCan(t *testing.T) {
	t.Parallel()
	e := build(
		posturetest.ClusterRole("reader", posturetest.Rule("get,list", "core", "secrets")),
		posturetest.ClusterRole("named", posturetest.Rule("get", "core", "secrets", "db")),
		posturetest.RoleBinding("shop", "r", "ClusterRole", "reader", posturetest.User("alice"), posturetest.Group("devs")),
		posturetest.RoleBinding("other", "r", "ClusterRole", "reader", posturetest.User("mallory")),
		posturetest.RoleBinding("shop", "n", "ClusterRole", "named", posturetest.User("bob")),
		posturetest.ClusterRoleBinding("c", "reader", posturetest.ServiceAccount("ops", "bot")),
	)
	keys := func(gs []rbac.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Subject.Key())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	req := rbac.Request{Verb: "get", Resource: "secrets", Namespace: "shop"}
	if got, want := keys(e.WhoCan(req, false)), []string{"Group:devs", "ServiceAccount:ops/bot", "User:alice"}; !slices.Equal(got, want) {
		t.Errorf("who can get secrets in shop = %v, want %v", got, want)
	}
	if got, want := keys(e.WhoCan(req, true)), []string{"Group:devs", "ServiceAccount:ops/bot", "User:alice", "User:bob"}; !slices.Equal(got, want) {
		t.Errorf("with names: %v, want %v", got, want)
	}
	req.Name = "db"
	if got := keys(e.WhoCan(req, false)); !slices.Contains(got, "User:bob") {
		t.Errorf("who can get secret db = %v, want bob in it", got)
	}
	if got, want := keys(e.WhoCan(rbac.Request{Verb: "list", Resource: "secrets"}, false)), []string{"ServiceAccount:ops/bot"}; !slices.Equal(got, want) {
		t.Errorf("who can list secrets in all namespaces = %v, want %v", got, want)
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	e := build(
		posturetest.ClusterRoleBinding("b", "missing", posturetest.User("alice")),
		posturetest.RoleBinding("shop", "r", "Role", "gone", posturetest.User("alice")),
	)
	p := strings.Join(e.Problems(), "\n")
	for _, want := range []string{"ClusterRoleBinding b refers to ClusterRole missing", "RoleBinding shop/r refers to Role shop/gone"} {
		if !strings.Contains(p, want) {
			t.Errorf("problems %q lack %q", p, want)
		}
	}
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want rbac.Subject
		err  bool
	}{
		{"user:alice", alice, false},
		{"User:bob", bob, false},
		{"group:system:masters", rbac.Subject{Kind: rbac.GroupKind, Name: "system:masters"}, false},
		{"serviceaccount:shop/app", app, false},
		{"sa:shop/app", app, false},
		{"system:serviceaccount:shop:app", app, false},
		{"user:system:serviceaccount:shop:app", app, false},
		{"sa:app", rbac.Subject{}, true},
		{"robot:x", rbac.Subject{}, true},
		{"alice", rbac.Subject{}, true},
	}
	for _, c := range cases {
		got, err := rbac.ParseSubject(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseSubject(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}
