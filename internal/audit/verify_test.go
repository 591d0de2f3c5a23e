package audit

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The log every tamper case starts from: 10 request/response pairs with a
// checkpoint after every 4 records, so 25 lines with checkpoints on lines
// 5, 10, 15, 20 and 25.
const (
	tamperPairs = 10
	tamperEvery = 4
	tamperLines = 25
)

func tamperLog(t *testing.T) (string, [][]byte) {
	t.Helper()
	path := tempLog(t)
	writeLog(t, path, tamperPairs, tamperEvery)
	lines := readLines(t, path)
	if len(lines) != tamperLines {
		t.Fatalf("log has %d lines, want %d", len(lines), tamperLines)
	}
	return path, lines
}

// rechain rewrites the prev of every line after i (and, when cps is set,
// the hash inside checkpoints) so the chain is consistent again, as an
// attacker without the signing key would.
func rechain(lines [][]byte, i int, cps bool) {
	for j := i + 1; j < len(lines); j++ {
		prev, _ := parseLine(bytes.TrimSuffix(lines[j], []byte{'\n'}))
		want := lineHash(bytes.TrimSuffix(lines[j-1], []byte{'\n'}))
		old := []byte(`"prev":"` + prev.Prev + `"`)
		lines[j] = bytes.Replace(lines[j], old, []byte(`"prev":"`+want+`"`), 1)
		if cps {
			lines[j] = bytes.Replace(lines[j], []byte(`"hash":"`+prev.Prev+`"`), []byte(`"hash":"`+want+`"`), 1)
		}
	}
}

func forged(seq uint64, prev string) []byte {
	return appendFramed(nil, seq, prev, []byte(`{"time":"2025-03-04T05:06:07Z","type":"request","request":{"path":"secret/data/forged"}}`))
}

