// Package shamir splits a secret into shares so that any threshold of them
// recovers it and fewer reveal nothing about it (Shamir, "How to share a
// secret", 1979).
//
// # Scheme
//
// Each byte of the secret is shared on its own. For a threshold T, Split
// picks, per byte, a random polynomial of degree T-1 over GF(2^8) whose
// constant term is the secret byte, and gives each share the polynomial's
// value at that share's x coordinate. Any T shares determine the
// polynomial by Lagrange interpolation, and so its value at 0, the
// secret. Any T-1 shares are consistent with every possible secret byte
// and exactly one polynomial for each, so they carry no information.
//
// The field is GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1. All field
// arithmetic is constant-time: bitwise multiplication, inversion by
// exponentiation, no lookup tables.
//
// # Share format
//
// A share is the len(secret) y values followed by one byte, the x
// coordinate: a 32-byte secret gives 33-byte shares. This is the format
// and the field Vault and OpenBao use. The x coordinates of one
// Split are distinct, non-zero and randomly chosen, so a share's x
// coordinate says nothing about how many shares exist or which it is.
//
// # Limits
//
// parts is 2..255 and threshold 2..parts. The one exception is parts = 1
// with threshold = 1, which a dev server uses: the single share is then
// the secret itself followed by an x byte, and Combine, which needs two
// shares, is not used to read it back (the secret is share[:len(share)-1]).
//
// Combine cannot tell a wrong share from a right one: given T shares it
// returns the value at 0 of the polynomial through them, which is the
// secret only if they all came from the same Split and T is at least the
// threshold. Callers check the result, as the barrier does by opening the
// keyring with it.
package shamir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Errors returned by Split and Combine, wrapped with detail. Test with
// errors.Is.
var (
	// ErrEmptySecret is returned by Split for a zero-length secret.
	ErrEmptySecret = errors.New("shamir: secret is empty")
	// ErrInvalidParts is returned by Split when parts is outside 1..255.
	ErrInvalidParts = errors.New("shamir: invalid number of shares")
	// ErrInvalidThreshold is returned by Split when threshold is outside
	// 2..parts (or is not 1 when parts is 1).
	ErrInvalidThreshold = errors.New("shamir: invalid threshold")
	// ErrTooFewShares is returned by Combine when given fewer than two
	// shares.
	ErrTooFewShares = errors.New("shamir: too few shares")
	// ErrMalformedShare is returned by Combine for a share shorter than two
	// bytes, shares of different lengths, or a share whose x coordinate
	// (last byte) is zero, which Split never produces.
	ErrMalformedShare = errors.New("shamir: malformed share")
	// ErrDuplicateShare is returned by Combine when two shares have the same
	// x coordinate, usually because the same share was entered twice.
	ErrDuplicateShare = errors.New("shamir: duplicate share")
)

// MaxShares is the largest number of shares Split can produce: the number
// of distinct non-zero x coordinates in GF(2^8).
const MaxShares = 255

// Split divides secret into parts shares, any threshold of which recover
// it with Combine. The secret is not modified.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	return split(rand.Reader, secret, parts, threshold)
}

// split is Split with the randomness source as a parameter, for tests.
func split(rnd io.Reader, secret []byte, parts, threshold int) ([][]byte, error) {
	if err := checkSplit(len(secret), parts, threshold); err != nil {
		return nil, err
	}
	src := &byteSource{r: rnd}
	xs, err := randomXs(src, parts)
	if err != nil {
		return nil, fmt.Errorf("shamir: split: choose x coordinates: %w", err)
	}

	// coeffs holds, for each secret byte, the threshold-1 random
	// coefficients above the constant term. They are as secret as the
	// secret itself and are zeroed before returning.
	deg := threshold - 1
	coeffs := make([]byte, len(secret)*deg)
	defer clear(coeffs)
	if _, err := io.ReadFull(rnd, coeffs); err != nil {
		return nil, fmt.Errorf("shamir: split: read random coefficients: %w", err)
	}

	out := make([][]byte, parts)
	for i, x := range xs {
		share := make([]byte, len(secret)+1)
		share[len(secret)] = x
		for b, s := range secret {
			c := coeffs[b*deg : (b+1)*deg]
			// Horner's rule: (((c[d-1])x + c[d-2])x + ... + c[0])x + s.
			var acc uint8
			for k := deg - 1; k >= 0; k-- {
				acc = mul(acc, x) ^ c[k]
			}
			share[b] = mul(acc, x) ^ s
		}
		out[i] = share
	}
	return out, nil
}

