package shamir

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// FuzzSplitCombine checks the roundtrip property: for any secret and any
// valid (parts, threshold), any threshold-sized subset of the shares
// combines to the secret.
func FuzzSplitCombine(f *testing.F) {
	f.Add([]byte("a 32-byte root key for the vault"), uint8(5), uint8(3), uint64(1))
	f.Add([]byte{0}, uint8(2), uint8(2), uint64(7))
	f.Add([]byte{0xff, 0x00, 0x01}, uint8(255), uint8(255), uint64(42))
	f.Fuzz(func(t *testing.T, secret []byte, parts, threshold uint8, seed uint64) {
		if len(secret) == 0 || len(secret) > 256 {
			return
		}
		n := 2 + int(parts)%254        // 2..255
		th := 2 + int(threshold)%(n-1) // 2..n
		shares, err := Split(secret, n, th)
		if err != nil {
			t.Fatalf("Split(n=%d, t=%d): %v", n, th, err)
		}
		r := mrand.New(mrand.NewPCG(seed, seed>>1))
		got, err := Combine(pick(r, shares, th))
		if err != nil {
			t.Fatalf("Combine: %v", err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("roundtrip n=%d t=%d: got %x, want %x", n, th, got, secret)
		}
	})
}

// FuzzCombine feeds Combine arbitrary shares: the first byte says how many,
// the rest is cut into that many equal pieces. Combine must never panic;
// it must accept exactly the inputs that are well formed (at least two
// shares, equal lengths of at least 2, distinct non-zero x), return a
// secret one byte shorter than a share, and give the same answer for the
// shares in reverse order (interpolation does not depend on order).
func FuzzCombine(f *testing.F) {
	shares, _ := Split([]byte("seed"), 3, 2)
	f.Add(append([]byte{3}, slices.Concat(shares...)...))
	f.Add([]byte{2, 1, 1, 1, 1})
	f.Add([]byte{2, 1, 0, 1, 0})
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var parts [][]byte
		if len(data) > 0 {
			k := int(data[0])
			rest := data[1:]
			if k > 0 {
				size := len(rest) / k
				for i := range k {
					parts = append(parts, rest[i*size:(i+1)*size])
				}
			}
		}
		got, err := Combine(parts)
		if valid := wellFormed(parts); valid != (err == nil) {
			t.Fatalf("well formed = %v but Combine error = %v", valid, err)
		}
		if err != nil {
			if !errors.Is(err, ErrTooFewShares) && !errors.Is(err, ErrMalformedShare) && !errors.Is(err, ErrDuplicateShare) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if len(got) != len(parts[0])-1 {
			t.Fatalf("secret is %d bytes from %d-byte shares", len(got), len(parts[0]))
		}
		rev := slices.Clone(parts)
		slices.Reverse(rev)
		again, err := Combine(rev)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("reversed order: %x, %v; want %x", again, err, got)
		}
	})
}

func wellFormed(parts [][]byte) bool {
	if len(parts) < 2 || len(parts[0]) < 2 {
		return false
	}
	seen := map[byte]bool{}
	for _, p := range parts {
		if len(p) != len(parts[0]) {
			return false
		}
		x := p[len(p)-1]
		if x == 0 || seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}
