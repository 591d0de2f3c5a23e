package scan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/scan"
	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

// corpusSeed names the labelled corpus.
const corpusSeed = 20250101

type reportFinding struct {
	Rule, Family, File, Secret, Fingerprint string
	Line, Column                            int
	Commit                                  *struct{ Hash, Author string }
	Kubernetes                              *struct{ Key string }
}

func runJSON(t *testing.T, o scan.Options) ([]reportFinding, error) {
	t.Helper()
	var out bytes.Buffer
	o.Format, o.Output = scan.FormatJSON, &out
	_, err := scan.Run(t.Context(), o)
	if err != nil && !errors.Is(err, scan.ErrFindings) {
		return nil, err
	}
	var rep struct{ Findings []reportFinding }
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("report: %v\n%s", jerr, out.String())
	}
	return rep.Findings, err
}

// TestCorpus plants secrets of every rule across file types and Kubernetes
// manifests among typical source and hard negatives, then checks recall
// and false positives per family.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := rule.Default()
	if err != nil {
		t.Fatal(err)
	}
	planted, err := scantest.NewGen(corpusSeed).Corpus(dir, f.Rules, 3)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := runJSON(t, scan.Options{Paths: []string{dir}, ShowSecrets: true, Workers: 2})
	if !errors.Is(err, scan.ErrFindings) {
		t.Fatalf("Run: %v, want ErrFindings", err)
	}
	type loc struct {
		file string
		line int
	}
	byLoc := map[loc][]reportFinding{}
	for _, x := range findings {
		rel, _ := filepath.Rel(dir, x.File)
		byLoc[loc{filepath.ToSlash(rel), x.Line}] = append(byLoc[loc{filepath.ToSlash(rel), x.Line}], x)
	}
	type stat struct{ planted, found, exactRule, fp int }
	fam := map[string]*stat{}
	get := func(f string) *stat {
		if fam[f] == nil {
			fam[f] = &stat{}
		}
		return fam[f]
	}
	used := map[loc]bool{}
	var missed []string
	for _, p := range planted {
		s := get(p.Family)
		s.planted++
		l := loc{p.File, p.Line}
		got := byLoc[l]
		if len(got) == 0 {
			missed = append(missed, fmt.Sprintf("%s %s:%d", p.RuleID, p.File, p.Line))
			continue
		}
		used[l] = true
		s.found++
		if slices.ContainsFunc(got, func(x reportFinding) bool { return x.Rule == p.RuleID }) {
			s.exactRule++
		}
	}
	var fps []string
	for l, xs := range byLoc {
		if used[l] {
			continue
		}
		for _, x := range xs {
			get(x.Family).fp++
			fps = append(fps, fmt.Sprintf("%s %s:%d %q", x.Rule, l.file, l.line, x.Secret))
		}
	}
	sort.Strings(fps)
	sort.Strings(missed)
	names := make([]string, 0, len(fam))
	for k := range fam {
		names = append(names, k)
	}
	sort.Strings(names)
	var table strings.Builder
	fmt.Fprintf(&table, "%-12s %8s %6s %7s %10s %4s\n", "family", "planted", "found", "recall", "exact-rule", "FP")
	for _, n := range names {
		s := fam[n]
		recall := 1.0
		if s.planted > 0 {
			recall = float64(s.found) / float64(s.planted)
		}
		fmt.Fprintf(&table, "%-12s %8d %6d %6.1f%% %10d %4d\n", n, s.planted, s.found, 100*recall, s.exactRule, s.fp)
		if s.planted > 0 && recall < 0.95 {
			t.Errorf("family %s: recall %.2f below 0.95", n, recall)
		}
		if s.fp > 0 {
			t.Errorf("family %s: %d false positives", n, s.fp)
		}
	}
	t.Logf("corpus: %d planted, %d findings\n%s", len(planted), len(findings), table.String())
	for _, m := range missed {
		t.Logf("missed: %s", m)
	}
	for _, fp := range fps {
		t.Logf("false positive: %s", fp)
	}
}
