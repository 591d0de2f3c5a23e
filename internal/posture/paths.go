package posture

import (
	"sort"

	"github.com/cofferhq/coffer/internal/posture/rbac"
)

// Step is one edge of a path, with the nodes it joins.
type Step struct {
	From string `json:"from"`
	To   string `json:"to"`
	Edge
}

// Access is one way a subject reaches the contents of Secrets: the
// target (all Secrets of a namespace or of the cluster, or one Secret) and
// the shortest path to it.
type Access struct {
	Target Node   `json:"target"`
	Path   []Step `json:"path"`
	// Inherited is set when the first step comes only from bindings of a
	// group the subject is in; the group is reported with the same path.
	Inherited bool `json:"inherited,omitempty"`
}

// Direct reports whether the subject reads the Secrets itself, in one
// step.
func (a Access) Direct() bool { return len(a.Path) == 1 && a.Path[0].Kind == EdgeReadSecrets }

// SubjectAccess lists a subject's ways to secret contents.
type SubjectAccess struct {
	Subject rbac.Subject `json:"subject"`
	Access  []Access     `json:"access"`
}

type hop struct {
	prev int
	edge int // index into g.out[prev]
}

// reach searches breadth-first from node start and returns the shortest
// path to every Secret target reached, without targets that a broader
// target reached makes redundant.
func (g *graph) reach(start int) []Access {
	// The search state lives in slices indexed by node and is reused
	// across searches; an epoch stamp marks the nodes seen in this one.
	g.epoch++
	seen := func(i int) bool { return i < len(g.seen) && g.seen[i] == g.epoch }
	mark := func(i int, h hop) {
		for i >= len(g.seen) {
			g.seen = append(g.seen, 0)
			g.parent = append(g.parent, hop{})
		}
		g.seen[i], g.parent[i] = g.epoch, h
	}
	mark(start, hop{prev: -1})
	queue := append(g.queue[:0], start)
	var targets []int
	for q := 0; q < len(queue); q++ {
		i := queue[q]
		if k := g.nodes[i].Kind; k == NodeSecrets || k == NodeSecret {
			targets = append(targets, i)
		}
		for ei, e := range g.edges(i) {
			if seen(e.to) {
				continue
			}
			mark(e.to, hop{prev: i, edge: ei})
			queue = append(queue, e.to)
		}
	}
	g.queue = queue
	parent := g.parent
	all := false
	nsAll := map[string]bool{}
	for _, t := range targets {
		if n := g.nodes[t]; n.Kind == NodeSecrets {
			if n.Namespace == "" {
				all = true
			}
			nsAll[n.Namespace] = true
		}
	}
	var out []Access
	for _, t := range targets {
		n := g.nodes[t]
		switch {
		case n.Kind == NodeSecrets && n.Namespace != "" && all:
			continue
		case n.Kind == NodeSecret && (all || nsAll[n.Namespace]):
			continue
		}
		var path []Step
		for at := t; parent[at].prev >= 0; at = parent[at].prev {
			h := parent[at]
			e := g.out[h.prev][h.edge]
			path = append(path, Step{From: g.nodes[h.prev].String(), To: g.nodes[at].String(), Edge: e})
		}
		for l, r := 0, len(path)-1; l < r; l, r = l+1, r-1 {
			path[l], path[r] = path[r], path[l]
		}
		out = append(out, Access{Target: n, Path: path, Inherited: len(path) > 0 && path[0].Inherited})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Target, out[j].Target
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind == NodeSecrets
		}
		return a.Name < b.Name
	})
	return out
}

// accessAll computes the access of every subject named in a binding.
func (g *graph) accessAll() []SubjectAccess {
	var out []SubjectAccess
	for _, s := range g.eng.Subjects() {
		acc := g.reach(g.node(subjectNode(s)))
		if len(acc) > 0 {
			out = append(out, SubjectAccess{Subject: s, Access: acc})
		}
	}
	return out
}
