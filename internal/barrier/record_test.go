package barrier

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func testAEADKey(t testing.TB, fill byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{fill}, keyLen)
}

func TestRecordRoundtrip(t *testing.T) {
	t.Parallel()
	aead, err := newAEAD(testAEADKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		plain []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text", []byte("hunter2")},
		{"binary 4k", bytes.Repeat([]byte{0xff, 0x00}, 2048)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, err := sealRecord(rand.Reader, aead, 0x01020304, "app/db", tc.plain)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec) != minRecordLen+len(tc.plain) {
				t.Fatalf("record is %d bytes, want %d", len(rec), minRecordLen+len(tc.plain))
			}
			if got := binary.BigEndian.Uint32(rec); got != 0x01020304 {
				t.Fatalf("term = %#x", got)
			}
			if rec[4] != recordVersion {
				t.Fatalf("version = %d", rec[4])
			}
			got, err := openRecord(aead, "app/db", rec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plain) {
				t.Fatalf("opened %q, want %q", got, tc.plain)
			}
		})
	}
}

func TestRecordNoncesDiffer(t *testing.T) {
	t.Parallel()
	aead, _ := newAEAD(testAEADKey(t, 1))
	a, _ := sealRecord(rand.Reader, aead, 1, "k", []byte("same"))
	b, _ := sealRecord(rand.Reader, aead, 1, "k", []byte("same"))
	if bytes.Equal(a[headerLen:headerLen+nonceLen], b[headerLen:headerLen+nonceLen]) {
		t.Fatal("two records share a nonce")
	}
}

func TestOpenRecordRejects(t *testing.T) {
	t.Parallel()
	aead, _ := newAEAD(testAEADKey(t, 1))
	other, _ := newAEAD(testAEADKey(t, 2))
	rec, err := sealRecord(rand.Reader, aead, 1, "app/db", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(rec)
	v2[termLen] = 2
	tests := []struct {
		name string
		key  any // cipher to open with: aead or other
		path string
		rec  []byte
	}{
		{"other path", aead, "app/db2", rec},
		{"path prefix", aead, "app/d", rec},
		{"physical path", aead, "v/app/db", rec},
		{"other key", other, "app/db", rec},
		{"version 2", aead, "app/db", v2},
		{"empty", aead, "app/db", nil},
		{"header only", aead, "app/db", rec[:headerLen]},
		{"one short of minimum", aead, "app/db", rec[:minRecordLen-1]},
		{"extra byte", aead, "app/db", append(bytes.Clone(rec), 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := aead
			if tc.key == other {
				c = other
			}
			_, err := openRecord(c, tc.path, tc.rec)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error = %v, want ErrDecrypt", err)
			}
		})
	}
}

// TestEveryBitFlipDetected flips each bit of a stored record in turn and
// reads it back through the barrier: every flip must fail, with ErrDecrypt
// or (a flip in the term) ErrUnknownTerm, never return data.
func TestEveryBitFlipDetected(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "a", "x")
	if _, err := b.Rotate(ctx); err != nil { // two terms, so some term flips name a real key
		t.Fatal(err)
	}
	mustPut(t, b, "app/db", "the quick brown fox")
	orig, err := phys.Get(ctx, dataPrefix+"app/db")
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(orig) * 8 {
		rec := bytes.Clone(orig)
		rec[i/8] ^= 1 << (i % 8)
		if err := phys.Backend.Put(ctx, dataPrefix+"app/db", rec); err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(ctx, "app/db")
		if err == nil {
			t.Fatalf("bit %d flipped: Get returned %q and no error", i, got)
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownTerm) {
			t.Fatalf("bit %d flipped: error = %v, want ErrDecrypt or ErrUnknownTerm", i, err)
		}
	}
	if err := phys.Put(ctx, dataPrefix+"app/db", orig); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, "app/db"); got != "the quick brown fox" {
		t.Fatalf("restored record reads %q", got)
	}
}

func TestTruncatedRecords(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "k", "a value of some length")
	orig, _ := phys.Get(ctx, dataPrefix+"k")
	for n := range len(orig) {
		if err := phys.Put(ctx, dataPrefix+"k", orig[:n]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("record cut to %d of %d bytes: error = %v, want ErrDecrypt", n, len(orig), err)
		}
	}
	if err := phys.Put(ctx, dataPrefix+"k", orig); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownTerm(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "k", "v")
	rec, _ := phys.Get(ctx, dataPrefix+"k")
	binary.BigEndian.PutUint32(rec, 99)
	if err := phys.Put(ctx, dataPrefix+"k", rec); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(ctx, "k")
	if !errors.Is(err, ErrUnknownTerm) {
		t.Fatalf("error = %v, want ErrUnknownTerm", err)
	}
	if !strings.Contains(err.Error(), "term 99") {
		t.Errorf("error %q does not name the term", err)
	}
	phys.noCheck = true
}

func TestWrongPath(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "team-a/db", "password-a")
	rec, _ := phys.Get(ctx, dataPrefix+"team-a/db")
	if err := phys.Put(ctx, dataPrefix+"team-b/db", rec); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "team-b/db"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("record copied to another path: error = %v, want ErrDecrypt", err)
	}
	// The keyring, too, is bound to its path.
	kr, _ := phys.Get(ctx, keyringPath)
	if err := phys.Put(ctx, dataPrefix+"kr", kr); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "kr"); err == nil {
		t.Fatal("keyring record opened as an entry")
	}
	phys.noCheck = true
}
