package posture

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// atomKind is one RBAC power that matters for reaching secrets.
type atomKind int

const (
	atGetSecrets atomKind = iota
	atListSecrets
	atWriteSecrets
	atCreatePods
	atWorkloads
	atUpdatePods
	atExec
	atAttach
	atEphemeral
	atImpersonateUsers
	atImpersonateGroups
	atImpersonateSAs
	atBindRoles
	atBindClusterRoles
	atEscalateRoles
	atEscalateClusterRoles
	atWriteRoles
	atWriteClusterRoles
	atWriteRoleBindings
	atWriteClusterRoleBindings
	atTokenRequest
	atNodesProxy
	atCreateCSR
	atApproveCSR
	atApproveSigner
	atMutatingWebhooks
	atValidatingWebhooks
	atKinds
)

// probe is a request shape that grants an atom.
type probe struct {
	kind          atomKind
	verbs         []string
	group         string
	resources     []string
	sub           string
	clusterScoped bool
}

var probes = []probe{
	{kind: atGetSecrets, verbs: []string{"get"}, resources: []string{"secrets"}},
	{kind: atListSecrets, verbs: []string{"list", "watch"}, resources: []string{"secrets"}},
	{kind: atWriteSecrets, verbs: []string{"create", "update", "patch"}, resources: []string{"secrets"}},
	{kind: atCreatePods, verbs: []string{"create"}, resources: []string{"pods"}},
	{kind: atWorkloads, verbs: []string{"create", "update", "patch"}, group: "apps", resources: []string{"deployments", "replicasets", "statefulsets", "daemonsets"}},
	{kind: atWorkloads, verbs: []string{"create", "update", "patch"}, group: "batch", resources: []string{"jobs", "cronjobs"}},
	{kind: atWorkloads, verbs: []string{"create", "update", "patch"}, resources: []string{"replicationcontrollers"}},
	{kind: atUpdatePods, verbs: []string{"update", "patch"}, resources: []string{"pods"}},
	{kind: atExec, verbs: []string{"create", "get"}, resources: []string{"pods"}, sub: "exec"},
	{kind: atAttach, verbs: []string{"create", "get"}, resources: []string{"pods"}, sub: "attach"},
	{kind: atEphemeral, verbs: []string{"update", "patch"}, resources: []string{"pods"}, sub: "ephemeralcontainers"},
	{kind: atImpersonateUsers, verbs: []string{"impersonate"}, resources: []string{"users"}, clusterScoped: true},
	{kind: atImpersonateGroups, verbs: []string{"impersonate"}, resources: []string{"groups"}, clusterScoped: true},
	{kind: atImpersonateSAs, verbs: []string{"impersonate"}, resources: []string{"serviceaccounts"}},
	{kind: atBindRoles, verbs: []string{"bind"}, group: rbacv1.GroupName, resources: []string{"roles"}},
	{kind: atBindClusterRoles, verbs: []string{"bind"}, group: rbacv1.GroupName, resources: []string{"clusterroles"}},
	{kind: atEscalateRoles, verbs: []string{"escalate"}, group: rbacv1.GroupName, resources: []string{"roles"}},
	{kind: atEscalateClusterRoles, verbs: []string{"escalate"}, group: rbacv1.GroupName, resources: []string{"clusterroles"}, clusterScoped: true},
	{kind: atWriteRoles, verbs: []string{"create", "update", "patch"}, group: rbacv1.GroupName, resources: []string{"roles"}},
	{kind: atWriteClusterRoles, verbs: []string{"create", "update", "patch"}, group: rbacv1.GroupName, resources: []string{"clusterroles"}, clusterScoped: true},
	{kind: atWriteRoleBindings, verbs: []string{"create", "update", "patch"}, group: rbacv1.GroupName, resources: []string{"rolebindings"}},
	{kind: atWriteClusterRoleBindings, verbs: []string{"create", "update", "patch"}, group: rbacv1.GroupName, resources: []string{"clusterrolebindings"}, clusterScoped: true},
	{kind: atTokenRequest, verbs: []string{"create"}, resources: []string{"serviceaccounts"}, sub: "token"},
	{kind: atNodesProxy, verbs: []string{"get", "create"}, resources: []string{"nodes"}, sub: "proxy", clusterScoped: true},
	{kind: atCreateCSR, verbs: []string{"create"}, group: "certificates.k8s.io", resources: []string{"certificatesigningrequests"}, clusterScoped: true},
	{kind: atApproveCSR, verbs: []string{"update", "patch"}, group: "certificates.k8s.io", resources: []string{"certificatesigningrequests"}, sub: "approval", clusterScoped: true},
	{kind: atApproveSigner, verbs: []string{"approve"}, group: "certificates.k8s.io", resources: []string{"signers"}, clusterScoped: true},
	{kind: atMutatingWebhooks, verbs: []string{"create", "update", "patch"}, group: "admissionregistration.k8s.io", resources: []string{"mutatingwebhookconfigurations"}, clusterScoped: true},
	{kind: atValidatingWebhooks, verbs: []string{"create", "update", "patch"}, group: "admissionregistration.k8s.io", resources: []string{"validatingwebhookconfigurations"}, clusterScoped: true},
}

