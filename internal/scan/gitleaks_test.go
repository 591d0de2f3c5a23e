package scan_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/scan"
	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

// TestCompareGitleaks runs coffer and gitleaks over the same labelled
// corpus and the same typical-source directory and logs recall, false
// positives and speed for both. It is a measurement, not a gate: it runs
// only when COFFER_GITLEAKS names a gitleaks binary (for example one
// built with `go install github.com/zricethezav/gitleaks/v8@v8.30.0`).
// The corpus plants samples of coffer's rule families, so the recall of
// gitleaks is measured on formats it may not claim to cover.
func TestCompareGitleaks(t *testing.T) {
	gl := os.Getenv("COFFER_GITLEAKS")
	if gl == "" {
		t.Skip("COFFER_GITLEAKS not set")
	}
	dir := t.TempDir()
	f, err := rule.Default()
	if err != nil {
		t.Fatal(err)
	}
	planted, err := scantest.NewGen(corpusSeed).Corpus(dir, f.Rules, 3)
	if err != nil {
		t.Fatal(err)
	}
	type loc struct {
		file string
		line int
	}
	want := map[loc]bool{}
	for _, p := range planted {
		want[loc{p.File, p.Line}] = true
	}
	score := func(name string, got map[loc]bool, took time.Duration) {
		found, fp := 0, 0
		for l := range got {
			if want[l] {
				found++
			} else {
				fp++
			}
		}
		t.Logf("%-8s corpus: %4d/%d planted found (recall %.3f), %d false positives, %v",
			name, found, len(want), float64(found)/float64(len(want)), fp, took.Round(time.Millisecond))
	}

	start := time.Now()
	findings, err := runJSON(t, scan.Options{Paths: []string{dir}})
	if err != nil && !errors.Is(err, scan.ErrFindings) {
		t.Fatal(err)
	}
	took := time.Since(start)
	got := map[loc]bool{}
	for _, x := range findings {
		rel, _ := filepath.Rel(dir, x.File)
		got[loc{filepath.ToSlash(rel), x.Line}] = true
	}
	score("coffer", got, took)

	runGitleaks := func(target string) ([]struct {
		File      string
		StartLine int
	}, time.Duration) {
		report := filepath.Join(t.TempDir(), "gl.json")
		cmd := exec.Command(gl, "dir", "--no-banner", "--log-level", "error", "--exit-code", "0",
			"--report-format", "json", "--report-path", report, target)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gitleaks: %v\n%s", err, out)
		}
		took := time.Since(start)
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var res []struct {
			File      string
			StartLine int
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		return res, took
	}
	res, took := runGitleaks(dir)
	got = map[loc]bool{}
	for _, x := range res {
		rel, _ := filepath.Rel(dir, x.File)
		got[loc{filepath.ToSlash(rel), x.StartLine}] = true
	}
	score("gitleaks", got, took)

	// Speed on typical source text.
	src := t.TempDir()
	g := scantest.NewGen(11)
	var total int64
	for i := 0; total < 50<<20; i++ {
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%37), fmt.Sprintf("f%05d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.TypicalSource(w, 8<<10+g.Rand().IntN(56<<10)); err != nil {
			t.Fatal(err)
		}
		st, _ := w.Stat()
		total += st.Size()
		w.Close()
	}
	start = time.Now()
	if _, err := scan.Run(t.Context(), scan.Options{Paths: []string{src}}); err != nil && !errors.Is(err, scan.ErrFindings) {
		t.Fatal(err)
	}
	ct := time.Since(start)
	_, gt := runGitleaks(src)
	mb := float64(total) / 1e6
	t.Logf("typical source %.0f MB: coffer %v (%.1f MB/s), gitleaks %v (%.1f MB/s)",
		mb, ct.Round(time.Millisecond), mb/ct.Seconds(), gt.Round(time.Millisecond), mb/gt.Seconds())
}
