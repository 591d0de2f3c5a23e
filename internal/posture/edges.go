package posture

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// Signers whose approval yields a client certificate the apiserver
// accepts.
var apiserverClientSigners = []string{"kubernetes.io/kube-apiserver-client", "kubernetes.io/*"}

// atomEdges turns a principal's atoms into edges.
func (g *graph) atomEdges(b *edgeBuilder, a *atomSet) {
	g.readEdges(b, a)
	g.podEdgesFromAtoms(b, a)
	g.identityEdges(b, a)
	g.roleEdges(b, a)
	g.clusterEdges(b, a)
}

func (g *graph) readEdges(b *edgeBuilder, a *atomSet) {
	for _, at := range append(slices.Clone(a[atListSecrets]), a[atGetSecrets]...) {
		ns := targetNS(at.scope)
		reason := fmt.Sprintf("can %s %s", at.verb, where(at.scope))
		if at.names == nil {
			b.add(Node{Kind: NodeSecrets, Namespace: ns}, EdgeReadSecrets, reason, []atom{at})
			continue
		}
		for _, name := range at.names {
			if ns != "" {
				b.add(Node{Kind: NodeSecret, Namespace: ns, Name: name}, EdgeReadSecrets, reason+" named "+name, []atom{at})
				continue
			}
			for _, n := range g.namespaces {
				if g.secretNames[n][name] {
					b.add(Node{Kind: NodeSecret, Namespace: n, Name: name}, EdgeReadSecrets, reason+" named "+name, []atom{at})
				}
			}
		}
	}
	// A token Secret it creates is filled in by the control plane; reading
	// it back gives the service account's token.
	for _, w := range a[atWriteSecrets] {
		if w.names != nil {
			continue
		}
		for _, r := range append(slices.Clone(a[atListSecrets]), a[atGetSecrets]...) {
			if r.names != nil {
				continue
			}
			scope, ok := intersect(w.scope, r.scope)
			if !ok {
				continue
			}
			b.add(Node{Kind: NodeServiceAccounts, Namespace: targetNS(scope)}, EdgeTokenSecret,
				fmt.Sprintf("can %s and %s %s: a Secret of type kubernetes.io/service-account-token for any ServiceAccount gets a token it can read", w.verb, r.verb, where(scope)),
				[]atom{w, r})
		}
	}
}

func (g *graph) podEdgesFromAtoms(b *edgeBuilder, a *atomSet) {
	for _, at := range a[atCreatePods] {
		if at.names != nil {
			continue // create cannot be limited by name
		}
		ns := targetNS(at.scope)
		b.add(Node{Kind: NodeSecrets, Namespace: ns}, EdgeCreatePods, fmt.Sprintf("can create pods %s, and a pod can mount any Secret there", where(at.scope)), []atom{at})
		b.add(Node{Kind: NodeServiceAccounts, Namespace: ns}, EdgeCreatePods, fmt.Sprintf("can create pods %s, and a pod can run as any ServiceAccount there", where(at.scope)), []atom{at})
	}
	for _, at := range a[atWorkloads] {
		if at.names != nil && strings.HasPrefix(at.verb, "create") {
			continue
		}
		ns := targetNS(at.scope)
		what := at.verb
		if at.names != nil {
			what += " named " + names(at.names)
		}
		b.add(Node{Kind: NodeSecrets, Namespace: ns}, EdgePodController, fmt.Sprintf("can %s %s, and its pod template can mount any Secret there", what, where(at.scope)), []atom{at})
		b.add(Node{Kind: NodeServiceAccounts, Namespace: ns}, EdgePodController, fmt.Sprintf("can %s %s, and its pod template can run as any ServiceAccount there", what, where(at.scope)), []atom{at})
	}
	for _, k := range []struct {
		kind   atomKind
		edge   string
		reason string
	}{
		{atUpdatePods, EdgeUpdatePods, "can %s %s: a new container image runs with the pod's Secrets and token"},
		{atExec, EdgeExec, "can %s %s: a shell in a pod reads its Secrets and token"},
		{atAttach, EdgeAttach, "can %s %s: attaching to a container reaches its Secrets and token"},
		{atEphemeral, EdgeEphemeral, "can %s %s: a debug container added to a pod reads its Secrets and token"},
	} {
		for _, at := range a[k.kind] {
			ns := targetNS(at.scope)
			reason := fmt.Sprintf(k.reason, at.verb, where(at.scope))
			if at.names == nil {
				b.add(Node{Kind: NodePods, Namespace: ns}, k.edge, reason, []atom{at})
				continue
			}
			for _, name := range at.names {
				for _, n := range g.namespaces {
					if (ns == "" || ns == n) && g.podByName[n+"/"+name] != nil {
						b.add(Node{Kind: NodePod, Namespace: n, Name: name}, k.edge, reason, []atom{at})
					}
				}
			}
		}
	}
}

