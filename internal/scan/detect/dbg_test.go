package detect_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/cofferhq/coffer/internal/scan/scantest"
)

func TestDbgTypical(t *testing.T) {
	e, _ := engine(t)
	var buf bytes.Buffer
	scantest.NewGen(3).TypicalSource(&buf, 1<<20)
	lines := bytes.Split(buf.Bytes(), []byte("\n"))
	seen := map[string]int{}
	for _, m := range e.ScanBytes(buf.Bytes(), "x") {
		k := m.Rule.ID() + " " + string(lines[m.Line-1])
		seen[m.Rule.ID()]++
		if seen[m.Rule.ID()] < 4 {
			fmt.Printf("%s | %q | %q\n", m.Rule.ID(), lines[m.Line-1], m.Secret.Reveal())
		}
		_ = k
	}
	fmt.Println(seen)
	os.WriteFile("/tmp/typical.txt", buf.Bytes(), 0o644)
}
