package detect_test

import (
	"bytes"
	"context"
	"testing"
	"testing/iotest"

	"github.com/cofferhq/coffer/internal/scan/detect"
)

// FuzzScan: on any input the engine terminates, every match lies inside
// the input with a secret that occurs at its offset's line, and reading
// the input one byte at a time finds exactly what scanning it whole does.
func FuzzScan(f *testing.F) {
	e, _ := engine(f)
	f.Add([]byte("GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a\npassword = \"Xy7pQ2rT9wLm\"\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("api_key: \xff\xfe\x00 eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := e.ScanBytes(data, "f")
		var one []detect.Match
		if err := e.Scan(context.Background(), iotest.OneByteReader(bytes.NewReader(data)), "f", func(m detect.Match) error {
			one = append(one, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(one) != len(whole) {
			t.Fatalf("one-byte reads found %d, whole %d", len(one), len(whole))
		}
		for i, m := range whole {
			if m.Offset < 0 || m.Offset >= int64(len(data)) || m.Line < 1 || m.Column < 1 || m.EndLine < m.Line {
				t.Fatalf("match %d out of bounds: %+v", i, m)
			}
			if !bytes.Contains(data[m.Offset:], []byte(m.Secret.Reveal())) {
				t.Fatalf("secret of match %d not in the input after its offset", i)
			}
			if line := bytes.Count(data[:m.Offset], []byte("\n")) + 1; line != m.Line {
				t.Fatalf("match %d line %d, counted %d", i, m.Line, line)
			}
			o := one[i]
			if o.Offset != m.Offset || o.Line != m.Line || o.Column != m.Column || o.Rule != m.Rule {
				t.Fatalf("match %d differs between readers", i)
			}
		}
	})
}
