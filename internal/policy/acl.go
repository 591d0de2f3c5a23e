package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrPermissionDenied is matched (errors.Is) by every error Authorize
// returns. The error's text adds the reason, for logs and audit; the wire
// text stays Vault's "permission denied".
var ErrPermissionDenied = errors.New("permission denied")

// ACL is the compiled, merged form of a caller's policies. It is immutable
// and safe for concurrent use.
type ACL struct {
	root bool

	exact      map[string]*perm
	exactKeys  []string // sorted keys of exact, for HasAnyUnder
	prefix     map[string]*perm
	prefixLens []prefixLen // distinct key lengths of prefix, longest first
	prefixes   []string
	wild       []*wildRule
}

// prefixLen is one key length of ACL.prefix, with the set of last bytes
// keys of that length have, so most lengths are ruled out without hashing.
type prefixLen struct {
	n    int
	last [4]uint64 // bitmap of byte values
}

func (l *prefixLen) mayEndWith(b byte) bool { return l.last[b>>6]&(1<<(b&63)) != 0 }

// perm is what the ACL holds for one rule path after merging every policy
// that names it.
type perm struct {
	caps     capSet
	allowed  map[string][]any
	denied   map[string][]any
	required []string
	minWrap  time.Duration
	maxWrap  time.Duration
}

// wildRule is a rule path containing "+" segments.
type wildRule struct {
	rank
	parts   []string // segments, the trailing "*" removed
	literal string   // the text before the first "+"
	perm    *perm
}

// rank orders the glob rules matching one path, as Vault does: the one with
// the greatest rank applies.
type rank struct {
	firstWild int    // index of the first "+" or "*"
	isPrefix  bool   // ends in "*"
	wildcards int    // number of "+" segments
	wcPath    string // the path without its trailing "*"
}

// less reports whether r has lower priority than o (Vault's "priority
// matching" rules, in order).
func (r rank) less(o rank) bool {
	switch {
	case r.firstWild != o.firstWild:
		return r.firstWild < o.firstWild // glob earlier: lower
	case r.isPrefix != o.isPrefix:
		return r.isPrefix // ends in "*": lower
	case r.wildcards != o.wildcards:
		return r.wildcards > o.wildcards // more "+": lower
	case len(r.wcPath) != len(o.wcPath):
		return len(r.wcPath) < len(o.wcPath) // shorter: lower
	}
	return r.wcPath < o.wcPath // lexically smaller: lower
}

// NewACL compiles policies for the caller id. A policy named "root" makes
// the ACL a root ACL, which allows everything. Nil policies are skipped.
// Rule paths are rendered with id; a rule whose template cannot be filled
// safely for id is left out. The error reports a policy that was built by
// hand with a bad rule; policies from Parse always compile.
func NewACL(id Identity, policies ...*Policy) (*ACL, error) {
	a := &ACL{exact: map[string]*perm{}, prefix: map[string]*perm{}}
	wild := map[string]*perm{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		if p.Name == "root" {
			a.root = true
			continue
		}
		for i := range p.Rules {
			r := &p.Rules[i]
			if err := checkPath(r.Path); err != nil {
				return nil, fmt.Errorf("policy %q: path %q: %w", p.Name, r.Path, err)
			}
			path, ok := render(r.Path, &id)
			if !ok {
				continue
			}
			np, err := newPerm(r)
			if err != nil {
				return nil, fmt.Errorf("policy %q: path %q: %w", p.Name, r.Path, err)
			}
			switch {
			case strings.Contains(path, "+"):
				mergeInto(wild, path, np)
			case strings.HasSuffix(path, "*"):
				mergeInto(a.prefix, path[:len(path)-1], np)
			default:
				mergeInto(a.exact, path, np)
			}
		}
	}
	a.exactKeys = slices.Sorted(maps.Keys(a.exact))
	a.prefixes = slices.Sorted(maps.Keys(a.prefix))
	for _, k := range a.prefixes {
		if k == "" {
			a.prefixLens = append(a.prefixLens, prefixLen{n: 0})
			continue
		}
		i := slices.IndexFunc(a.prefixLens, func(l prefixLen) bool { return l.n == len(k) })
		if i < 0 {
			i = len(a.prefixLens)
			a.prefixLens = append(a.prefixLens, prefixLen{n: len(k)})
		}
		b := k[len(k)-1]
		a.prefixLens[i].last[b>>6] |= 1 << (b & 63)
	}
	slices.SortFunc(a.prefixLens, func(x, y prefixLen) int { return y.n - x.n })
	for _, full := range slices.Sorted(maps.Keys(wild)) {
		w := &wildRule{perm: wild[full]}
		w.firstWild = strings.IndexByte(full, '+')
		w.wcPath, w.isPrefix = strings.CutSuffix(full, "*")
		w.parts = strings.Split(w.wcPath, "/")
		w.wildcards = strings.Count(full, "+")
		w.literal = full[:w.firstWild]
		a.wild = append(a.wild, w)
	}
	slices.SortFunc(a.wild, func(x, y *wildRule) int {
		switch {
		case y.less(x.rank):
			return -1
		case x.less(y.rank):
			return 1
		}
		return 0
	})
	return a, nil
}

