package posture_test

import (
	"bytes"
	"testing"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

var scales = []struct {
	name string
	cfg  posturetest.SyntheticConfig
}{
	{"issue-10k", posturetest.IssueScale},
	{"large-5kbindings-20kpods", posturetest.LargeScale},
}

// BenchmarkAnalyze measures Analyze over synthetic clusters; the loading
// is done once, outside the timer.
func BenchmarkAnalyze(b *testing.B) {
	for _, sc := range scales {
		b.Run(sc.name, func(b *testing.B) {
			s := load(b, posturetest.Synthetic(sc.cfg)...)
			b.ResetTimer()
			var rep *posture.Report
			for b.Loop() {
				var err error
				if rep, err = posture.Analyze(b.Context(), s, posture.Config{Detector: detector()}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.Objects()), "objects")
			b.ReportMetric(float64(len(rep.Findings)), "findings")
			b.ReportMetric(float64(len(rep.Access)), "subjects-with-paths")
		})
	}
}

// BenchmarkLoadFiles measures reading a `kubectl get -A -o yaml` dump.
func BenchmarkLoadFiles(b *testing.B) {
	for _, sc := range scales {
		b.Run(sc.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := posturetest.WriteList(&buf, posturetest.Synthetic(sc.cfg)...); err != nil {
				b.Fatal(err)
			}
			path := writeFile(b, "dump.yaml", buf.String())
			b.SetBytes(int64(buf.Len()))
			b.ResetTimer()
			for b.Loop() {
				if _, err := posture.LoadFiles(b.Context(), []string{path}, posture.FileOptions{Now: fixedNow}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
