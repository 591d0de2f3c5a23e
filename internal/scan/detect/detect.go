// Package detect is the detection engine of coffer scan. It compiles a rule
// file once (one Aho-Corasick automaton over every keyword, one regex per
// rule) and then scans byte streams in bounded memory: input is read in
// chunks that overlap by more than the longest match, the automaton finds
// keyword occurrences, and only the rules whose keyword occurred run their
// regex, on a window around the occurrence (the line, capped in length, or
// a fixed span for multi-line rules such as private keys). Candidates then
// pass entropy, allowlist, placeholder and structural checks (a private key
// must parse, a checksummed token must check, a JWT must decode).
package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

// Rule is a compiled rule.
type Rule struct {
	rule.Rule
	re        *regexp.Regexp
	group     int
	allowRE   []*regexp.Regexp
	allowPath []*regexp.Regexp
	stopwords []string
	validate  validator
	index     int
	// anchored rules run re at each keyword occurrence (see
	// rule.Rule.Anchored) instead of searching a window.
	anchored bool
}

// Match is one finding in a stream.
type Match struct {
	Rule   *Rule
	Secret Secret
	// Offset is the byte offset of the match in the stream.
	Offset int64
	// Line and Column (1-based; Column counts Unicode code points) locate
	// the start of the match; EndLine its last line.
	Line, Column, EndLine int
}

// Engine is a compiled rule set. It is safe for concurrent use.
type Engine struct {
	rules       []*Rule // content rules
	pathRules   []*Rule
	entryRules  []*Rule
	ac          *automaton
	kwRules     [][]int32 // keyword id -> content rule indexes
	globalRE    []*regexp.Regexp
	globalPath  []*regexp.Regexp
	globalWords []string
	bufs        sync.Pool // *[]byte of chunkSize+overlap
}

// Sizes of the streaming window. overlap exceeds the longest match a rule
// can produce (rule.MaxWindow plus the look-back of a line window).
const (
	chunkSize  = 1 << 20
	overlap    = rule.MaxWindow + 2*lineCap
	lineCap    = 1024 // bytes either side of a keyword in a line window
	ignoreScan = 4096 // bytes either side searched for an inline ignore
)

// New compiles f.
func New(f *rule.File) (*Engine, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{}
	e.bufs.New = func() any { b := make([]byte, chunkSize+overlap); return &b }
	var err error
	if e.globalRE, err = compileAll(f.Allowlist.Regexes); err != nil {
		return nil, err
	}
	if e.globalPath, err = compileAll(f.Allowlist.Paths); err != nil {
		return nil, err
	}
	e.globalWords = lowerAll(f.Allowlist.Stopwords)
	var keywords []string
	kwIndex := map[string]int32{}
	for _, r := range f.Rules {
		if r.Disabled {
			continue
		}
		c, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		switch r.Target {
		case rule.TargetPath:
			e.pathRules = append(e.pathRules, c)
			continue
		case rule.TargetSecretEntry:
			e.entryRules = append(e.entryRules, c)
			continue
		}
		c.index = len(e.rules)
		e.rules = append(e.rules, c)
		for _, k := range r.Keywords {
			k = strings.ToLower(k)
			id, ok := kwIndex[k]
			if !ok {
				id = int32(len(keywords))
				kwIndex[k] = id
				keywords = append(keywords, k)
				e.kwRules = append(e.kwRules, nil)
			}
			if !slices.Contains(e.kwRules[id], int32(c.index)) {
				e.kwRules[id] = append(e.kwRules[id], int32(c.index))
			}
		}
	}
	e.ac = newAutomaton(keywords)
	return e, nil
}

func compileRule(r rule.Rule) (*Rule, error) {
	re, err := r.Compile()
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", r.ID, err)
	}
	c := &Rule{Rule: r, re: re, group: r.Group(), stopwords: lowerAll(r.Allowlist.Stopwords)}
	if src, ok := r.Anchored(); ok {
		if c.re, err = regexp.Compile(src); err != nil {
			return nil, fmt.Errorf("rule %q: %w", r.ID, err)
		}
		c.anchored = true
	}
	if c.allowRE, err = compileAll(r.Allowlist.Regexes); err != nil {
		return nil, fmt.Errorf("rule %q: %w", r.ID, err)
	}
	if c.allowPath, err = compileAll(r.Allowlist.Paths); err != nil {
		return nil, fmt.Errorf("rule %q: %w", r.ID, err)
	}
	c.validate = validators[r.Validate]
	return c, nil
}

