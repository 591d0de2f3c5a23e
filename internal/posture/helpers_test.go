package posture_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// now is the fixed time of every file snapshot in these tests.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

// writeFixture writes objects as a kind: List file in a temp dir.
func writeFixture(t testing.TB, objs ...posturetest.Object) string {
	t.Helper()
	var b bytes.Buffer
	if err := posturetest.WriteList(&b, objs...); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fixture.yaml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load writes objects to a file and loads it back, as the CLI would.
func load(t testing.TB, objs ...posturetest.Object) *posture.Snapshot {
	t.Helper()
	return loadWith(t, posture.FileOptions{}, objs...)
}

func loadWith(t testing.TB, o posture.FileOptions, objs ...posturetest.Object) *posture.Snapshot {
	t.Helper()
	o.Now = fixedNow
	s, err := posture.LoadFiles(t.Context(), []string{writeFixture(t, objs...)}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) > 0 {
		t.Fatalf("fixture problems: %v", s.Problems)
	}
	return s
}

// detector is the scan engine with the default rules, compiled once for
// all tests.
var detector = sync.OnceValue(func() *detect.Engine {
	f, err := rule.Default()
	if err != nil {
		panic(err)
	}
	e, err := detect.New(f)
	if err != nil {
		panic(err)
	}
	return e
})

func analyze(t testing.TB, s *posture.Snapshot) *posture.Report {
	t.Helper()
	rep, err := posture.Analyze(t.Context(), s, posture.Config{Detector: detector()})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