func TestVerifyTamper(t *testing.T) {
	t.Parallel()
	cut := func(lines [][]byte, i int) [][]byte { return slices.Delete(lines, i, i+1) }
	put := func(lines [][]byte, i int, l []byte) [][]byte { return slices.Insert(lines, i, l) }
	hashOf := func(l []byte) string { return lineHash(bytes.TrimSuffix(l, []byte{'\n'})) }
	tests := []struct {
		name   string
		tamper func([][]byte) [][]byte
		pub    ed25519.PublicKey
		head   func(orig [][]byte) *Head
		kind   Kind // "" means the log must verify
		line   int
	}{
		{name: "untouched"},
		{name: "edit a record", kind: KindEdited, line: 7, tamper: func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte("secret/data/app/db"), []byte("secret/data/app/dX"), 1)
			return l
		}},
		{name: "edit a prev", kind: KindEdited, line: 7, tamper: func(l [][]byte) [][]byte {
			i := bytes.Index(l[6], []byte(`"prev":"`)) + 8
			l[6][i] ^= 1
			return l
		}},
		{name: "edit a seq", kind: KindEdited, line: 7, tamper: func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte(`{"seq":7,`), []byte(`{"seq":9,`), 1)
			return l
		}},
		{name: "edit the last line's time", kind: KindBadSignature, line: 25, tamper: func(l [][]byte) [][]byte {
			l[24] = bytes.Replace(l[24], []byte(`"time":"2025`), []byte(`"time":"2024`), 1)
			return l
		}},
		{name: "edit a line into junk", kind: KindMalformed, line: 7, tamper: func(l [][]byte) [][]byte {
			l[6] = []byte("not json\n")
			return l
		}},
		{name: "empty line", kind: KindMalformed, line: 7, tamper: func(l [][]byte) [][]byte {
			return put(l, 6, []byte("\n"))
		}},
		{name: "delete a record", kind: KindDeleted, line: 7, tamper: func(l [][]byte) [][]byte { return cut(l, 6) }},
		{name: "delete a checkpoint", kind: KindDeleted, line: 10, tamper: func(l [][]byte) [][]byte { return cut(l, 9) }},
		{name: "delete the first record", tamper: func(l [][]byte) [][]byte { return cut(l, 0) }}, // starts mid-chain: FirstSeq says so
		{name: "insert a copy", kind: KindInserted, line: 8, tamper: func(l [][]byte) [][]byte {
			return put(l, 7, bytes.Clone(l[2]))
		}},
		{name: "insert a linked forgery", kind: KindInserted, line: 8, tamper: func(l [][]byte) [][]byte {
			return put(l, 7, forged(8, hashOf(l[6])))
		}},
		{name: "insert an unlinked forgery", kind: KindInserted, line: 8, tamper: func(l [][]byte) [][]byte {
			return put(l, 7, forged(8, Genesis))
		}},
		{name: "swap two records", kind: KindReordered, line: 7, tamper: func(l [][]byte) [][]byte {
			l[6], l[7] = l[7], l[6]
			return l
		}},
		{name: "move a record later", kind: KindReordered, line: 3, tamper: func(l [][]byte) [][]byte {
			r := l[2]
			l = cut(l, 2)
			return put(l, 20, r)
		}},
		{name: "move a record earlier", kind: KindReordered, line: 3, tamper: func(l [][]byte) [][]byte {
			r := l[12]
			l = cut(l, 12)
			return put(l, 2, r)
		}},
		{name: "rewrite the chain", kind: KindEdited, line: 10, tamper: func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte("secret/data/app/db"), []byte("secret/data/app/dX"), 1)
			rechain(l, 6, false)
			return l
		}},
		{name: "rewrite the chain and checkpoints", kind: KindBadSignature, line: 10, tamper: func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte("secret/data/app/db"), []byte("secret/data/app/dX"), 1)
			rechain(l, 6, true)
			return l
		}},
		{name: "rewrite after the last checkpoint", tamper: func(l [][]byte) [][]byte {
			// Undetectable without the head: the tail is covered by the chain alone.
			l = l[:23]
			l[21] = bytes.Replace(l[21], []byte("secret/data/app/db"), []byte("secret/data/app/dX"), 1)
			rechain(l, 21, false)
			return l
		}},
		{name: "bad signature", kind: KindBadSignature, line: 10, tamper: func(l [][]byte) [][]byte {
			i := bytes.Index(l[9], []byte(`"sig":"`)) + 10
			l[9][i] ^= 1
			return l
		}},
		{name: "wrong key", kind: KindBadSignature, line: 5, pub: otherKey.Public().(ed25519.PublicKey)},
		{name: "no key: a rewritten chain passes", pub: ed25519.PublicKey{}, tamper: func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte("secret/data/app/db"), []byte("secret/data/app/dX"), 1)
			rechain(l, 6, true)
			return l
		}},
		{name: "truncated mid-line", kind: KindTruncated, line: 25, tamper: func(l [][]byte) [][]byte {
			l[24] = l[24][:len(l[24])/2]
			return l
		}},
		{name: "truncated at a line, no head", tamper: func(l [][]byte) [][]byte { return l[:22] }},
		{name: "truncated at a line, with head", kind: KindTruncated, line: 23, tamper: func(l [][]byte) [][]byte { return l[:22] },
			head: func(o [][]byte) *Head { return &Head{Seq: 25, Hash: hashOf(o[24])} }},
		{name: "head matches", head: func(o [][]byte) *Head { return &Head{Seq: 25, Hash: hashOf(o[24])} }},
		{name: "head in the middle", head: func(o [][]byte) *Head { return &Head{Seq: 12, Hash: hashOf(o[11])} }},
		{name: "head disagrees", kind: KindEdited, line: 12, head: func(o [][]byte) *Head { return &Head{Seq: 12, Hash: hashOf(o[10])} }},
		{name: "a second chain appended", kind: KindRestarted, line: 26, tamper: func(l [][]byte) [][]byte {
			return append(l, forged(1, Genesis))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, orig := tamperLog(t)
			lines := slices.Clone(orig)
			for i := range lines {
				lines[i] = bytes.Clone(lines[i])
			}
			if tc.tamper != nil {
				lines = tc.tamper(lines)
				writeLines(t, path, lines)
			}
			pub := testPub
			if tc.pub != nil {
				pub = tc.pub
				if len(pub) == 0 {
					pub = nil
				}
			}
			var head *Head
			if tc.head != nil {
				head = tc.head(orig)
			}
			rep := verifyFiles(t, pub, head, path)
			switch {
			case tc.kind == "" && !rep.OK:
				t.Fatalf("want OK, got %v", rep.Problem)
			case tc.kind == "":
				return
			case rep.OK:
				t.Fatalf("tampering not detected: %+v", rep)
			case rep.Problem.Kind != tc.kind || rep.Problem.Line != tc.line || rep.Problem.File != path:
				t.Fatalf("got %v; want %s at line %d", rep.Problem, tc.kind, tc.line)
			}
			t.Logf("%v", rep.Problem)
		})
	}
}

