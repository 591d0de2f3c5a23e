// Package scantest generates test inputs for coffer scan: random strings
// that match a rule's regex (with the secret swapped for a structurally
// valid one where the rule validates), realistic source text for
// benchmarks, a labelled corpus of planted secrets across file types, and
// hard negatives. Everything is derived from a seeded math/rand source, so
// a seed names one corpus.
package scantest

import (
	"math/rand/v2"
	"regexp/syntax"
	"strings"
	"unicode"
)

// Gen produces strings that match a regex.
type Gen struct {
	rng *rand.Rand
}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen { return &Gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// Rand exposes the generator's source.
func (g *Gen) Rand() *rand.Rand { return g.rng }

// Match returns a random string matching pattern and the span of capture
// group group in it ([-1,-1] if the group did not take part).
func (g *Gen) Match(pattern string, group int) (string, [2]int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", [2]int{-1, -1}, err
	}
	var b strings.Builder
	span := [2]int{-1, -1}
	g.emit(&b, re, group, &span)
	return b.String(), span, nil
}

// printable is the alphabet generation draws from when a class allows more.
const printable = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func (g *Gen) emit(b *strings.Builder, re *syntax.Regexp, group int, span *[2]int) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && g.rng.IntN(2) == 0 {
				if unicode.IsUpper(r) {
					r = unicode.ToLower(r)
				} else {
					r = unicode.ToUpper(r)
				}
			}
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		b.WriteRune(g.classRune(re.Rune))
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		b.WriteByte(printable[g.rng.IntN(len(printable))])
	case syntax.OpCapture:
		start := b.Len()
		for _, s := range re.Sub {
			g.emit(b, s, group, span)
		}
		if re.Cap == group {
			*span = [2]int{start, b.Len()}
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			g.emit(b, s, group, span)
		}
	case syntax.OpAlternate:
		g.emit(b, re.Sub[g.rng.IntN(len(re.Sub))], group, span)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := re.Min, re.Max
		switch re.Op {
		case syntax.OpStar:
			lo, hi = 0, 3
		case syntax.OpPlus:
			lo, hi = 1, 3
		case syntax.OpQuest:
			lo, hi = 0, 1
		}
		if hi < 0 {
			hi = lo + 4
		}
		n := lo
		if re.Flags&syntax.NonGreedy == 0 && hi > lo {
			n = lo + g.rng.IntN(min(hi-lo, 4)+1)
		}
		if re.Op == syntax.OpQuest && re.Flags&syntax.NonGreedy == 0 {
			n = g.rng.IntN(2)
		}
		for range n {
			g.emit(b, re.Sub[0], group, span)
		}
	}
	// Empty-width assertions and empty matches emit nothing.
}

// classRune picks a rune from a class, preferring letters and digits so
// that generated secrets look like real ones; classes that allow only
// other characters yield one of those.
func (g *Gen) classRune(ranges []rune) rune {
	var pref, other []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], min(ranges[i+1], 0x7e)
		for r := max(lo, 0x21); r <= hi; r++ {
			if strings.ContainsRune(printable, r) {
				pref = append(pref, r)
			} else if r != '\\' && r != '"' && r != '\'' && r != '`' && r != '$' && r != '#' {
				other = append(other, r)
			}
		}
	}
	if len(pref) > 0 {
		return pref[g.rng.IntN(len(pref))]
	}
	if len(other) > 0 {
		return other[g.rng.IntN(len(other))]
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= ' ' && ' ' <= ranges[i+1] {
			return ' '
		}
	}
	if len(ranges) > 0 {
		return ranges[0]
	}
	return 'x'
}
