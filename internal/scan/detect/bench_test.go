package detect_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/scantest"
)

// BenchmarkEngine measures one core on typical source text.
func BenchmarkEngine(b *testing.B) {
	e, _ := engine(b)
	var buf bytes.Buffer
	if err := scantest.NewGen(3).TypicalSource(&buf, 16<<20); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	if ms := e.ScanBytes(data, "x"); len(ms) > 0 {
		b.Fatalf("typical source has %d findings, first %s line %d", len(ms), ms[0].Rule.ID(), ms[0].Line)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := e.Scan(context.Background(), bytes.NewReader(data), "x", func(detect.Match) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
