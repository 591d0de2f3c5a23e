// Package rbac evaluates Kubernetes RBAC the way kube-apiserver's RBAC
// authorizer does, over a set of Roles, ClusterRoles, RoleBindings and
// ClusterRoleBindings held in memory, and explains every decision with the
// binding and role that grant it.
//
// Matching follows the authorizer rule by rule: "*" verbs, API groups and
// resources, "*/subresource", resourceNames (a request without a name,
// such as list, is not matched by a rule that names objects), and
// non-resource URLs with a trailing "*". A RoleBinding grants only in its
// namespace; a ClusterRoleBinding everywhere, including cluster-scoped
// resources and non-resource URLs. A service-account subject without a
// namespace in a RoleBinding means the binding's namespace.
//
// Aggregated ClusterRoles get the rules of every ClusterRole their
// selectors match, transitively, as kube-controller-manager's aggregation
// controller would write them; the stored rules of an aggregated role are
// replaced, as that controller does. A binding to a role that does not
// exist grants nothing and is listed by Problems.
//
// Groups of a request are taken as given (as in a SubjectAccessReview);
// Subject.Identity gives the groups the apiserver adds for users and
// service accounts.
package rbac

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Kinds of Ref.
const (
	RoleKind               = "Role"
	ClusterRoleKind        = "ClusterRole"
	RoleBindingKind        = "RoleBinding"
	ClusterRoleBindingKind = "ClusterRoleBinding"
)

