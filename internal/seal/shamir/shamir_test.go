package shamir

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

// seeded returns a deterministic randomness source, so property tests
// explore many cases yet fail the same way every run.
func seeded(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

func TestSplitValidation(t *testing.T) {
	t.Parallel()
	secret := []byte("root key")
	tests := []struct {
		name             string
		secret           []byte
		parts, threshold int
		want             error
	}{
		{"empty secret", nil, 5, 3, ErrEmptySecret},
		{"zero parts", secret, 0, 0, ErrInvalidParts},
		{"negative parts", secret, -1, 2, ErrInvalidParts},
		{"too many parts", secret, 256, 3, ErrInvalidParts},
		{"single share needs threshold 1", secret, 1, 2, ErrInvalidThreshold},
		{"threshold 1 with several shares", secret, 3, 1, ErrInvalidThreshold},
		{"threshold 0", secret, 3, 0, ErrInvalidThreshold},
		{"threshold above parts", secret, 3, 4, ErrInvalidThreshold},
		{"ok 1 of 1", secret, 1, 1, nil},
		{"ok 2 of 2", secret, 2, 2, nil},
		{"ok 3 of 5", secret, 5, 3, nil},
		{"ok 255 of 255", secret, 255, 255, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shares, err := Split(tc.secret, tc.parts, tc.threshold)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Split(%d, %d) error = %v, want %v", tc.parts, tc.threshold, err, tc.want)
			}
			if err == nil && len(shares) != tc.parts {
				t.Fatalf("got %d shares, want %d", len(shares), tc.parts)
			}
			if err != nil && shares != nil {
				t.Fatalf("shares returned with error")
			}
		})
	}
}

func TestShareFormat(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{0xaa}, 32)
	orig := bytes.Clone(secret)
	shares, err := Split(secret, 255, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, orig) {
		t.Fatal("Split modified the secret")
	}
	seen := map[byte]bool{}
	for i, s := range shares {
		if len(s) != 33 {
			t.Fatalf("share %d is %d bytes, want 33", i, len(s))
		}
		x := s[32]
		if x == 0 {
			t.Fatalf("share %d has x = 0", i)
		}
		if seen[x] {
			t.Fatalf("share %d repeats x = %d", i, x)
		}
		seen[x] = true
	}
}