func compileAll(src []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(src))
	for _, s := range src {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("allowlist regex %q: %w", s, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// Rules returns every compiled rule: content, path and secret-entry rules.
func (e *Engine) Rules() []*Rule {
	return slices.Concat(e.rules, e.pathRules, e.entryRules)
}

// PathAllowed reports whether path is excluded by the global allowlist.
func (e *Engine) PathAllowed(path string) bool {
	for _, re := range e.globalPath {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// PathRules returns the path rules whose regex matches path.
func (e *Engine) PathRules(path string) []*Rule {
	var out []*Rule
	for _, r := range e.pathRules {
		if r.re.MatchString(path) && !matchAny(r.allowPath, path) {
			out = append(out, r)
		}
	}
	return out
}

// CheckFile runs path rule r against a file's leading bytes and reports
// whether it is a finding.
func (r *Rule) CheckFile(head []byte) bool {
	if r.validate == nil {
		return true
	}
	return r.validate(head, head)
}

// ID returns the rule id.
func (r *Rule) ID() string { return r.Rule.ID }

// Scan reads r to the end and calls emit for every match, in order of
// offset. path is used for path allowlists only. Memory use is bounded
// whatever the input size or line length. A non-nil error from emit stops
// the scan and is returned.
func (e *Engine) Scan(ctx context.Context, r io.Reader, path string, emit func(Match) error) error {
	bp := e.bufs.Get().(*[]byte)
	defer e.bufs.Put(bp)
	buf := *bp
	st := newState(e, path)
	n, own := 0, 0
	var base int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		eof := false
		for n < len(buf) {
			m, err := r.Read(buf[n:])
			n += m
			if errors.Is(err, io.EOF) {
				eof = true
				break
			}
			if err != nil {
				return err
			}
		}
		limit := n
		if !eof {
			limit = n - overlap
		}
		if err := st.chunk(buf[:n], base, own, limit, emit); err != nil {
			return err
		}
		if eof {
			return nil
		}
		keep := limit - overlap
		copy(buf, buf[keep:n])
		n -= keep
		base += int64(keep)
		own = overlap
	}
}

// ScanBytes scans an in-memory document.
func (e *Engine) ScanBytes(data []byte, path string) []Match {
	var out []Match
	st := newState(e, path)
	_ = st.chunk(data, 0, 0, len(data), func(m Match) error { out = append(out, m); return nil })
	return out
}

// state is the per-stream scanning state.
type state struct {
	e       *Engine
	path    string
	lastEnd []int64 // per rule: absolute end of the last window searched
	cands   []cand
	vetoes  [][2]int64 // secret spans a provider rule matched and rejected
	seen    map[[2]int64]bool
	skip    []bool // per rule: path allowlisted
	// cursor for line/column: absolute offset, 1-based line and column.
	curOff    int64
	curLine   int
	curCol    int
	haveRules bool
}

type cand struct {
	r          *Rule
	start, end int64 // absolute, of the secret
	mstart     int64 // absolute, of the whole match
	mend       int64
}

func newState(e *Engine, path string) *state {
	st := &state{e: e, path: path, lastEnd: make([]int64, len(e.rules)), curLine: 1, curCol: 1,
		skip: make([]bool, len(e.rules))}
	for i := range st.lastEnd {
		st.lastEnd[i] = -1
	}
	for i, r := range e.rules {
		st.skip[i] = len(r.allowPath) > 0 && matchAny(r.allowPath, path)
	}
	return st
}

// chunk scans buf (which starts at absolute offset base) and emits the
// matches whose start lies in [own, limit).
func (st *state) chunk(buf []byte, base int64, own, limit int, emit func(Match) error) error {
	st.cands = st.cands[:0]
	st.vetoes = st.vetoes[:0]
	clear(st.seen)
	for i := range st.lastEnd {
		st.lastEnd[i] = -1 // windows of the previous chunk's overlap are searched again
	}
	e := st.e
	e.ac.scan(buf[own:], func(kw int32, end int) {
		end += own
		start := end - e.ac.kwLen[kw]
		for _, ri := range e.kwRules[kw] {
			if st.skip[ri] || (!e.rules[ri].anchored && base+int64(start) < st.lastEnd[ri]) {
				continue
			}
			st.window(buf, base, ri, start, e.ac.kwLen[kw], own, limit)
		}
	})
	if len(st.cands) > 0 {
		st.applyVetoes()
		if err := st.flush(buf, base, emit); err != nil {
			return err
		}
	}
	st.advance(buf, base, base+int64(limit))
	return nil
}

// identPrefix is how far back from a keyword an anchored match may start
// (DB_PASSWORD, myServiceApiToken).
const identPrefix = 40

func isIdent(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// assignAhead is a cheap test that an assignment follows the keyword
// at buf[kw:kw+n]: identifier characters, an optional quote, spaces, then
// an operator that is not a comparison. It returns the index of the value
// after the operator, or -1. Most keyword occurrences in code fail it and
// never reach the regex.
func assignAhead(buf []byte, kw, n int) int {
	i := kw + n
	for end := min(len(buf), i+40); i < end && isIdent(buf[i]); i++ {
	}
	if i < len(buf) && (buf[i] == '"' || buf[i] == '\'') {
		i++
	}
	for sp := 0; sp < 3 && i < len(buf) && (buf[i] == ' ' || buf[i] == '\t'); sp++ {
		i++
	}
	if i+1 >= len(buf) {
		return -1
	}
	switch c, d := buf[i], buf[i+1]; {
	case c == '=' && d == '>', c == ':' && d == '=', c == '?' && d == '=':
		return i + 2
	case c == '|' && d == '|' && i+2 < len(buf) && buf[i+2] == '=':
		return i + 3
	case c == '=' && d != '=', c == ':' && d != ':':
		return i + 1
	case c == ':' && d == ':' && i+2 < len(buf) && buf[i+2] == '=':
		return i + 3
	}
	return -1
}

// plausibleValue is the cheap part of the generic value check, done
// before the regex: the value after the operator is long enough and does
// not start like a reference, a template or code.
func plausibleValue(buf []byte, i int) bool {
	for sp := 0; sp < 3 && i < len(buf) && (buf[i] == ' ' || buf[i] == '\t'); sp++ {
		i++
	}
	if i < len(buf) && (buf[i] == '"' || buf[i] == '\'' || buf[i] == '`') {
		i++
	}
	if i >= len(buf) {
		return false
	}
	switch buf[i] {
	case '$', '%', '{', '<', '[', '(', '&', '*', '@', '!':
		return false
	}
	n := 0
	for ; i < len(buf) && n < 8; i, n = i+1, n+1 {
		switch buf[i] {
		case ' ', '\t', '\n', '\r', '"', '\'', '`', ';', ',', '<', '>', '(':
			return false
		}
	}
	return n == 8
}

// anchorSpan bounds the text an anchored match can cover.
const anchorSpan = 320

// anchor runs anchored rule r at the keyword at buf[kw:kw+n].
func (st *state) anchor(buf []byte, base int64, r *Rule, kw, n, own, limit int) {
	v := assignAhead(buf, kw, n)
	if v < 0 || (r.Generic && !plausibleValue(buf, v)) {
		return
	}
	hi := min(len(buf), kw+anchorSpan)
	if i := bytes.IndexByte(buf[kw:hi], '\n'); i >= 0 {
		hi = kw + i
	}
	m := r.re.FindSubmatchIndex(buf[kw:hi])
	if m == nil || m[2] < 0 {
		return
	}
	ms := kw
	for ms > 0 && kw-ms < identPrefix && isIdent(buf[ms-1]) {
		ms--
	}
	st.candidate(buf, base, r, ms, kw+m[1], kw+m[2], kw+m[3], own, limit)
}

// candidate filters one regex match: [ms,me) the match, [ss,se) the
// secret, all indexes into buf.
func (st *state) candidate(buf []byte, base int64, r *Rule, ms, me, ss, se, own, limit int) {
	if ms < own || ms >= limit {
		return
	}
	key := [2]int64{int64(r.index), base + int64(ss)}
	if st.seen == nil {
		st.seen = map[[2]int64]bool{}
	}
	if st.seen[key] {
		return
	}
	st.seen[key] = true
	if !st.accept(r, buf[ss:se], buf[ms:me], ss-ms) {
		if !r.Generic {
			// Recognised as this provider's format and judged not a
			// credential (bad checksum, example, placeholder): generic
			// rules must not report it either.
			st.vetoes = append(st.vetoes, [2]int64{base + int64(ss), base + int64(se)})
		}
		return
	}
	if ignored(buf, ms) {
		return
	}
	st.cands = append(st.cands, cand{r: r, start: base + int64(ss), end: base + int64(se),
		mstart: base + int64(ms), mend: base + int64(me)})
}

// window runs rule ri on the window around a keyword at buf[kw:].
func (st *state) window(buf []byte, base int64, ri int32, kw, n, own, limit int) {
	r := st.e.rules[ri]
	if r.anchored {
		st.anchor(buf, base, r, kw, n, own, limit)
		return
	}
	lo := max(0, kw-lineCap)
	if i := bytes.LastIndexByte(buf[lo:kw], '\n'); i >= 0 {
		lo += i + 1
	}
	var hi int
	if r.Window > 0 {
		hi = min(len(buf), kw+r.Window)
	} else {
		hi = min(len(buf), kw+lineCap)
		if i := bytes.IndexByte(buf[kw:hi], '\n'); i >= 0 {
			hi = kw + i
		}
	}
	st.lastEnd[ri] = base + int64(hi)
	win := buf[lo:hi]
	for _, m := range r.re.FindAllSubmatchIndex(win, -1) {
		g := r.group
		if m[2*g] < 0 {
			continue
		}
		st.candidate(buf, base, r, lo+m[0], lo+m[1], lo+m[2*g], lo+m[2*g+1], own, limit)
	}
}

// accept applies the filters of rule r to a candidate secret; full is the
// whole regex match and at the secret's offset in it.
func (st *state) accept(r *Rule, secret, full []byte, at int) bool {
	if len(secret) == 0 {
		return false
	}
	if r.Entropy > 0 && Entropy(secret) < r.Entropy {
		return false
	}
	if allowlisted(secret, r.allowRE, r.stopwords) || allowlisted(secret, st.e.globalRE, st.e.globalWords) {
		return false
	}
	if r.Validate != "pem" && Placeholder(secret) {
		return false
	}
	if r.validate != nil && !r.validate(secret, full[:at]) {
		return false
	}
	return true
}

func allowlisted(secret []byte, res []*regexp.Regexp, words []string) bool {
	for _, re := range res {
		if re.Match(secret) {
			return true
		}
	}
	if len(words) > 0 {
		low := bytes.ToLower(secret)
		for _, w := range words {
			if bytes.Contains(low, []byte(w)) {
				return true
			}
		}
	}
	return false
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// ignored reports whether the line holding buf[at] carries an inline
// ignore comment.
func ignored(buf []byte, at int) bool {
	lo := max(0, at-ignoreScan)
	if i := bytes.LastIndexByte(buf[lo:at], '\n'); i >= 0 {
		lo += i + 1
	}
	hi := min(len(buf), at+ignoreScan)
	if i := bytes.IndexByte(buf[at:hi], '\n'); i >= 0 {
		hi = at + i
	}
	line := buf[lo:hi]
	return bytes.Contains(line, []byte("coffer:ignore")) || bytes.Contains(line, []byte("gitleaks:allow"))
}

// applyVetoes drops generic candidates whose secret overlaps a span a
// provider rule rejected.
func (st *state) applyVetoes() {
	if len(st.vetoes) == 0 {
		return
	}
	st.cands = slices.DeleteFunc(st.cands, func(c cand) bool {
		if !c.r.Generic {
			return false
		}
		for _, v := range st.vetoes {
			if c.start < v[1] && v[0] < c.end {
				return true
			}
		}
		return false
	})
}

// flush resolves overlaps (a provider rule beats a generic one on the same
// text; the longer match wins between provider rules), computes positions
// and emits in offset order.
func (st *state) flush(buf []byte, base int64, emit func(Match) error) error {
	c := st.cands
	slices.SortFunc(c, func(a, b cand) int {
		if a.mstart != b.mstart {
			return int(a.mstart - b.mstart)
		}
		return a.r.index - b.r.index
	})
	drop := make([]bool, len(c))
	for i := range c {
		for j := i + 1; j < len(c) && c[j].mstart < c[i].mend; j++ {
			a, b := c[i], c[j]
			if a.start >= b.end || b.start >= a.end {
				continue
			}
			switch {
			case a.r.Generic && !b.r.Generic:
				drop[i] = true
			case b.r.Generic && !a.r.Generic:
				drop[j] = true
			case b.end-b.start > a.end-a.start:
				drop[i] = true
			default:
				drop[j] = true
			}
		}
	}
	for i, x := range c {
		if drop[i] {
			continue
		}
		st.advance(buf, base, x.mstart)
		m := Match{Rule: x.r, Secret: NewSecret(buf[x.start-base : x.end-base]), Offset: x.mstart,
			Line: st.curLine, Column: st.curCol}
		m.EndLine = m.Line + bytes.Count(buf[x.mstart-base:x.mend-base], []byte{'\n'})
		if err := emit(m); err != nil {
			return err
		}
	}
	return nil
}

// advance moves the line/column cursor to absolute offset to.
func (st *state) advance(buf []byte, base, to int64) {
	if to <= st.curOff {
		return
	}
	seg := buf[st.curOff-base : to-base]
	if nl := bytes.Count(seg, []byte{'\n'}); nl > 0 {
		st.curLine += nl
		seg = seg[bytes.LastIndexByte(seg, '\n')+1:]
		st.curCol = 1
	}
	st.curCol += utf8.RuneCount(seg)
	st.curOff = to
}

// Entropy returns the Shannon entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