func (g *graph) identityEdges(b *edgeBuilder, a *atomSet) {
	for _, at := range a[atTokenRequest] {
		ns := targetNS(at.scope)
		reason := fmt.Sprintf("can %s %s: it mints tokens for those ServiceAccounts", at.verb, where(at.scope))
		if at.names == nil {
			b.add(Node{Kind: NodeServiceAccounts, Namespace: ns}, EdgeTokenRequest, reason, []atom{at})
			continue
		}
		g.namedAccounts(b, ns, at, EdgeTokenRequest, reason)
	}
	for _, at := range a[atImpersonateSAs] {
		ns := targetNS(at.scope)
		reason := fmt.Sprintf("can impersonate serviceaccounts %s", where(at.scope))
		if at.names == nil {
			b.add(Node{Kind: NodeServiceAccounts, Namespace: ns}, EdgeImpersonate, reason, []atom{at})
			continue
		}
		g.namedAccounts(b, ns, at, EdgeImpersonate, reason)
	}
	for _, at := range a[atImpersonateUsers] {
		if at.names == nil {
			for _, u := range g.users {
				b.add(subjectNode(u), EdgeImpersonate, "can impersonate any user", []atom{at})
			}
			continue
		}
		for _, name := range at.names {
			b.add(subjectNode(rbac.Subject{Kind: rbac.UserKind, Name: name}), EdgeImpersonate, "can impersonate user "+name, []atom{at})
		}
	}
	// Impersonating a group needs a user or service account to go with it.
	if a.has(atImpersonateUsers) || a.has(atImpersonateSAs) {
		carrier := append(slices.Clone(a[atImpersonateUsers]), a[atImpersonateSAs]...)[0]
		for _, at := range a[atImpersonateGroups] {
			if at.names == nil {
				b.add(subjectNode(rbac.Subject{Kind: rbac.GroupKind, Name: rbac.Masters}), EdgeImpersonate, "can impersonate any group, system:masters included", []atom{at, carrier})
				for _, gr := range g.groups {
					b.add(subjectNode(gr), EdgeImpersonate, "can impersonate any group", []atom{at, carrier})
				}
				continue
			}
			for _, name := range at.names {
				b.add(subjectNode(rbac.Subject{Kind: rbac.GroupKind, Name: name}), EdgeImpersonate, "can impersonate group "+name, []atom{at, carrier})
			}
		}
	}
}

func (g *graph) namedAccounts(b *edgeBuilder, ns string, at atom, kind, reason string) {
	for _, name := range at.names {
		if ns != "" {
			b.add(saNode(ns, name), kind, reason, []atom{at})
			continue
		}
		for _, n := range g.namespaces {
			if slices.Contains(g.accounts[n], name) {
				b.add(saNode(n, name), kind, reason, []atom{at})
			}
		}
	}
}