func checkSplit(secretLen, parts, threshold int) error {
	switch {
	case secretLen == 0:
		return fmt.Errorf("%w: nothing to split", ErrEmptySecret)
	case parts < 1 || parts > MaxShares:
		return fmt.Errorf("%w: %d shares requested; use 2 to %d (or 1 with threshold 1)", ErrInvalidParts, parts, MaxShares)
	case parts == 1 && threshold != 1:
		return fmt.Errorf("%w: threshold %d with a single share; a single share needs threshold 1", ErrInvalidThreshold, threshold)
	case parts > 1 && (threshold < 2 || threshold > parts):
		return fmt.Errorf("%w: threshold %d with %d shares; use a threshold from 2 to %d", ErrInvalidThreshold, threshold, parts, parts)
	}
	return nil
}

// randomXs returns n distinct x coordinates drawn uniformly from 1..255,
// in random order: the first n entries of a Fisher-Yates shuffle.
func randomXs(src *byteSource, n int) ([]byte, error) {
	var all [MaxShares]byte
	for i := range all {
		all[i] = byte(i + 1)
	}
	for i := range n {
		j, err := src.uniform(MaxShares - i)
		if err != nil {
			return nil, err
		}
		all[i], all[i+j] = all[i+j], all[i]
	}
	return append([]byte(nil), all[:n]...), nil
}

// byteSource reads random bytes in blocks and draws small uniform
// integers from them.
type byteSource struct {
	r   io.Reader
	buf [64]byte
	n   int // unread bytes at the end of buf
}

func (s *byteSource) byte() (byte, error) {
	if s.n == 0 {
		if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
			return 0, err
		}
		s.n = len(s.buf)
	}
	s.n--
	return s.buf[s.n], nil
}

// uniform returns an integer uniformly distributed in [0, m), 1 <= m <= 256,
// by rejection sampling so there is no modulo bias.
func (s *byteSource) uniform(m int) (int, error) {
	limit := 256 - 256%m
	for {
		b, err := s.byte()
		if err != nil {
			return 0, err
		}
		if int(b) < limit {
			return int(b) % m, nil
		}
	}
}

// Combine reconstructs a secret from shares produced by Split. It needs at
// least threshold shares of one Split; with fewer, or with shares of
// different Splits, it returns a value that is not the secret (and no
// error, as it cannot tell). The shares are not modified.
func Combine(parts [][]byte) ([]byte, error) {
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: got %d, need at least 2 (and at least the threshold the shares were made with)", ErrTooFewShares, len(parts))
	}
	n := len(parts[0])
	if n < 2 {
		return nil, fmt.Errorf("%w: share 1 is %d bytes; a share is at least 2 bytes (the secret and an x coordinate)", ErrMalformedShare, n)
	}
	var seenAt [256]int // x -> 1-based index of the share that had it
	xs := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) != n {
			return nil, fmt.Errorf("%w: share %d is %d bytes but share 1 is %d; all shares of one secret have the same length", ErrMalformedShare, i+1, len(p), n)
		}
		x := p[n-1]
		if x == 0 {
			return nil, fmt.Errorf("%w: share %d has x coordinate 0; it is corrupt or not a share", ErrMalformedShare, i+1)
		}
		if j := seenAt[x]; j != 0 {
			return nil, fmt.Errorf("%w: shares %d and %d have the same x coordinate; enter each share once", ErrDuplicateShare, j, i+1)
		}
		seenAt[x] = i + 1
		xs[i] = x
	}

	// Lagrange basis polynomials evaluated at 0: basis[i] is the product
	// over j != i of x_j / (x_j - x_i). In GF(2^8) subtraction is XOR, and
	// the x are distinct, so no denominator is zero.
	basis := make([]byte, len(xs))
	for i, xi := range xs {
		l := uint8(1)
		for j, xj := range xs {
			if j != i {
				l = mul(l, div(xj, xi^xj))
			}
		}
		basis[i] = l
	}

	secret := make([]byte, n-1)
	for b := range secret {
		var acc uint8
		for i, p := range parts {
			acc ^= mul(p[b], basis[i])
		}
		secret[b] = acc
	}
	return secret, nil
}