// Ref names a role or a binding.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders "ClusterRole admin" or "RoleBinding ns/name".
func (r Ref) String() string {
	if r.Namespace != "" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// Request is what is being authorized. A resource request has Resource
// set; a non-resource request has Path set.
type Request struct {
	Verb        string `json:"verb"`
	Group       string `json:"group,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	Path        string `json:"path,omitempty"`
}

// String renders the request like kubectl auth can-i.
func (r Request) String() string {
	if r.Resource == "" {
		return r.Verb + " " + r.Path
	}
	res := r.Resource
	if r.Group != "" {
		res += "." + r.Group
	}
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	if r.Name != "" {
		res += "/" + r.Name
	}
	if r.Namespace != "" {
		res += " in namespace " + r.Namespace
	}
	return r.Verb + " " + res
}

// Grant is one way a subject holds a rule: the binding, its role and the
// rule, and for aggregated roles the ClusterRole the rule came from.
type Grant struct {
	Subject Subject `json:"subject"`
	Binding Ref     `json:"binding"`
	Role    Ref     `json:"role"`
	// Namespace is where the binding grants: "" for every namespace and
	// the cluster scope (a ClusterRoleBinding).
	Namespace string            `json:"namespace,omitempty"`
	Rule      rbacv1.PolicyRule `json:"rule"`
	// From is the ClusterRole an aggregated role took the rule from.
	From string `json:"aggregatedFrom,omitempty"`
}

// Path renders the binding chain: "ClusterRoleBinding x -> ClusterRole y".
func (g Grant) Path() string {
	s := g.Binding.String() + " -> " + g.Role.String()
	if g.From != "" {
		s += " (aggregated from ClusterRole " + g.From + ")"
	}
	return s
}

// Rule is a policy rule of a role after aggregation.
type Rule struct {
	rbacv1.PolicyRule
	// From is the ClusterRole an aggregated role took the rule from.
	From string
}

// Binding is a RoleBinding or ClusterRoleBinding with its role resolved.
type Binding struct {
	Ref  Ref
	Role Ref
	// Namespace is "" for a ClusterRoleBinding.
	Namespace string
	// Subjects are normalized: a User named like a service account is a
	// ServiceAccount, and a ServiceAccount without namespace in a
	// RoleBinding gets the binding's.
	Subjects []Subject
	// Rules are the role's rules; nil when the role is missing.
	Rules []Rule
	// Missing is set when the role does not exist.
	Missing bool
	// Labels of the binding object.
	Labels map[string]string
}

// Role is a Role or ClusterRole with its effective rules.
type Role struct {
	Ref    Ref
	Rules  []Rule
	Labels map[string]string
	// Aggregated is set for a ClusterRole with an aggregationRule.
	Aggregated bool
}

// Engine answers authorization questions. It is immutable after New and
// safe for concurrent use.
type Engine struct {
	roles     map[Ref]*Role
	bindings  []*Binding
	bySubject map[string][]*Binding // Subject.Key -> bindings naming it
	byNS      map[string][]*Binding // "" -> ClusterRoleBindings
	subjects  map[string]Subject    // Subject.Key -> subject
	problems  []string
}

// New builds an engine.
func New(roles []rbacv1.Role, clusterRoles []rbacv1.ClusterRole, roleBindings []rbacv1.RoleBinding, clusterRoleBindings []rbacv1.ClusterRoleBinding) *Engine {
	e := &Engine{
		roles:     make(map[Ref]*Role, len(roles)+len(clusterRoles)),
		bySubject: map[string][]*Binding{},
		byNS:      map[string][]*Binding{},
		subjects:  map[string]Subject{},
	}
	for i := range roles {
		r := &roles[i]
		ref := Ref{Kind: RoleKind, Namespace: r.Namespace, Name: r.Name}
		e.roles[ref] = &Role{Ref: ref, Rules: wrap(r.Rules, ""), Labels: r.Labels}
	}
	e.aggregate(clusterRoles)
	for i := range clusterRoleBindings {
		b := &clusterRoleBindings[i]
		e.addBinding(Ref{Kind: ClusterRoleBindingKind, Name: b.Name}, "", b.RoleRef, b.Subjects, b.Labels)
	}
	for i := range roleBindings {
		b := &roleBindings[i]
		e.addBinding(Ref{Kind: RoleBindingKind, Namespace: b.Namespace, Name: b.Name}, b.Namespace, b.RoleRef, b.Subjects, b.Labels)
	}
	return e
}

func wrap(rules []rbacv1.PolicyRule, from string) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = Rule{PolicyRule: r, From: from}
	}
	return out
}

// aggregate resolves every ClusterRole, filling aggregated ones from the
// roles their selectors match, transitively.
func (e *Engine) aggregate(clusterRoles []rbacv1.ClusterRole) {
	sorted := make([]*rbacv1.ClusterRole, len(clusterRoles))
	for i := range clusterRoles {
		sorted[i] = &clusterRoles[i]
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	byName := make(map[string]*rbacv1.ClusterRole, len(sorted))
	for _, cr := range sorted {
		byName[cr.Name] = cr
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var resolve func(cr *rbacv1.ClusterRole) []Rule
	resolve = func(cr *rbacv1.ClusterRole) []Rule {
		ref := Ref{Kind: ClusterRoleKind, Name: cr.Name}
		switch state[cr.Name] {
		case done:
			return e.roles[ref].Rules
		case visiting:
			// A cycle of aggregations: the controller would settle on
			// the union; what is resolved so far is a sound subset.
			e.problems = append(e.problems, fmt.Sprintf("ClusterRole %s: aggregation cycle", cr.Name))
			return wrap(cr.Rules, "")
		}
		state[cr.Name] = visiting
		role := &Role{Ref: ref, Labels: cr.Labels}
		if cr.AggregationRule == nil {
			role.Rules = wrap(cr.Rules, "")
		} else {
			role.Aggregated = true
			seen := map[string]bool{}
			for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
				selector, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					e.problems = append(e.problems, fmt.Sprintf("ClusterRole %s: aggregation selector: %v", cr.Name, err))
					continue
				}
				for _, child := range sorted {
					if child.Name == cr.Name || !selector.Matches(labels.Set(child.Labels)) {
						continue
					}
					for _, r := range resolve(child) {
						k := ruleKey(r.PolicyRule)
						if seen[k] {
							continue
						}
						seen[k] = true
						if r.From == "" {
							r.From = child.Name
						}
						role.Rules = append(role.Rules, r)
					}
				}
			}
		}
		e.roles[ref] = role
		state[cr.Name] = done
		return role.Rules
	}
	for _, cr := range sorted {
		resolve(cr)
	}
}

func ruleKey(r rbacv1.PolicyRule) string {
	j := func(s []string) string { return strings.Join(s, ",") }
	return j(r.Verbs) + "|" + j(r.APIGroups) + "|" + j(r.Resources) + "|" + j(r.ResourceNames) + "|" + j(r.NonResourceURLs)
}

func (e *Engine) addBinding(ref Ref, ns string, roleRef rbacv1.RoleRef, subjects []rbacv1.Subject, lbl map[string]string) {
	b := &Binding{Ref: ref, Namespace: ns, Labels: lbl}
	switch {
	case roleRef.Kind == ClusterRoleKind:
		b.Role = Ref{Kind: ClusterRoleKind, Name: roleRef.Name}
	case roleRef.Kind == RoleKind && ns != "":
		b.Role = Ref{Kind: RoleKind, Namespace: ns, Name: roleRef.Name}
	default:
		e.problems = append(e.problems, fmt.Sprintf("%s: roleRef kind %q is not valid here", ref, roleRef.Kind))
		b.Role = Ref{Kind: roleRef.Kind, Name: roleRef.Name}
	}
	if r, ok := e.roles[b.Role]; ok {
		b.Rules = r.Rules
	} else {
		b.Missing = true
		e.problems = append(e.problems, fmt.Sprintf("%s refers to %s, which does not exist", ref, b.Role))
	}
	seen := map[string]bool{}
	for _, s := range subjects {
		sub, ok := normalize(s, ns)
		if !ok || seen[sub.Key()] {
			continue
		}
		seen[sub.Key()] = true
		b.Subjects = append(b.Subjects, sub)
		e.bySubject[sub.Key()] = append(e.bySubject[sub.Key()], b)
		e.subjects[sub.Key()] = sub
	}
	e.bindings = append(e.bindings, b)
	e.byNS[ns] = append(e.byNS[ns], b)
}

// normalize maps a binding subject to what the authorizer matches it as.
func normalize(s rbacv1.Subject, bindingNS string) (Subject, bool) {
	switch s.Kind {
	case UserKind:
		return subjectOfUser(s.Name), s.Name != ""
	case GroupKind:
		return Subject{Kind: GroupKind, Name: s.Name}, s.Name != ""
	case ServiceAccountKind:
		ns := s.Namespace
		if ns == "" {
			ns = bindingNS
		}
		return Subject{Kind: ServiceAccountKind, Namespace: ns, Name: s.Name}, ns != "" && s.Name != ""
	}
	return Subject{}, false
}

// Problems lists bindings to missing roles, invalid role references and
// aggregation errors, sorted.
func (e *Engine) Problems() []string {
	p := slices.Clone(e.problems)
	sort.Strings(p)
	return p
}

// Bindings returns every binding, ClusterRoleBindings first.
func (e *Engine) Bindings() []*Binding { return e.bindings }

// Role returns a role by reference.
func (e *Engine) Role(ref Ref) (*Role, bool) {
	r, ok := e.roles[ref]
	return r, ok
}

// Roles returns every role, sorted by kind, namespace and name.
func (e *Engine) Roles() []*Role {
	out := make([]*Role, 0, len(e.roles))
	for _, r := range e.roles {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return refLess(out[i].Ref, out[j].Ref) })
	return out
}

func refLess(a, b Ref) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// Subjects returns every subject named in a binding, sorted by key.
func (e *Engine) Subjects() []Subject {
	out := make([]Subject, 0, len(e.subjects))
	for _, s := range e.subjects {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// BindingsOf returns the bindings that name subject s directly (not
// through a group).
func (e *Engine) BindingsOf(s Subject) []*Binding { return e.bySubject[s.Key()] }

// Bound is a binding that applies to an identity, with the binding
// subject that matched it.
type Bound struct {
	*Binding
	Subject Subject
}

// BindingsFor returns the bindings that apply to id: those naming its
// user, service account or one of its groups, each once.
func (e *Engine) BindingsFor(id Identity) []Bound {
	var out []Bound
	seen := map[*Binding]bool{}
	for _, sub := range identityKeys(id) {
		for _, b := range e.bySubject[sub.Key()] {
			if !seen[b] {
				seen[b] = true
				out = append(out, Bound{Binding: b, Subject: sub})
			}
		}
	}
	return out
}

// identityKeys are the subject keys bindings may name to apply to id.
func identityKeys(id Identity) []Subject {
	subs := make([]Subject, 0, 1+len(id.Groups))
	if id.User != "" {
		subs = append(subs, subjectOfUser(id.User))
	}
	for _, g := range id.Groups {
		subs = append(subs, Subject{Kind: GroupKind, Name: g})
	}
	return subs
}

// Rules returns every rule that applies to id, each as a Grant whose
// Subject is the binding subject that matched (the user, the service
// account or one of the groups), in binding order.
func (e *Engine) Rules(id Identity) []Grant {
	var out []Grant
	seen := map[*Binding]bool{}
	for _, sub := range identityKeys(id) {
		for _, b := range e.bySubject[sub.Key()] {
			if seen[b] {
				continue
			}
			seen[b] = true
			for _, r := range b.Rules {
				out = append(out, Grant{Subject: sub, Binding: b.Ref, Role: b.Role, Namespace: b.Namespace, Rule: r.PolicyRule, From: r.From})
			}
		}
	}
	return out
}

// Allowed returns the grants that allow id to make request r; none means
// denied.
func (e *Engine) Allowed(id Identity, r Request) []Grant {
	var out []Grant
	seen := map[*Binding]bool{}
	for _, sub := range identityKeys(id) {
		for _, b := range e.bySubject[sub.Key()] {
			if seen[b] || !applies(b, r) {
				continue
			}
			seen[b] = true
			for _, rule := range b.Rules {
				if Allows(&rule.PolicyRule, r) {
					out = append(out, Grant{Subject: sub, Binding: b.Ref, Role: b.Role, Namespace: b.Namespace, Rule: rule.PolicyRule, From: rule.From})
				}
			}
		}
	}
	return out
}

// applies reports whether binding b is in scope for request r.
func applies(b *Binding, r Request) bool {
	if b.Namespace == "" {
		return true
	}
	return r.Resource != "" && r.Namespace == b.Namespace
}

// WhoCan returns a grant for every binding subject allowed to make
// request r. With anyName set, rules limited to resourceNames also count
// for a request without a name (the grant's Rule shows the names).
func (e *Engine) WhoCan(r Request, anyName bool) []Grant {
	var out []Grant
	scan := func(bs []*Binding) {
		for _, b := range bs {
			if !applies(b, r) {
				continue
			}
			for _, rule := range b.Rules {
				ok := Allows(&rule.PolicyRule, r)
				if !ok && anyName && r.Name == "" && r.Resource != "" {
					_, ok = MatchResource(&rule.PolicyRule, r)
				}
				if !ok {
					continue
				}
				for _, s := range b.Subjects {
					out = append(out, Grant{Subject: s, Binding: b.Ref, Role: b.Role, Namespace: b.Namespace, Rule: rule.PolicyRule, From: rule.From})
				}
			}
		}
	}
	scan(e.byNS[""])
	if r.Namespace != "" && r.Resource != "" {
		scan(e.byNS[r.Namespace])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Subject.Key() < out[j].Subject.Key() })
	return out
}

// Allows reports whether rule allows request r (namespace scope aside),
// exactly as the RBAC authorizer's RuleAllows does.
func Allows(rule *rbacv1.PolicyRule, r Request) bool {
	if r.Resource == "" {
		return has(rule.Verbs, r.Verb) && urlMatches(rule.NonResourceURLs, r.Path)
	}
	names, ok := MatchResource(rule, r)
	if !ok {
		return false
	}
	return names == nil || (r.Name != "" && slices.Contains(names, r.Name))
}

// MatchResource reports whether rule matches r's verb, group, resource
// and subresource, ignoring the object name; names are the rule's
// resourceNames, nil when it allows every name.
func MatchResource(rule *rbacv1.PolicyRule, r Request) (names []string, ok bool) {
	if !has(rule.Verbs, r.Verb) || !has(rule.APIGroups, r.Group) {
		return nil, false
	}
	combined := r.Resource
	if r.Subresource != "" {
		combined += "/" + r.Subresource
	}
	if !resourceMatches(rule.Resources, combined, r.Subresource) {
		return nil, false
	}
	if len(rule.ResourceNames) == 0 {
		return nil, true
	}
	return rule.ResourceNames, true
}

func has(list []string, v string) bool {
	for _, x := range list {
		if x == "*" || x == v {
			return true
		}
	}
	return false
}

func resourceMatches(rules []string, combined, sub string) bool {
	for _, r := range rules {
		if r == "*" || r == combined {
			return true
		}
		if sub != "" && len(r) == len(sub)+2 && strings.HasPrefix(r, "*/") && strings.HasSuffix(r, sub) {
			return true
		}
	}
	return false
}

func urlMatches(rules []string, path string) bool {
	for _, u := range rules {
		if u == "*" || u == path {
			return true
		}
		if strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")) {
			return true
		}
	}
	return false
}