func newPerm(r *Rule) (*perm, error) {
	p := &perm{}
	for _, c := range r.Capabilities {
		if c < Create || c > Deny {
			return nil, fmt.Errorf("invalid capability %v", c)
		}
		p.caps.add(c)
	}
	if p.caps.has(Deny) {
		p.caps = 1 << Deny
		return p, nil
	}
	p.allowed = cloneParams(r.AllowedParameters)
	p.denied = cloneParams(r.DeniedParameters)
	p.required = slices.Clone(r.RequiredParameters)
	p.minWrap, p.maxWrap = r.MinWrappingTTL, r.MaxWrappingTTL
	return p, nil
}

func cloneParams(m map[string][]any) map[string][]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]any, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = slices.Clone(v)
	}
	return out
}

// mergeInto adds np under key, merging with what is there as Vault's
// NewACL does: deny anywhere wins; otherwise capabilities union, the
// smaller wrapping TTL bounds win, and parameter constraints accumulate.
func mergeInto(m map[string]*perm, key string, np *perm) {
	old, ok := m[key]
	switch {
	case !ok:
		m[key] = np
		return
	case old.caps.has(Deny):
		return
	case np.caps.has(Deny):
		m[key] = np
		return
	}
	old.caps |= np.caps
	if np.maxWrap > 0 && (old.maxWrap == 0 || np.maxWrap < old.maxWrap) {
		old.maxWrap = np.maxWrap
	}
	if np.minWrap > 0 && (old.minWrap == 0 || np.minWrap < old.minWrap) {
		old.minWrap = np.minWrap
	}
	old.allowed = mergeParams(old.allowed, np.allowed)
	old.denied = mergeParams(old.denied, np.denied)
	for _, r := range np.required {
		if !slices.Contains(old.required, r) {
			old.required = append(old.required, r)
		}
	}
}

// mergeParams merges parameter constraints the way Vault does: an empty
// value list (any value) on either side wins for that key; otherwise the
// value lists are concatenated.
func mergeParams(old, add map[string][]any) map[string][]any {
	if len(add) == 0 {
		return old
	}
	if old == nil {
		return cloneParams(add)
	}
	for k, v := range add {
		prev, ok := old[k]
		if len(v) == 0 || (ok && len(prev) == 0) {
			old[k] = []any{}
		} else {
			old[k] = append(slices.Clone(v), prev...)
		}
	}
	return old
}

// Root reports whether the ACL comes from the root policy.
func (a *ACL) Root() bool { return a.root }

// lookup finds the permissions that apply to path, nil if no rule matches.
// List requests also try the path without its trailing "/", first, as
// Vault does.
func (a *ACL) lookup(path string, list bool) *perm {
	if p, ok := a.exact[path]; ok {
		return p
	}
	if list {
		trimmed := strings.TrimSuffix(path, "/")
		if p, ok := a.exact[trimmed]; ok {
			return p
		}
		if len(trimmed) != len(path) {
			if p := a.nonExact(trimmed); p != nil {
				return p
			}
		}
	}
	return a.nonExact(path)
}

// nonExact returns the permissions of the highest-ranked glob rule that
// matches path. Among plain "*" rules only the longest prefix can win.
func (a *ACL) nonExact(path string) *perm {
	var best *perm
	var bestRank rank
	for i := range a.prefixLens {
		l := &a.prefixLens[i]
		n := l.n
		if n <= len(path) && (n == 0 || l.mayEndWith(path[n-1])) {
			if p, ok := a.prefix[path[:n]]; ok {
				best = p
				bestRank = rank{firstWild: n, isPrefix: true, wcPath: path[:n]}
				break
			}
		}
	}
	// a.wild is sorted highest rank first: the first match is the best
	// "+" rule, and once a rule ranks below best, so do all after it.
	var buf [32]string
	var segs []string
	for _, w := range a.wild {
		if best != nil && !bestRank.less(w.rank) {
			break
		}
		if !strings.HasPrefix(path, w.literal) {
			continue
		}
		if segs == nil {
			segs = splitInto(buf[:0], path)
		}
		if w.match(segs) {
			return w.perm
		}
	}
	return best
}

// splitInto appends the "/"-separated segments of path to dst.
func splitInto(dst []string, path string) []string {
	for {
		seg, rest, more := strings.Cut(path, "/")
		dst = append(dst, seg)
		if !more {
			return dst
		}
		path = rest
	}
}

// match reports whether a path, split into segments, matches the "+"
// pattern. "+" matches any one segment, even an empty one, as in Vault.
func (w *wildRule) match(segs []string) bool {
	n := len(w.parts)
	if len(segs) < n || !w.isPrefix && len(segs) != n {
		return false
	}
	for i, part := range w.parts[:n-1] {
		if part != "+" && part != segs[i] {
			return false
		}
	}
	last := w.parts[n-1]
	if w.isPrefix {
		return last == "+" || strings.HasPrefix(segs[n-1], last)
	}
	return last == "+" || last == segs[n-1]
}