// roleEdges: binding roles it may bind, or rewriting roles with escalate.
func (g *graph) roleEdges(b *edgeBuilder, a *atomSet) {
	holdScope := func(s string) string {
		if s == "" {
			return allNamespaces // RoleBindings in every namespace
		}
		return s
	}
	for _, w := range a[atWriteRoleBindings] {
		for _, bind := range a[atBindClusterRoles] {
			scope, ok := intersect(w.scope, bind.scope)
			if !ok {
				continue
			}
			g.bindEdges(b, holdScope(scope), bind, rbac.ClusterRoleKind, []atom{w, bind})
		}
		for _, bind := range a[atBindRoles] {
			scope, ok := intersect(w.scope, bind.scope)
			if !ok {
				continue
			}
			g.bindEdges(b, holdScope(scope), bind, rbac.RoleKind, []atom{w, bind})
		}
	}
	for _, w := range a[atWriteClusterRoleBindings] {
		for _, bind := range a[atBindClusterRoles] {
			if bind.scope == "" {
				g.bindEdges(b, "", bind, rbac.ClusterRoleKind, []atom{w, bind})
			}
		}
	}
	for _, e := range a[atEscalateRoles] {
		for _, w := range a[atWriteRoles] {
			scope, ok := intersect(e.scope, w.scope)
			if !ok {
				continue
			}
			b.add(Node{Kind: NodeRole, Role: &rbac.Ref{Kind: rbac.RoleKind, Name: "*"}, Namespace: holdScope(scope)}, EdgeEscalate,
				fmt.Sprintf("can escalate and %s %s: it can write any rule into a role", w.verb, where(scope)), []atom{e, w})
		}
	}
	for _, e := range a[atEscalateClusterRoles] {
		for _, w := range a[atWriteClusterRoles] {
			b.add(Node{Kind: NodeRole, Role: &rbac.Ref{Kind: rbac.ClusterRoleKind, Name: "*"}}, EdgeEscalate,
				"can escalate and "+w.verb+": it can write any rule into a ClusterRole", []atom{e, w})
		}
	}
}

// bindEdges adds edges to the roles a bind atom allows binding in scope.
func (g *graph) bindEdges(b *edgeBuilder, scope string, bind atom, kind string, atoms []atom) {
	reason := fmt.Sprintf("can create role bindings %s and %s", where(scope), bind.verb)
	if kind == rbac.ClusterRoleKind && bind.names == nil {
		b.add(Node{Kind: NodeRole, Role: &rbac.Ref{Kind: rbac.ClusterRoleKind, Name: "*"}, Namespace: scope}, EdgeBind, reason+" for any ClusterRole (cluster-admin included)", atoms)
		return
	}
	for _, r := range g.eng.Roles() {
		if r.Ref.Kind != kind {
			continue
		}
		if kind == rbac.RoleKind && scope != allNamespaces && r.Ref.Namespace != scope {
			continue
		}
		if bind.names != nil && !slices.Contains(bind.names, r.Ref.Name) {
			continue
		}
		ref := r.Ref
		ns := scope
		if kind == rbac.RoleKind {
			ns = ref.Namespace
		}
		b.add(Node{Kind: NodeRole, Role: &ref, Namespace: ns}, EdgeBind, reason+" for "+ref.String(), atoms)
	}
}

func (g *graph) clusterEdges(b *edgeBuilder, a *atomSet) {
	for _, at := range a[atNodesProxy] {
		b.add(Node{Kind: NodePods}, EdgeNodesProxy, "can "+at.verb+": the kubelet API runs commands in any pod on any node", []atom{at})
	}
	if a.has(atCreateCSR) && a.has(atApproveCSR) {
		for _, at := range a[atApproveSigner] {
			if at.names != nil && !slices.ContainsFunc(at.names, func(n string) bool { return slices.Contains(apiserverClientSigners, n) }) {
				continue
			}
			b.add(subjectNode(rbac.Subject{Kind: rbac.GroupKind, Name: rbac.Masters}), EdgeCSRApproval,
				"can create and approve a CertificateSigningRequest for the kube-apiserver-client signer: a client certificate for any user in any group, system:masters included",
				[]atom{a[atCreateCSR][0], a[atApproveCSR][0], at})
		}
	}
	for _, at := range a[atMutatingWebhooks] {
		b.add(Node{Kind: NodeSecrets}, EdgeWebhook, "can "+at.verb+": a webhook it registers receives every Secret written", []atom{at})
		b.add(Node{Kind: NodeServiceAccounts}, EdgeWebhook, "can "+at.verb+": a webhook it registers can change every new pod, its service account included", []atom{at})
	}
	for _, at := range a[atValidatingWebhooks] {
		b.add(Node{Kind: NodeSecrets}, EdgeWebhook, "can "+at.verb+": a webhook it registers receives every Secret written", []atom{at})
	}
}