// allNamespaces is the scope of a role held through RoleBindings in every
// namespace: every namespace, but not cluster-scoped resources.
const allNamespaces = "*"

// atom is a power held in a scope: a namespace, allNamespaces, or "" for
// the whole cluster (a ClusterRoleBinding).
type atom struct {
	kind  atomKind
	scope string
	// names limits the atom to these object names; nil for any.
	names []string
	verb  string
	// via explains where it comes from; inherited is set when it comes
	// through a group binding.
	via       string
	inherited bool
}

// protoAtom is an atom of a role's rule before it is bound.
type protoAtom struct {
	kind          atomKind
	names         []string
	verb          string
	from          string
	clusterScoped bool
}

// roleAtoms derives the atoms of a rule list.
func roleAtoms(rules []rbac.Rule) []protoAtom {
	var out []protoAtom
	for i := range rules {
		r := &rules[i]
		if len(r.Resources) == 0 {
			continue
		}
		for _, p := range probes {
			for _, res := range p.resources {
				for _, v := range p.verbs {
					names, ok := rbac.MatchResource(&r.PolicyRule, rbac.Request{Verb: v, Group: p.group, Resource: res, Subresource: p.sub})
					if !ok {
						continue
					}
					out = append(out, protoAtom{kind: p.kind, names: names, verb: v + " " + resourceString(p.group, res, p.sub), from: r.From, clusterScoped: p.clusterScoped})
					break
				}
			}
		}
	}
	return out
}

func resourceString(group, res, sub string) string {
	if group != "" {
		res += "." + group
	}
	if sub != "" {
		res += "/" + sub
	}
	return res
}

// atomSet groups a principal's atoms by kind.
type atomSet [atKinds][]atom

func (a *atomSet) has(k atomKind) bool { return len(a[k]) > 0 }

// inScope returns the atoms of kind k that apply in namespace ns ("" for
// cluster scope), with the union of their names (nil: any).
func (a *atomSet) inScope(k atomKind, ns string) (atoms []atom, names []string, any bool) {
	for _, at := range a[k] {
		if !covers(at.scope, ns) {
			continue
		}
		atoms = append(atoms, at)
		if at.names == nil {
			any = true
		} else {
			names = append(names, at.names...)
		}
	}
	if any {
		names = nil
	}
	slices.Sort(names)
	return atoms, slices.Compact(names), any
}

// covers reports whether an atom's scope includes namespace ns; ns "" asks
// for every namespace at once.
func covers(scope, ns string) bool {
	switch scope {
	case "":
		return true
	case allNamespaces:
		return ns != ""
	}
	return scope == ns
}

// scopes lists the distinct scopes of atoms of kind k, sorted.
func (a *atomSet) scopes(k atomKind) []string {
	var out []string
	for _, at := range a[k] {
		out = append(out, at.scope)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