func TestXCoordinatesAreRandom(t *testing.T) {
	t.Parallel()
	// With 3 of 255 possible x values, two Splits choosing the same
	// ordered triple 20 times in a row would mean the choice is fixed.
	first, err := Split([]byte("s"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Split([]byte("s"), 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range again {
			if again[i][1] != first[i][1] {
				return
			}
		}
	}
	t.Fatal("x coordinates identical across 21 Splits")
}

func TestSingleShare(t *testing.T) {
	t.Parallel()
	secret := []byte("dev root key, thirty-two bytes!!")
	shares, err := Split(secret, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 1 || len(shares[0]) != len(secret)+1 {
		t.Fatalf("got %d shares of %d bytes", len(shares), len(shares[0]))
	}
	if !bytes.Equal(shares[0][:len(secret)], secret) {
		t.Fatal("a 1-of-1 share is not the secret plus an x byte")
	}
	if shares[0][len(secret)] == 0 {
		t.Fatal("x = 0")
	}
}

func TestCombineValidation(t *testing.T) {
	t.Parallel()
	shares, err := Split([]byte("secret"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	zeroX := bytes.Clone(shares[1])
	zeroX[len(zeroX)-1] = 0
	tests := []struct {
		name  string
		parts [][]byte
		want  error
	}{
		{"nil", nil, ErrTooFewShares},
		{"one share", shares[:1], ErrTooFewShares},
		{"empty shares", [][]byte{{}, {}}, ErrMalformedShare},
		{"one-byte shares", [][]byte{{1}, {2}}, ErrMalformedShare},
		{"different lengths", [][]byte{shares[0], shares[1][1:]}, ErrMalformedShare},
		{"x is zero", [][]byte{shares[0], zeroX}, ErrMalformedShare},
		{"same share twice", [][]byte{shares[0], shares[0]}, ErrDuplicateShare},
		{"same x different y", [][]byte{shares[0], append(bytes.Clone(shares[1][:6]), shares[0][6])}, ErrDuplicateShare},
		{"ok", shares[:2], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Combine(tc.parts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Combine error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDuplicateShareMessage(t *testing.T) {
	t.Parallel()
	shares, err := Split([]byte("secret"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Combine([][]byte{shares[0], shares[1], shares[0]})
	const want = "shamir: duplicate share: shares 1 and 3 have the same x coordinate; enter each share once"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

// TestThresholdProperty checks, over many random (N, T, secret), that every
// sampled subset of at least T shares recovers the secret, in any order, and
// that T-1 shares do not.
func TestThresholdProperty(t *testing.T) {
	t.Parallel()
	rnd := seeded(1)
	r := mrand.New(rnd)
	for iter := range 400 {
		n := 2 + r.IntN(30)
		if iter%50 == 0 {
			n = 200 + r.IntN(56) // now and then, near the maximum
		}
		th := 2 + r.IntN(n-1)
		// At least 16 bytes, so T-1 shares hitting the secret by chance
		// (probability 2^-8 per byte) is out of the question.
		secret := make([]byte, 16+r.IntN(48))
		rnd.Read(secret)

		shares, err := split(rnd, secret, n, th)
		if err != nil {
			t.Fatalf("split(n=%d, t=%d): %v", n, th, err)
		}
		for range 3 {
			k := th + r.IntN(n-th+1)
			got, err := Combine(pick(r, shares, k))
			if err != nil {
				t.Fatalf("Combine %d of %d (t=%d): %v", k, n, th, err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("Combine %d of %d (t=%d) did not recover the secret", k, n, th)
			}
		}
		got, err := Combine(pick(r, shares, th-1))
		switch {
		case th-1 < 2:
			if !errors.Is(err, ErrTooFewShares) {
				t.Fatalf("Combine of 1 share: error = %v, want ErrTooFewShares", err)
			}
		case err != nil:
			t.Fatalf("Combine %d of %d (t=%d): %v", th-1, n, th, err)
		case bytes.Equal(got, secret):
			t.Fatalf("Combine of %d shares, below threshold %d, recovered the secret", th-1, th)
		}
	}
}

// pick returns k distinct shares of all, in random order.
func pick(r *mrand.Rand, all [][]byte, k int) [][]byte {
	perm := r.Perm(len(all))
	out := make([][]byte, k)
	for i := range out {
		out[i] = all[perm[i]]
	}
	return out
}

// TestBelowThresholdLooksUniform is a sanity check of secrecy: with
// threshold 2 and 3, a single share's y bytes are uniformly distributed
// whatever the secret. A chi-squared statistic over the 256 byte values
// stays near its 255 degrees of freedom for the all-0x00 and the all-0xff
// secret alike; a scheme leaking the secret into one share (y = s, or a
// fixed polynomial) would be off by orders of magnitude. The randomness is
// seeded, so the test is deterministic.
func TestBelowThresholdLooksUniform(t *testing.T) {
	t.Parallel()
	for _, th := range []int{2, 3} {
		for _, fill := range []byte{0x00, 0xff} {
			rnd := seeded(byte(10*th) + fill)
			secret := bytes.Repeat([]byte{fill}, 64)
			var hist [256]int
			const splits = 2000
			for range splits {
				shares, err := split(rnd, secret, th+1, th)
				if err != nil {
					t.Fatal(err)
				}
				for _, y := range shares[0][:len(secret)] {
					hist[y]++
				}
			}
			expected := float64(splits*len(secret)) / 256
			var chi2 float64
			for _, c := range hist {
				d := float64(c) - expected
				chi2 += d * d / expected
			}
			// Mean 255, standard deviation about 22.6: 400 is over six
			// deviations out.
			if chi2 > 400 {
				t.Errorf("threshold %d, secret of 0x%02x bytes: chi-squared %.1f over 255 degrees of freedom; one share is not uniform", th, fill, chi2)
			}
		}
	}
}

func TestCombineOrderIndependent(t *testing.T) {
	t.Parallel()
	secret := []byte("order does not matter")
	shares, err := Split(secret, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	rev := make([][]byte, len(shares))
	for i, s := range shares {
		rev[len(shares)-1-i] = s
	}
	for _, set := range [][][]byte{shares, rev} {
		got, err := Combine(set)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Combine = %q, %v", got, err)
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	secret := bytes.Repeat([]byte{0x5c}, 32)
	b.SetBytes(int64(len(secret)))
	for b.Loop() {
		if _, err := Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	secret := bytes.Repeat([]byte{0x5c}, 32)
	shares, err := Split(secret, 5, 3)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(secret)))
	for b.Loop() {
		if _, err := Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}
