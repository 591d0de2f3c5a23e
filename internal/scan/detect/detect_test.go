package detect_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

func engine(t testing.TB) (*detect.Engine, *rule.File) {
	t.Helper()
	f, err := rule.Default()
	if err != nil {
		t.Fatal(err)
	}
	e, err := detect.New(f)
	if err != nil {
		t.Fatal(err)
	}
	return e, f
}

// TestEveryRuleDetectsItsSample: for each content rule, a generated sample
// on a line of its own is found by that rule with the generated secret.
func TestEveryRuleDetectsItsSample(t *testing.T) {
	t.Parallel()
	e, f := engine(t)
	g := scantest.NewGen(1)
	for _, r := range f.Rules {
		if r.Target != "" && r.Target != rule.TargetContent {
			continue
		}
		for v := range 3 {
			s, err := g.Sample(r, v)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			doc := "first line\n" + s.Text + "\nlast line\n"
			ms := e.ScanBytes([]byte(doc), "x.txt")
			found := false
			for _, m := range ms {
				if m.Rule.ID() == r.ID && m.Secret.Reveal() == s.Secret && m.Line == 2 {
					found = true
				}
			}
			if !found {
				var got []string
				for _, m := range ms {
					got = append(got, fmt.Sprintf("%s@%d:%q", m.Rule.ID(), m.Line, m.Secret.Reveal()))
				}
				t.Errorf("rule %s variant %d: sample %q not found; got %v", r.ID, v, s.Text, got)
			}
		}
	}
}

// TestStreamingMatchesInMemory: chunk boundaries and one-byte reads do not
// change what is found or where.
func TestStreamingMatchesInMemory(t *testing.T) {
	t.Parallel()
	e, f := engine(t)
	g := scantest.NewGen(2)
	var doc bytes.Buffer
	filler := strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit\n", 700)
	want := 0
	for i, r := range f.Rules {
		if r.Target != "" || r.Generic {
			continue
		}
		s, err := g.Sample(r, i)
		if err != nil {
			t.Fatal(err)
		}
		doc.WriteString(filler[:(i*977)%len(filler)])
		doc.WriteString("x " + s.Text + " y\n")
		want++
	}
	mem := e.ScanBytes(doc.Bytes(), "x")
	for _, rd := range []struct {
		name string
		r    func() *bytes.Reader
		wrap func(*bytes.Reader) any
	}{{name: "bulk"}, {name: "half"}} {
		var got []detect.Match
		var src = bytes.NewReader(doc.Bytes())
		var err error
		if rd.name == "half" {
			err = e.Scan(context.Background(), iotest.HalfReader(src), "x", func(m detect.Match) error { got = append(got, m); return nil })
		} else {
			err = e.Scan(context.Background(), src, "x", func(m detect.Match) error { got = append(got, m); return nil })
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(mem) {
			gm := map[int64]bool{}
			for _, m := range got {
				gm[m.Offset] = true
			}
			for _, m := range mem {
				if !gm[m.Offset] {
					t.Logf("missing %s at %d line %d", m.Rule.ID(), m.Offset, m.Line)
				}
			}
			t.Fatalf("%s: streaming found %d, in-memory %d (doc %d bytes)", rd.name, len(got), len(mem), doc.Len())
		}
		for i := range got {
			a, b := got[i], mem[i]
			if a.Rule != b.Rule || a.Offset != b.Offset || a.Line != b.Line || a.Column != b.Column || a.Secret.Reveal() != b.Secret.Reveal() {
				t.Fatalf("%s: match %d differs: %s@%d:%d vs %s@%d:%d", rd.name, i, a.Rule.ID(), a.Line, a.Column, b.Rule.ID(), b.Line, b.Column)
			}
		}
	}
	if len(mem) < want*9/10 {
		t.Errorf("found %d of %d planted", len(mem), want)
	}
}
