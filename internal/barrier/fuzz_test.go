package barrier

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// fuzzBarrier returns an unsealed barrier with fixed keys for terms 1 and
// 2, and records sealed under them with nonces from a seeded source, so
// the set of genuine records is the same on every run (and so matches the
// corpus kept in testdata/fuzz).
func fuzzBarrier(t testing.TB) (*Barrier, map[string][]byte) {
	b := New(newPhys(), Options{})
	terms := map[uint32]*term{}
	for id := uint32(1); id <= 2; id++ {
		k := newSecretKey(bytes.Repeat([]byte{byte(id)}, keyLen))
		aead, err := newAEAD(k.bytes())
		if err != nil {
			t.Fatal(err)
		}
		terms[id] = &term{id: id, key: k, aead: aead}
	}
	b.k = &keyState{terms: terms, active: terms[2]}

	nonces := mrand.NewChaCha8([32]byte{42})
	genuine := map[string][]byte{}
	for id := uint32(1); id <= 2; id++ {
		for _, path := range []string{"a", "app/db", "team-b/db"} {
			for _, plain := range []string{"", "x", "the quick brown fox"} {
				rec, err := sealRecord(nonces, terms[id].aead, id, path, []byte(plain))
				if err != nil {
					t.Fatal(err)
				}
				genuine[path+"\x00"+string(rec)] = []byte(plain)
			}
		}
	}
	return b, genuine
}

// FuzzOpen opens arbitrary (path, record) pairs. It must never panic, must
// fail with ErrDecrypt or ErrUnknownTerm, and may succeed only for a
// record genuinely sealed for that path, giving back its plaintext.
func FuzzOpen(f *testing.F) {
	b, genuine := fuzzBarrier(f)
	for pr := range genuine {
		path, rec, _ := bytes.Cut([]byte(pr), []byte{0})
		f.Add(string(path), rec)
		f.Add("other", rec)
		f.Add(string(path), rec[:len(rec)-1])
	}
	f.Add("a", []byte{})
	f.Add("a", make([]byte, minRecordLen))
	f.Fuzz(func(t *testing.T, path string, rec []byte) {
		plain, err := b.open(path, rec)
		want, ok := genuine[path+"\x00"+string(rec)]
		switch {
		case err == nil && !ok:
			t.Fatalf("opened a record that was never sealed for %q: %q", path, plain)
		case err == nil && !bytes.Equal(plain, want):
			t.Fatalf("opened %q, sealed %q", plain, want)
		case err != nil && ok:
			t.Fatalf("genuine record failed to open: %v", err)
		case err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownTerm):
			t.Fatalf("undocumented error: %v", err)
		}
	})
}

// FuzzRecordRoundtrip: sealing then opening gives the plaintext back, the
// header says what was sealed, and the record opens at no other path.
func FuzzRecordRoundtrip(f *testing.F) {
	f.Add("app/db", []byte("hunter2"), uint32(1))
	f.Add("", []byte{}, uint32(0))
	f.Add("a", bytes.Repeat([]byte{0}, 100), uint32(1<<31))
	aead, err := newAEAD(bytes.Repeat([]byte{7}, keyLen))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string, plain []byte, term uint32) {
		rec, err := sealRecord(rand.Reader, aead, term, path, plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) != minRecordLen+len(plain) {
			t.Fatalf("record is %d bytes for %d of plaintext", len(rec), len(plain))
		}
		if got, err := recordTerm(path, rec); err != nil || got != term {
			t.Fatalf("recordTerm = %d, %v; want %d", got, err, term)
		}
		got, err := openRecord(aead, path, rec)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open = %q, %v; want %q", got, err, plain)
		}
		if _, err := openRecord(aead, path+"/x", rec); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("opened at another path: %v", err)
		}
	})
}

// FuzzKeyring decodes arbitrary keyring JSON. It must never panic; what
// decodes must encode and decode again to the same keyring, and encoding
// is then a fixed point (decode(encode(k)) encodes to the same bytes).
func FuzzKeyring(f *testing.F) {
	t1 := &term{id: 1, key: newSecretKey(bytes.Repeat([]byte{1}, keyLen)), installed: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}
	t1.encryptions.Store(12345)
	t2 := &term{id: 2, key: newSecretKey(bytes.Repeat([]byte{2}, keyLen)), installed: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	for _, p := range []progress{{through: 1}, {through: 1, cursorTerm: 2, cursorAfter: "v/a/\"b\"\\c"}} {
		enc, err := encodeKeyring(map[uint32]*term{1: t1, 2: t2}, 2, p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte(`{"version":1,"active_term":1,"keys":[{"term":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","install_time":"2025-01-01T00:00:00-05:00"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeKeyring(data)
		if err != nil {
			return
		}
		enc, err := encodeKeyring(st.terms, st.active, st.prog)
		if err != nil {
			t.Fatalf("a decoded keyring does not encode: %v", err)
		}
		st2, err := decodeKeyring(bytes.Clone(enc))
		if err != nil {
			t.Fatalf("an encoded keyring does not decode: %v\n%s", err, enc)
		}
		if st2.active != st.active || st2.prog != st.prog || len(st2.terms) != len(st.terms) {
			t.Fatalf("roundtrip changed the keyring: %+v -> %+v", st, st2)
		}
		for id, a := range st.terms {
			c := st2.terms[id]
			if c == nil || !bytes.Equal(a.key.bytes(), c.key.bytes()) || !a.installed.Equal(c.installed) ||
				a.encryptions.Load() != c.encryptions.Load() || c.aead == nil {
				t.Fatalf("term %d changed in the roundtrip", id)
			}
		}
		enc2, err := encodeKeyring(st2.terms, st2.active, st2.prog)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point:\n%s\n%s", enc, enc2)
		}
	})
}