func TestVerifyReport(t *testing.T) {
	t.Parallel()
	path, lines := tamperLog(t)
	rep := verifyFiles(t, testPub, &Head{Seq: 25, Hash: lineHash(bytes.TrimSuffix(lines[24], []byte{'\n'}))}, path)
	want := Report{OK: true, Records: 25, Checkpoints: 5, FirstSeq: 1, SignedThrough: 25, SignaturesChecked: true, HeadChecked: true,
		Last: Head{Seq: 25, Hash: lineHash(bytes.TrimSuffix(lines[24], []byte{'\n'}))}}
	if *rep != want {
		t.Fatalf("report\n%+v\nwant\n%+v", *rep, want)
	}

	// A log that starts mid-chain verifies and says where it starts.
	writeLines(t, path, lines[7:])
	if rep := mustVerify(t, path); rep.FirstSeq != 8 {
		t.Fatalf("FirstSeq = %d, want 8", rep.FirstSeq)
	}

	// An empty log is fine without a head and truncated with one.
	writeLines(t, path, nil)
	mustVerify(t, path)
	if rep := verifyFiles(t, testPub, &Head{Seq: 3, Hash: Genesis}, path); rep.OK || rep.Problem.Kind != KindTruncated {
		t.Fatalf("empty log with a head: %+v", rep)
	}
}

// TestVerifyAcrossFiles: a chain rotated across files verifies only with
// all of them, in order.
func TestVerifyAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	b := newBroker(t, BrokerOptions{CheckpointEvery: 7})
	dev := newFileDevice(t, path, "max_size", "4096")
	dev.(*fileDevice).now = newClock().Now
	enable(t, b, "file/", dev)
	for i := range 40 {
		req, resp := kvRead(i, fmt.Sprint("pw", i))
		if err := b.LogRequest(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if err := b.LogResponse(t.Context(), resp); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	files, err := RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 || files[len(files)-1] != path {
		t.Fatalf("files = %v", files)
	}
	rep := mustVerify(t, files...)
	if rep.FirstSeq != 1 || rep.Records != 80+80/7+1 { // and the checkpoint Close writes
		t.Fatalf("report %+v", rep)
	}
	// The files after the first verify alone, starting mid-chain.
	mustVerify(t, files[1:]...)

	// Out of order.
	swapped := slices.Clone(files)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	if rep := verifyFiles(t, testPub, nil, swapped...); rep.OK || rep.Problem.File != swapped[1] || rep.Problem.Line != 1 {
		t.Fatalf("swapped files: %+v", rep.Problem)
	}
	// A file left out.
	if rep := verifyFiles(t, testPub, nil, slices.Delete(slices.Clone(files), 1, 2)...); rep.OK || rep.Problem.Kind != KindDeleted || rep.Problem.File != files[2] {
		t.Fatalf("missing file: %+v", rep.Problem)
	}
	// The last line of the first file deleted: found at the first line of the second.
	lines := readLines(t, files[0])
	writeLines(t, files[0], lines[:len(lines)-1])
	if rep := verifyFiles(t, testPub, nil, files...); rep.OK || rep.Problem.Kind != KindDeleted || rep.Problem.File != files[1] || rep.Problem.Line != 1 {
		t.Fatalf("deleted at the end of a file: %+v", rep.Problem)
	}
}

func TestVerifyReadersLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLine+10) + "\n"
	rep, err := VerifyReaders([]Source{{Name: "big", R: strings.NewReader(long)}}, testPub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Problem.Kind != KindMalformed || rep.Problem.Line != 1 {
		t.Fatalf("got %+v", rep.Problem)
	}
}