// Capabilities returns the capabilities the ACL gives on path, sorted by
// name: ["root"] for a root ACL, ["deny"] when it gives none. Like Vault's
// sys/capabilities-self it looks the path up as a LIST request would.
func (a *ACL) Capabilities(path string) []string {
	if a.root {
		return []string{"root"}
	}
	p := a.lookup(strings.TrimLeft(path, "/"), true)
	if p == nil {
		return []string{"deny"}
	}
	return p.caps.names()
}

// Allowed reports whether op is allowed on path for a request without
// parameters or response wrapping; see Authorize. For op Sudo it reports
// whether the path's rule grants sudo.
func (a *ACL) Allowed(path string, op Capability) bool {
	return a.check(&Request{Path: path, Operation: op}).why == allowed
}

// Request is one operation to authorize.
type Request struct {
	// Path is the request path after /v1/, with its mount prefix.
	Path string
	// Operation is Create, Read, Update, Patch, Delete or List; Sudo asks
	// only whether the path's rule grants sudo.
	Operation Capability
	// RequireSudo marks a sudo-protected path: the rule must also grant
	// sudo.
	RequireSudo bool
	// Params are the request's body (or query) parameters, checked
	// against allowed, denied and required parameters for Create, Read,
	// Update and Patch.
	Params map[string]any
	// WrapTTL is the requested response-wrapping TTL; 0 when the response
	// is not wrapped.
	WrapTTL time.Duration
}

// Authorize returns nil if the ACL allows r, else an error matching
// ErrPermissionDenied that says why. It follows Vault's AllowOperation:
// the single rule that applies to the path (exact match, else the
// highest-ranked glob) must grant the operation; then wrapping TTL bounds
// and parameter constraints are checked.
func (a *ACL) Authorize(r Request) error {
	d := a.check(&r)
	if d.why == allowed {
		return nil
	}
	return d.err()
}

// denial says why check refused a request; why == allowed means it did
// not. It is a plain value so that Allowed allocates nothing.
type denial struct {
	why   reason
	path  string
	op    Capability
	ttl   time.Duration
	param string // the offending parameter's name, for paramDenied
}

type reason uint8

const (
	allowed reason = iota
	notAnOperation
	noRule
	denyRule
	noCapability
	needSudo
	wrapTooLong
	wrapTooShort
	wrapConflict
	paramDenied
)

func (d denial) err() error {
	var msg string
	switch d.why {
	case notAnOperation:
		msg = fmt.Sprintf("%v is not an operation", d.op)
	case noRule:
		msg = fmt.Sprintf("no policy rule matches %q", d.path)
	case denyRule:
		msg = fmt.Sprintf("a policy denies %q", d.path)
	case noCapability:
		msg = fmt.Sprintf("no %v capability on %q", d.op, d.path)
	case needSudo:
		msg = fmt.Sprintf("%q requires the sudo capability", d.path)
	case wrapTooLong, wrapTooShort:
		bound := map[reason]string{wrapTooLong: "at most", wrapTooShort: "at least"}[d.why]
		msg = fmt.Sprintf("%q requires response wrapping with a TTL of %s %v", d.path, bound, d.ttl)
	case wrapConflict:
		msg = fmt.Sprintf("merged policies give %q a max wrapping TTL below its min", d.path)
	case paramDenied:
		msg = fmt.Sprintf("%s on %q", d.param, d.path)
	}
	return fmt.Errorf("%w: %s", ErrPermissionDenied, msg)
}

func (a *ACL) check(r *Request) denial {
	if a.root {
		return denial{}
	}
	op := r.Operation
	path := strings.TrimLeft(r.Path, "/")
	if op < Create || op > Sudo {
		return denial{why: notAnOperation, op: op}
	}
	p := a.lookup(path, op == List)
	switch {
	case p == nil:
		return denial{why: noRule, path: path}
	case p.caps.has(Deny):
		return denial{why: denyRule, path: path}
	case !p.caps.has(op):
		return denial{why: noCapability, path: path, op: op}
	case r.RequireSudo && !p.caps.has(Sudo):
		return denial{why: needSudo, path: path}
	case op == Sudo:
		return denial{}
	}
	if p.maxWrap > 0 && (r.WrapTTL == 0 || r.WrapTTL > p.maxWrap) {
		return denial{why: wrapTooLong, path: path, ttl: p.maxWrap}
	}
	if p.minWrap > 0 && (r.WrapTTL == 0 || r.WrapTTL < p.minWrap) {
		return denial{why: wrapTooShort, path: path, ttl: p.minWrap}
	}
	if p.minWrap != 0 && p.maxWrap != 0 && p.maxWrap < p.minWrap {
		return denial{why: wrapConflict, path: path}
	}
	switch op {
	case Create, Read, Update, Patch:
		if why := p.checkParams(r.Params); why != "" {
			return denial{why: paramDenied, path: path, param: why}
		}
	}
	return denial{}
}
