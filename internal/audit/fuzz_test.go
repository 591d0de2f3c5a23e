package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fuzzLog returns a log written by the broker: 6 request/response pairs,
// a checkpoint every 4 records and a last one on Close. Clock and keys are
// fixed, so the bytes are the same on every run and the corpus in
// testdata/fuzz stays meaningful.
func fuzzLog(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "audit.log")
	writeLog(f, path, 6, 4)
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

func verifyBytes(t *testing.T, data []byte) *Report {
	t.Helper()
	rep, err := VerifyReaders([]Source{{Name: "log", R: bytes.NewReader(data)}}, testPub, nil)
	if err != nil {
		t.Fatalf("verify from memory returned an I/O error: %v", err)
	}
	if rep.OK == (rep.Problem != nil) {
		t.Fatalf("OK = %v with problem %v", rep.OK, rep.Problem)
	}
	return rep
}

// smallLog is a short log of small records (7 request records, a
// checkpoint after every 3, a last one on Close: 10 lines, about 2 KB),
// small enough for the fuzzer to mutate as a whole.
func smallLog(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "small.log")
	b := NewBroker(BrokerOptions{Now: newClock().Now, CheckpointEvery: 3, CheckpointInterval: time.Hour})
	enable(t, b, "f/", newFileDevice(t, path))
	for i := range 7 {
		e := &Entry{Request: &Request{Operation: "read", Path: fmt.Sprint("kv/", i), Data: map[string]any{"k": "v", "n": i}}}
		if err := b.LogRequest(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzParseLine parses arbitrary lines. It must never panic, and what it
// accepts must have the fields verify relies on.
func FuzzParseLine(f *testing.F) {
	for l := range bytes.Lines(fuzzLog(f)) {
		f.Add(bytes.TrimSuffix(l, []byte{'\n'}))
	}
	f.Add([]byte(`{"seq":1,"prev":"` + Genesis + `","time":"2025-01-01T00:00:00Z","type":"request"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":1}{"seq":2}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := parseLine(line)
		if err != nil {
			return
		}
		switch {
		case rec.Seq == 0 || !isHash(rec.Prev):
			t.Fatalf("accepted seq %d prev %q", rec.Seq, rec.Prev)
		case (rec.Type == TypeCheckpoint) != (rec.CP != nil):
			t.Fatalf("type %q with checkpoint %v", rec.Type, rec.CP)
		case rec.Type != TypeCheckpoint && rec.Type != TypeRequest && rec.Type != TypeResponse:
			t.Fatalf("accepted type %q", rec.Type)
		case rec.CP != nil && (!isHash(rec.CP.Hash) || len(line) < sigSuffixLen ||
			!bytes.HasSuffix(line, []byte(sigOpen+rec.Sig+sigClose))):
			t.Fatalf("accepted checkpoint %+v", rec.CP)
		}
		checkSignature(line, rec.Sig, testPub) // must not panic
	})
}

// FuzzVerify verifies arbitrary input. It must never panic; a problem
// names a line that exists; OK means every line was a record.
func FuzzVerify(f *testing.F) {
	// Whole logs of many kilobytes stall Go's mutator; seed with a small one.
	log := smallLog(f)
	f.Add(log)
	f.Add(log[:len(log)/2])
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := verifyBytes(t, data)
		lines := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		if rep.OK && rep.Records != uint64(lines) {
			t.Fatalf("OK with %d records in %d lines", rep.Records, lines)
		}
		if !rep.OK && (rep.Problem.Line < 1 || rep.Problem.Line > lines+1) {
			t.Fatalf("problem at line %d of %d: %v", rep.Problem.Line, lines, rep.Problem)
		}
	})
}

// FuzzTamper changes one byte of a log the broker wrote (replaces it,
// deletes it, or inserts one before it). The log as written verifies;
// every such change must be found.
func FuzzTamper(f *testing.F) {
	log := fuzzLog(f)
	for _, pos := range []uint32{0, 1, 10, 100, uint32(len(log) / 2), uint32(len(log) - 2), uint32(len(log) - 1)} {
		for op := range uint8(3) {
			f.Add(pos, op, byte('0'))
		}
	}
	f.Add(uint32(len(log)), uint8(2), byte('\n'))
	f.Add(uint32(len(log)-1), uint8(0), byte(' '))
	f.Fuzz(func(t *testing.T, pos uint32, op uint8, b byte) {
		if rep := verifyBytes(t, log); !rep.OK {
			t.Fatalf("the log as written does not verify: %v", rep.Problem)
		}
		data := slices.Clone(log)
		switch op % 3 {
		case 0: // replace
			i := int(pos % uint32(len(data)))
			if data[i] == b {
				return
			}
			data[i] = b
		case 1: // delete
			data = slices.Delete(data, int(pos%uint32(len(data))), int(pos%uint32(len(data)))+1)
		case 2: // insert
			data = slices.Insert(data, int(pos%uint32(len(data)+1)), b)
		}
		if rep := verifyBytes(t, data); rep.OK {
			t.Fatalf("change %d at %d (byte %q) not detected", op%3, pos%uint32(len(log)), b)
		}
	})
}

// TestTamperEveryByte is FuzzTamper's property checked exhaustively on a
// small log: flipping a bit of, deleting, or inserting a space before
// any byte is detected.
func TestTamperEveryByte(t *testing.T) {
	t.Parallel()
	log := smallLog(t)
	if rep := verifyBytes(t, log); !rep.OK {
		t.Fatalf("the log as written does not verify: %v", rep.Problem)
	}
	for i := range log {
		for op, data := range map[string][]byte{
			"flip":   slices.Concat(log[:i], []byte{log[i] ^ 1}, log[i+1:]),
			"delete": slices.Concat(log[:i], log[i+1:]),
			"insert": slices.Concat(log[:i], []byte{' '}, log[i:]),
		} {
			if rep := verifyBytes(t, data); rep.OK {
				t.Fatalf("%s at byte %d (%q) not detected", op, i, log[i])
			}
		}
	}
}
