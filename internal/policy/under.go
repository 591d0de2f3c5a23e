package policy

import (
	"sort"
	"strings"
)

// HasAnyUnder reports whether the ACL could grant some capability on prefix
// itself or on some path that starts with prefix (a plain string prefix: pass
// "secret/metadata/team/" to ask about a folder). It is meant for filtering
// LIST results and mount listings down to what the caller can use.
//
// A rule counts when it grants something, some path under prefix matches
// it, and it is not shadowed by a deny (or an empty rule) that matches every
// path under prefix and outranks it. The answer is exact for exact rules
// and "*" rules; with "+" rules it can say true when other rules happen to
// shadow every matching path, never false when access exists.
func (a *ACL) HasAnyUnder(prefix string) bool {
	if a.root {
		return true
	}
	prefix = strings.TrimLeft(prefix, "/")
	if p := a.lookup(prefix, true); p != nil && !p.caps.denies() {
		return true
	}

	// Exact rules cannot be shadowed: an exact match beats every glob.
	i := sort.SearchStrings(a.exactKeys, prefix)
	for ; i < len(a.exactKeys) && strings.HasPrefix(a.exactKeys[i], prefix); i++ {
		if !a.exact[a.exactKeys[i]].caps.denies() {
			return true
		}
	}

	// Glob rules that block the whole subtree: deny or empty, matching
	// every path under prefix.
	var blockers []rank
	for _, q := range a.prefixes {
		if a.prefix[q].caps.denies() && strings.HasPrefix(prefix, q) {
			blockers = append(blockers, rank{firstWild: len(q), isPrefix: true, wcPath: q})
		}
	}
	for _, w := range a.wild {
		if w.perm.caps.denies() && w.coversAll(prefix) {
			blockers = append(blockers, w.rank)
		}
	}
	shadowed := func(r rank) bool {
		for _, b := range blockers {
			if r.less(b) {
				return true
			}
		}
		return false
	}

	for _, q := range a.prefixes {
		if a.prefix[q].caps.denies() {
			continue
		}
		if strings.HasPrefix(q, prefix) || strings.HasPrefix(prefix, q) {
			if !shadowed(rank{firstWild: len(q), isPrefix: true, wcPath: q}) {
				return true
			}
		}
	}
	for _, w := range a.wild {
		if !w.perm.caps.denies() && w.couldMatchUnder(prefix) && !shadowed(w.rank) {
			return true
		}
	}
	return false
}

// couldMatchUnder reports whether some path starting with prefix matches w.
// prefix is split into whole segments and a last, partial one that a path
// under prefix may extend.
func (w *wildRule) couldMatchUnder(prefix string) bool {
	segs := strings.Split(prefix, "/")
	k := len(segs) - 1 // segs[k] is partial
	for i, part := range w.parts {
		last := i == len(w.parts)-1
		if i == k {
			switch {
			case part == "+", strings.HasPrefix(part, segs[k]):
				return true // later segments can be chosen to match
			case w.isPrefix && last && strings.HasPrefix(segs[k], part):
				return true
			}
			return false
		}
		switch {
		case part == "+", part == segs[i]:
		case w.isPrefix && last && strings.HasPrefix(segs[i], part):
		default:
			return false
		}
		if last {
			// Paths under prefix have more segments than w: only a
			// prefix rule can match them.
			return w.isPrefix
		}
	}
	return false
}

// coversAll reports whether every path starting with prefix matches w.
func (w *wildRule) coversAll(prefix string) bool {
	if !w.isPrefix {
		return false
	}
	segs := strings.Split(prefix, "/")
	m := len(w.parts) - 1
	if m > len(segs)-1 {
		return false
	}
	for i := range m {
		if w.parts[i] != "+" && w.parts[i] != segs[i] {
			return false
		}
	}
	return strings.HasPrefix(segs[m], w.parts[m])
}
