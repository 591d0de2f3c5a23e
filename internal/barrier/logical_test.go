package barrier

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

func TestTxn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ops      []storage.Op
		conflict string            // logical key of the expected conflict, "" for success
		want     map[string]string // values afterwards; "" means absent
	}{
		{
			name: "check absent on a missing key",
			ops:  []storage.Op{storage.CheckAbsent("new"), storage.Put("new", []byte("n"))},
			want: map[string]string{"new": "n"},
		},
		{
			name:     "check absent on an existing key",
			ops:      []storage.Op{storage.CheckAbsent("a"), storage.Put("a", []byte("changed"))},
			conflict: "a",
			want:     map[string]string{"a": "1"},
		},
		{
			name: "check equal compares plaintext, not ciphertext",
			ops:  []storage.Op{storage.CheckEqual("a", []byte("1")), storage.Put("a", []byte("2"))},
			want: map[string]string{"a": "2"},
		},
		{
			name:     "check equal with another value",
			ops:      []storage.Op{storage.Put("b", []byte("changed")), storage.CheckEqual("a", []byte("x"))},
			conflict: "a",
			want:     map[string]string{"a": "1", "b": "2"},
		},
		{
			name:     "check equal on a missing key",
			ops:      []storage.Op{storage.CheckEqual("missing", []byte("")), storage.Put("a", nil)},
			conflict: "missing",
			want:     map[string]string{"a": "1", "missing": ""},
		},
		{
			name:     "check equal with a prefix of the value",
			ops:      []storage.Op{storage.CheckEqual("long", []byte("abc")), storage.Delete("long")},
			conflict: "long",
			want:     map[string]string{"long": "abcdef"},
		},
		{
			name: "several writes and a delete, atomically",
			ops: []storage.Op{
				storage.CheckEqual("a", []byte("1")),
				storage.CheckEqual("b", []byte("2")),
				storage.Put("a", []byte("one")),
				storage.Delete("b"),
				storage.Put("dir/c", []byte("three")),
			},
			want: map[string]string{"a": "one", "b": "", "dir/c": "three"},
		},
		{
			name:     "a failing check after good ones writes nothing",
			ops:      []storage.Op{storage.CheckEqual("a", []byte("1")), storage.Put("a", []byte("x")), storage.CheckAbsent("b")},
			conflict: "b",
			want:     map[string]string{"a": "1", "b": "2"},
		},
		{
			name: "empty value",
			ops:  []storage.Op{storage.CheckEqual("empty", nil), storage.Put("empty", []byte("now full"))},
			want: map[string]string{"empty": "now full"},
		},
		{
			name: "no ops",
			want: map[string]string{"a": "1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _, _ := newTestBarrier(t)
			ctx := t.Context()
			for k, v := range map[string]string{"a": "1", "b": "2", "long": "abcdef", "empty": ""} {
				mustPut(t, b, k, v)
			}
			err := b.Txn(ctx, tc.ops)
			if tc.conflict == "" {
				if err != nil {
					t.Fatalf("Txn: %v", err)
				}
			} else {
				ce, ok := errors.AsType[*storage.ConflictError](err)
				if !ok || ce.Key != tc.conflict || !errors.Is(err, storage.ErrConflict) {
					t.Fatalf("Txn error = %v, want a conflict at %q", err, tc.conflict)
				}
			}
			for k, want := range tc.want {
				got, err := b.Get(ctx, k)
				if want == "" {
					if !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("%s: got %q, %v; want absent", k, got, err)
					}
					continue
				}
				if err != nil || string(got) != want {
					t.Errorf("%s: got %q, %v; want %q", k, got, err, want)
				}
			}
		})
	}
}

