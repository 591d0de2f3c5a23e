package posture

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// NodeKind is the kind of a node of the escalation graph.
type NodeKind string

// Node kinds. Subjects are where paths start; Secrets and Secret nodes are
// where they end.
const (
	NodeSubject         NodeKind = "subject"          // a user, group or service account
	NodeRole            NodeKind = "role"             // a role held in a scope after bind or escalate
	NodeServiceAccounts NodeKind = "service-accounts" // any service account of a namespace
	NodePods            NodeKind = "pods"             // the pods of a namespace
	NodePod             NodeKind = "pod"              // one pod
	NodeSecrets         NodeKind = "secrets"          // every Secret of a namespace ("" for all)
	NodeSecret          NodeKind = "secret"           // one Secret
)

// Node is a node of the escalation graph.
type Node struct {
	Kind    NodeKind      `json:"kind"`
	Subject *rbac.Subject `json:"subject,omitempty"`
	// Role is set for NodeRole; Name "*" stands for every rule.
	Role *rbac.Ref `json:"role,omitempty"`
	// Namespace is the namespace or scope; "" means every namespace (for a
	// role: the whole cluster; "*" every namespace but not the cluster
	// scope).
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

func (n Node) key() string {
	switch n.Kind {
	case NodeSubject:
		return "s|" + n.Subject.Key()
	case NodeRole:
		return "r|" + n.Role.Kind + "|" + n.Role.Namespace + "|" + n.Role.Name + "|" + n.Namespace
	}
	return string(n.Kind) + "|" + n.Namespace + "|" + n.Name
}

// String describes the node for people.
func (n Node) String() string {
	in := func() string {
		if n.Namespace == "" {
			return "in every namespace"
		}
		return "in namespace " + n.Namespace
	}
	switch n.Kind {
	case NodeSubject:
		return n.Subject.String()
	case NodeRole:
		role := n.Role.String()
		if n.Role.Name == "*" {
			role = "every permission"
		}
		switch n.Namespace {
		case "":
			return role + " cluster-wide"
		case allNamespaces:
			return role + " in every namespace"
		}
		return role + " in namespace " + n.Namespace
	case NodeServiceAccounts:
		return "any ServiceAccount " + in()
	case NodePods:
		return "running pods " + in()
	case NodePod:
		return "Pod " + n.Namespace + "/" + n.Name
	case NodeSecrets:
		return "all Secrets " + in()
	case NodeSecret:
		return "Secret " + n.Namespace + "/" + n.Name
	}
	return string(n.Kind)
}

// Edge kinds: each is one way to gain the next node.
const (
	EdgeReadSecrets     = "read-secrets"
	EdgeCreatePods      = "create-pods"
	EdgePodController   = "pod-controller"
	EdgeUpdatePods      = "update-pods"
	EdgeExec            = "pods-exec"
	EdgeAttach          = "pods-attach"
	EdgeEphemeral       = "ephemeral-containers"
	EdgeImpersonate     = "impersonate"
	EdgeBind            = "bind"
	EdgeEscalate        = "escalate"
	EdgeTokenRequest    = "serviceaccount-token"
	EdgeTokenSecret     = "token-secret"
	EdgeNodesProxy      = "nodes-proxy"
	EdgeCSRApproval     = "csr-approval"
	EdgeWebhook         = "webhook-configuration"
	EdgeRunsAs          = "runs-as"
	EdgeMounts          = "mounts"
	EdgeAnyAccount      = "any-service-account"
	EdgeStoredToken     = "stored-token"
	EdgeHoldsRole       = "holds"
	EdgeEveryNamespace  = "every-namespace"
	EdgeMastersIdentity = "masters"
)

// edgeCIS maps edge kinds to the CIS Kubernetes Benchmark control that
// asks to limit them.
var edgeCIS = map[string]string{
	EdgeReadSecrets:   "5.1.2",
	EdgeCreatePods:    "5.1.4",
	EdgePodController: "5.1.4",
	EdgeImpersonate:   "5.1.8",
	EdgeBind:          "5.1.8",
	EdgeEscalate:      "5.1.8",
	EdgeTokenRequest:  "5.1.13",
	EdgeNodesProxy:    "5.1.10",
	EdgeCSRApproval:   "5.1.11",
	EdgeWebhook:       "5.1.12",
}

// Edge is one step of a path, with why it is possible.
type Edge struct {
	to     int
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Via lists the bindings that grant the step.
	Via []string `json:"via,omitempty"`
	// Inherited is set when every grant behind the step is a group's.
	Inherited bool `json:"inherited,omitempty"`
}

// graph is the escalation graph, built lazily: a node's edges are
// computed when a search first leaves it.
type graph struct {
	eng       *rbac.Engine
	nodes     []Node
	index     map[string]int
	out       [][]Edge
	expanded  []bool
	roleCache map[rbac.Ref][]protoAtom

	// Search state reused by reach.
	epoch  uint32
	seen   []uint32
	parent []hop
	queue  []int

	// From the snapshot.
	namespaces   []string
	accounts     map[string][]string         // namespace -> service accounts
	pods         map[string][]*Workload      // namespace -> workloads
	podByName    map[string]*Workload        // ns/name -> bare pod
	tokenSecrets map[string][]corev1.Secret  // namespace -> legacy token Secrets
	automount    map[string]map[string]*bool // namespace -> SA -> automountServiceAccountToken
	users        []rbac.Subject              // users named in bindings
	groups       []rbac.Subject              // groups named in bindings
	secretNames  map[string]map[string]bool  // namespace -> Secret names
}

// TokenSecretSAAnnotation names the service account of a legacy token
// Secret.
const TokenSecretSAAnnotation = corev1.ServiceAccountNameKey

func newGraph(s *Snapshot, eng *rbac.Engine, wl []*Workload) *graph {
	g := &graph{
		eng:          eng,
		index:        map[string]int{},
		roleCache:    map[rbac.Ref][]protoAtom{},
		accounts:     map[string][]string{},
		pods:         map[string][]*Workload{},
		podByName:    map[string]*Workload{},
		tokenSecrets: map[string][]corev1.Secret{},
		automount:    map[string]map[string]*bool{},
		secretNames:  map[string]map[string]bool{},
	}
	nsSet := map[string]bool{}
	addSA := func(ns, name string) {
		nsSet[ns] = true
		g.accounts[ns] = append(g.accounts[ns], name)
	}
	for _, n := range s.Namespaces {
		nsSet[n.Name] = true
	}
	for i := range s.ServiceAccounts {
		sa := &s.ServiceAccounts[i]
		addSA(sa.Namespace, sa.Name)
		if g.automount[sa.Namespace] == nil {
			g.automount[sa.Namespace] = map[string]*bool{}
		}
		g.automount[sa.Namespace][sa.Name] = sa.AutomountServiceAccountToken
	}
	for _, w := range wl {
		nsSet[w.Namespace] = true
		g.pods[w.Namespace] = append(g.pods[w.Namespace], w)
		addSA(w.Namespace, w.ServiceAccount())
		if w.Kind == "Pod" {
			g.podByName[w.Namespace+"/"+w.Name] = w
		}
	}
	for i := range s.Secrets {
		sec := &s.Secrets[i]
		nsSet[sec.Namespace] = true
		if g.secretNames[sec.Namespace] == nil {
			g.secretNames[sec.Namespace] = map[string]bool{}
		}
		g.secretNames[sec.Namespace][sec.Name] = true
		if sec.Type == corev1.SecretTypeServiceAccountToken {
			if sa := sec.Annotations[TokenSecretSAAnnotation]; sa != "" {
				g.tokenSecrets[sec.Namespace] = append(g.tokenSecrets[sec.Namespace], *sec)
				addSA(sec.Namespace, sa)
			}
		}
	}
	for _, sub := range eng.Subjects() {
		switch sub.Kind {
		case rbac.UserKind:
			g.users = append(g.users, sub)
		case rbac.GroupKind:
			g.groups = append(g.groups, sub)
		case rbac.ServiceAccountKind:
			addSA(sub.Namespace, sub.Name)
		}
	}
	for ns, list := range g.accounts {
		slices.Sort(list)
		g.accounts[ns] = slices.Compact(list)
	}
	for ns := range nsSet {
		g.namespaces = append(g.namespaces, ns)
	}
	sort.Strings(g.namespaces)
	return g
}

func (g *graph) node(n Node) int {
	k := n.key()
	if i, ok := g.index[k]; ok {
		return i
	}
	i := len(g.nodes)
	g.nodes = append(g.nodes, n)
	g.out = append(g.out, nil)
	g.expanded = append(g.expanded, false)
	g.index[k] = i
	return i
}

func subjectNode(s rbac.Subject) Node { return Node{Kind: NodeSubject, Subject: &s} }

func saNode(ns, name string) Node {
	return subjectNode(rbac.Subject{Kind: rbac.ServiceAccountKind, Namespace: ns, Name: name})
}

// edges returns node i's edges, computing them on first use.
func (g *graph) edges(i int) []Edge {
	if g.expanded[i] {
		return g.out[i]
	}
	g.expanded[i] = true
	n := g.nodes[i]
	var b edgeBuilder
	b.g = g
	switch n.Kind {
	case NodeSubject:
		g.subjectEdges(&b, *n.Subject)
	case NodeRole:
		var atoms atomSet
		g.addRoleAtoms(&atoms, n)
		g.atomEdges(&b, &atoms)
	case NodeServiceAccounts:
		g.anyAccountEdges(&b, n.Namespace)
	case NodePods:
		if n.Namespace == "" {
			for _, ns := range g.namespaces {
				if len(g.pods[ns]) > 0 {
					b.add(Node{Kind: NodePods, Namespace: ns}, EdgeEveryNamespace, "pods of namespace "+ns, nil)
				}
			}
			break
		}
		for _, w := range g.pods[n.Namespace] {
			g.podEdges(&b, w)
		}
	case NodePod:
		if w := g.podByName[n.Namespace+"/"+n.Name]; w != nil {
			g.podEdges(&b, w)
		}
	case NodeSecrets:
		for _, ns := range g.namespaces {
			if n.Namespace != "" && ns != n.Namespace {
				continue
			}
			for _, sec := range g.tokenSecrets[ns] {
				sa := sec.Annotations[TokenSecretSAAnnotation]
				b.add(saNode(ns, sa), EdgeStoredToken, fmt.Sprintf("Secret %s/%s holds a token of ServiceAccount %s/%s", ns, sec.Name, ns, sa), nil)
			}
		}
	case NodeSecret:
		for _, sec := range g.tokenSecrets[n.Namespace] {
			if sec.Name == n.Name {
				sa := sec.Annotations[TokenSecretSAAnnotation]
				b.add(saNode(n.Namespace, sa), EdgeStoredToken, fmt.Sprintf("it holds a token of ServiceAccount %s/%s", n.Namespace, sa), nil)
			}
		}
	}
	g.out[i] = b.edges
	return g.out[i]
}

type edgeBuilder struct {
	g     *graph
	edges []Edge
	seen  map[edgeKey]int
}

type edgeKey struct {
	to   int
	kind string
}

// maxVia bounds the grants listed for one edge.
const maxVia = 4

// add adds an edge to n. A second edge of the same kind to the same node
// merges into the first: its grants are added and the edge is inherited
// only if every grant is.
func (b *edgeBuilder) add(n Node, kind, reason string, atoms []atom) {
	to := b.g.node(n)
	if b.seen == nil {
		b.seen = map[edgeKey]int{}
	}
	i, ok := b.seen[edgeKey{to, kind}]
	if !ok {
		i = len(b.edges)
		b.seen[edgeKey{to, kind}] = i
		b.edges = append(b.edges, Edge{to: to, Kind: kind, Reason: reason, Inherited: len(atoms) > 0})
	}
	e := &b.edges[i]
	for _, a := range atoms {
		e.Inherited = e.Inherited && a.inherited
		if !slices.Contains(e.Via, a.via) && len(e.Via) < maxVia {
			e.Via = append(e.Via, a.via)
		}
	}
}

func (g *graph) podEdges(b *edgeBuilder, w *Workload) {
	sa := w.ServiceAccount()
	if g.mountsToken(w) {
		b.add(saNode(w.Namespace, sa), EdgeRunsAs, fmt.Sprintf("%s runs as ServiceAccount %s/%s with its token mounted", w.Ref(), w.Namespace, sa), nil)
	}
	for _, u := range secretUses(w.Spec) {
		if u.How == "imagePullSecrets" {
			continue
		}
		b.add(Node{Kind: NodeSecret, Namespace: w.Namespace, Name: u.Secret}, EdgeMounts, fmt.Sprintf("%s uses it (%s)", w.Ref(), u.How), nil)
	}
}

// mountsToken reports whether w's pods get their service account's token.
func (g *graph) mountsToken(w *Workload) bool {
	if w.Spec.AutomountServiceAccountToken != nil {
		return *w.Spec.AutomountServiceAccountToken
	}
	if v := g.automount[w.Namespace][w.ServiceAccount()]; v != nil {
		return *v
	}
	return true
}

func (g *graph) anyAccountEdges(b *edgeBuilder, ns string) {
	for _, n := range g.namespaces {
		if ns != "" && n != ns {
			continue
		}
		for _, sa := range g.accounts[n] {
			b.add(saNode(n, sa), EdgeAnyAccount, fmt.Sprintf("which includes ServiceAccount %s/%s", n, sa), nil)
		}
	}
}

// subjectEdges derives a subject's edges from its RBAC atoms; members of
// system:masters hold every permission whatever the bindings say.
func (g *graph) subjectEdges(b *edgeBuilder, s rbac.Subject) {
	var atoms atomSet
	for _, bd := range g.eng.BindingsFor(s.Identity()) {
		protos, ok := g.roleCache[bd.Role]
		if !ok {
			protos = roleAtoms(bd.Rules)
			g.roleCache[bd.Role] = protos
		}
		via := bd.Ref.String() + " -> " + bd.Role.String()
		inherited := bd.Subject.Key() != s.Key()
		if inherited {
			via += " (as " + bd.Subject.String() + ")"
		}
		for _, p := range protos {
			if p.clusterScoped && bd.Namespace != "" {
				continue
			}
			v := via
			if p.from != "" {
				v += " (aggregated from ClusterRole " + p.from + ")"
			}
			atoms[p.kind] = append(atoms[p.kind], atom{kind: p.kind, scope: bd.Namespace, names: p.names, verb: p.verb, via: v, inherited: inherited})
		}
	}
	if s.Kind == rbac.GroupKind && s.Name == rbac.Masters {
		g.addRoleAtoms(&atoms, Node{Kind: NodeRole, Role: &rbac.Ref{Kind: rbac.ClusterRoleKind, Name: "*"}})
	}
	g.atomEdges(b, &atoms)
}

var everyRule = []rbac.Rule{{PolicyRule: rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}}

// addRoleAtoms adds the atoms of holding role node n.
func (g *graph) addRoleAtoms(atoms *atomSet, n Node) {
	var rules []rbac.Rule
	if n.Role.Name == "*" {
		rules = everyRule
	} else if r, ok := g.eng.Role(*n.Role); ok {
		rules = r.Rules
	}
	protos, ok := g.roleCache[*n.Role]
	if !ok {
		protos = roleAtoms(rules)
		g.roleCache[*n.Role] = protos
	}
	for _, p := range protos {
		if p.clusterScoped && n.Namespace != "" {
			continue
		}
		atoms[p.kind] = append(atoms[p.kind], atom{kind: p.kind, scope: n.Namespace, names: p.names, verb: p.verb, via: "holding " + n.String()})
	}
}

// targetNS maps an atom scope to the namespace of a target node.
func targetNS(scope string) string {
	if scope == allNamespaces {
		return ""
	}
	return scope
}

func where(scope string) string {
	if scope == "" || scope == allNamespaces {
		return "in every namespace"
	}
	return "in namespace " + scope
}

// intersect returns the scope where both scopes apply.
func intersect(a, b string) (string, bool) {
	switch {
	case a == b:
		return a, true
	case a == "":
		return b, true
	case b == "":
		return a, true
	case a == allNamespaces:
		return b, true
	case b == allNamespaces:
		return a, true
	}
	return "", false
}

func names(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" and %d more", len(list)-5)
	}
	return strings.Join(list, ", ")
}
