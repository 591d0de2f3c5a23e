package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"sync"
)

// Token holds a plaintext token. It prints, logs and marshals as
// "[redacted]" so that a token kept in a struct cannot leak through fmt,
// slog or encoding/json; Reveal returns the value for the one place that
// must send it (the response that hands the token to its owner).
type Token string

const redacted = "[redacted]"

// Reveal returns the plaintext token.
func (t Token) Reveal() string { return string(t) }

// String returns "[redacted]".
func (t Token) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the value either.
func (t Token) GoString() string { return redacted }

// Format writes "[redacted]" for every verb (%s, %v, %q, %x, ...).
func (t Token) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }

// LogValue makes slog record "[redacted]".
func (t Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText makes encoding/json (and anything else using
// encoding.TextMarshaler) write "[redacted]".
func (t Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ServicePrefix starts every token the store generates.
const ServicePrefix = "s."

// MaxTokenLen bounds the length of a token (an explicit Create id, or
// what Lookup will consider) in bytes.
const MaxTokenLen = 1024

// maxAccessorLen bounds what LookupAccessor considers.
const maxAccessorLen = 128

// randomLen is the number of base62 characters in a generated token and
// in an accessor: 24 * log2(62) ≈ 143 bits.
const randomLen = 24

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 returns n uniformly random base62 characters, by rejection
// sampling bytes below 248 (the largest multiple of 62 under 256).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:]) // never returns an error; crashes the program if the OS cannot supply randomness
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func newServiceToken() Token { return Token(ServicePrefix + randomBase62(randomLen)) }

func newAccessor() string { return randomBase62(randomLen) }

// Domain separation for the keyed hashes, so a token's hash can never be
// an accessor's hash.
const (
	tokenDomain    = "coffer token\x00"
	accessorDomain = "coffer accessor\x00"
)

// hasher computes keyed hashes with the store's salt. Every request
// hashes its token, so HMAC states keyed with the salt are pooled:
// hmac.New costs two block computations and five allocations per call.
type hasher struct {
	macs *sync.Pool // of HMAC-SHA256 keyed with the 32-byte salt
}

func newHasher(salt []byte) hasher {
	return hasher{macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, salt) }}}
}

func (h hasher) sum(domain, v string) string {
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(domain))
	m.Write([]byte(v))
	var out [sha256.Size]byte
	sum := hex.EncodeToString(m.Sum(out[:0]))
	h.macs.Put(m)
	return sum
}

// token returns the storage hash of a plaintext token.
func (h hasher) token(t string) string { return h.sum(tokenDomain, t) }

// accessor returns the storage hash of an accessor.
func (h hasher) accessor(a string) string { return h.sum(accessorDomain, a) }

// isHash reports whether s looks like a hash this store produced: 64
// lowercase hex characters. Anything else cannot name a stored token.
func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
