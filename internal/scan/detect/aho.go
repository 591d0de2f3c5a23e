package detect

// automaton is an Aho-Corasick automaton over ASCII-case-folded keywords,
// compiled to a dense DFA on byte classes: bytes that occur in no keyword
// share class 0, so the table stays small and the inner loop is one load
// per input byte.
type automaton struct {
	class  [256]uint8
	nclass int
	trans  []int32 // trans[state*nclass+class] = next state
	// fast is trans premultiplied: fast[s*nclass+c] = next*nclass, bit-
	// complemented when next has outputs.
	fast   []int32
	out    [][]int32 // keyword ids that end in state (suffix links merged)
	kwLen  []int     // length of keyword i
	maxLen int
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// newAutomaton builds the automaton for keywords (compared case-folded).
// Keyword ids are indexes into keywords.
func newAutomaton(keywords []string) *automaton {
	a := &automaton{kwLen: make([]int, len(keywords))}
	// Byte classes: one per distinct folded byte in any keyword.
	nc := 1
	for _, k := range keywords {
		for i := 0; i < len(k); i++ {
			b := lower(k[i])
			if a.class[b] == 0 {
				if nc == 255 {
					panic("detect: too many distinct keyword bytes")
				}
				a.class[b] = uint8(nc)
				nc++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c+'a'-'A']
	}
	a.nclass = nc

	// Trie with -1 for missing edges.
	goto_ := [][]int32{make([]int32, nc)}
	fill := func(row []int32) {
		for i := range row {
			row[i] = -1
		}
	}
	fill(goto_[0])
	out := [][]int32{nil}
	for id, k := range keywords {
		a.kwLen[id] = len(k)
		a.maxLen = max(a.maxLen, len(k))
		s := int32(0)
		for i := 0; i < len(k); i++ {
			c := a.class[lower(k[i])]
			if goto_[s][c] < 0 {
				row := make([]int32, nc)
				fill(row)
				goto_ = append(goto_, row)
				out = append(out, nil)
				goto_[s][c] = int32(len(goto_) - 1)
			}
			s = goto_[s][c]
		}
		out[s] = append(out[s], int32(id))
	}

	// Breadth-first: failure links, merged outputs, full DFA transitions.
	n := len(goto_)
	fail := make([]int32, n)
	a.trans = make([]int32, n*nc)
	queue := make([]int32, 0, n)
	for c := 0; c < nc; c++ {
		if t := goto_[0][c]; t > 0 {
			fail[t] = 0
			a.trans[c] = t
			queue = append(queue, t)
		} else {
			a.trans[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if f := fail[s]; len(out[f]) > 0 {
			out[s] = append(out[s], out[f]...)
		}
		for c := 0; c < nc; c++ {
			t := goto_[s][c]
			if t < 0 {
				a.trans[int(s)*nc+c] = a.trans[int(fail[s])*nc+c]
				continue
			}
			fail[t] = a.trans[int(fail[s])*nc+c]
			a.trans[int(s)*nc+c] = t
			queue = append(queue, t)
		}
	}
	a.out = out
	a.fast = make([]int32, len(a.trans))
	for i, t := range a.trans {
		v := t * int32(nc)
		if len(out[t]) > 0 {
			v = ^v
		}
		a.fast[i] = v
	}
	return a
}

// scan calls fn(keyword, end) for every keyword occurrence in buf, where
// end is the index just past the occurrence. Occurrences are reported in
// order of end.
func (a *automaton) scan(buf []byte, fn func(kw int32, end int)) {
	s := int32(0)
	nc := int32(a.nclass)
	fast, class := a.fast, &a.class
	for i := 0; i < len(buf); i++ {
		t := fast[s+int32(class[buf[i]])]
		if t < 0 {
			t = ^t
			for _, k := range a.out[t/nc] {
				fn(k, i+1)
			}
		}
		s = t
	}
}