func TestTxnInvalid(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBarrier(t)
	for name, ops := range map[string][]storage.Op{
		"bad key":  {storage.Put("a//b", nil)},
		"bad kind": {{Kind: 9, Key: "a"}},
	} {
		if err := b.Txn(t.Context(), ops); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTxnCheckOnDamagedRecord(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "a", "1")
	rec, _ := phys.Get(ctx, dataPrefix+"a")
	rec[len(rec)-1] ^= 0x80
	if err := phys.Put(ctx, dataPrefix+"a", rec); err != nil {
		t.Fatal(err)
	}
	err := b.Txn(ctx, []storage.Op{storage.CheckEqual("a", []byte("1")), storage.Put("a", []byte("2"))})
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("error = %v, want ErrDecrypt", err)
	}
	phys.noCheck = true
}

// TestTxnSurvivesRewrite: between Txn's read and its commit, the checked
// record is rewritten with the same plaintext (as Reencrypt does). The
// ciphertext check fails, but the plaintext check still holds, so Txn must
// retry and succeed. A rewrite with another plaintext is a real conflict.
func TestTxnSurvivesRewrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		rewriteTo    string
		wantConflict bool
		want         string
	}{
		{"same plaintext", "1", false, "2"},
		{"other plaintext", "other", true, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, phys, _ := newTestBarrier(t)
			ctx := t.Context()
			mustPut(t, b, "a", "1")
			fired := false
			phys.setBeforeTxn(func(ops []storage.Op) error {
				if fired {
					return nil
				}
				fired = true
				// A concurrent writer; it goes to the physical store
				// directly since this hook runs inside the barrier's Txn.
				rec, err := b.encrypt(ctx, "a", []byte(tc.rewriteTo))
				if err != nil {
					return err
				}
				return phys.Backend.Put(ctx, dataPrefix+"a", rec)
			})
			err := b.Txn(ctx, []storage.Op{storage.CheckEqual("a", []byte("1")), storage.Put("a", []byte("2"))})
			if got := errors.Is(err, storage.ErrConflict); got != tc.wantConflict {
				t.Fatalf("Txn error = %v, want conflict %v", err, tc.wantConflict)
			}
			phys.setBeforeTxn(nil)
			if got := mustGet(t, b, "a"); got != tc.want {
				t.Fatalf("a = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTxnGivesUp: a checked record whose ciphertext changes before every
// commit ends in a conflict after a bounded number of attempts.
func TestTxnGivesUp(t *testing.T) {
	t.Parallel()
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "a", "1")
	attempts := 0
	phys.setBeforeTxn(func(ops []storage.Op) error {
		attempts++
		rec, err := b.encrypt(ctx, "a", []byte("1"))
		if err != nil {
			return err
		}
		return phys.Backend.Put(ctx, dataPrefix+"a", rec)
	})
	err := b.Txn(ctx, []storage.Op{storage.CheckEqual("a", []byte("1")), storage.Put("a", []byte("2"))})
	ce, ok := errors.AsType[*storage.ConflictError](err)
	if !ok || ce.Key != "a" {
		t.Fatalf("error = %v, want a conflict at the logical key", err)
	}
	if attempts != maxTxnAttempts {
		t.Fatalf("%d attempts, want %d", attempts, maxTxnAttempts)
	}
}

func TestTxnPhysicalCheck(t *testing.T) {
	t.Parallel()
	// The physical Txn checks the exact ciphertext read.
	b, phys, _ := newTestBarrier(t)
	ctx := t.Context()
	mustPut(t, b, "a", "1")
	before, _ := phys.Get(ctx, dataPrefix+"a")
	var seen []storage.Op
	phys.setBeforeTxn(func(ops []storage.Op) error { seen = ops; return nil })
	if err := b.Txn(ctx, []storage.Op{storage.CheckEqual("a", []byte("1")), storage.CheckAbsent("z"), storage.Put("a", []byte("2"))}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 ||
		seen[0].Kind != storage.OpCheck || seen[0].Key != "v/a" || !bytes.Equal(seen[0].Value, before) ||
		seen[1].Kind != storage.OpCheck || seen[1].Key != "v/z" || !seen[1].Absent ||
		seen[2].Kind != storage.OpPut || seen[2].Key != "v/a" || bytes.Contains(seen[2].Value, []byte("2")) && len(seen[2].Value) == 1 {
		t.Fatalf("physical ops: %+v", seen)
	}
}
