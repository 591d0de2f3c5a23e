package kubernetes

import (
	"testing"

	"github.com/cofferhq/coffer/internal/policy"
)

// TestNamespaceTemplatedPolicy shows that one templated policy gives the
// logins of two namespaces disjoint subtrees.
func TestNamespaceTemplatedPolicy(t *testing.T) {
	t.Parallel()
	h, c := offlineHarness(t)
	h.write("role/any", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*",
		"token_policies": "per-namespace"})
	p, err := policy.Parse("per-namespace",
		`path "secret/data/{{identity.metadata.service_account_namespace}}/*" { capabilities = ["read"] }`)
	if err != nil {
		t.Fatal(err)
	}
	acl := func(ns string) *policy.ACL {
		l, err := h.login("any", c.token(t, sa{ns: ns, name: "app"}))
		if err != nil {
			t.Fatalf("login %s: %v", ns, err)
		}
		a, err := policy.NewACL(policy.Identity{EntityID: l.EntityID, EntityName: l.DisplayName, Metadata: l.Metadata}, p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := acl("team-a"), acl("team-b")
	for _, tc := range []struct {
		acl  *policy.ACL
		path string
		want bool
	}{
		{a, "secret/data/team-a/db", true},
		{a, "secret/data/team-b/db", false},
		{b, "secret/data/team-b/db", true},
		{b, "secret/data/team-a/db", false},
		{a, "secret/data/team-a", false},
		{a, "secret/metadata/team-a/db", false},
	} {
		if got := tc.acl.Allowed(tc.path, policy.Read); got != tc.want {
			t.Errorf("read %s = %v, want %v", tc.path, got, tc.want)
		}
	}
	if a.Allowed("secret/data/team-a/db", policy.Update) {
		t.Error("the policy grants update")
	}
}
