package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// Secret holds a detected credential. It redacts itself for fmt, slog and
// JSON; Reveal returns the value for the one place (--show-secrets) that
// may print it.
type Secret struct{ v string }

// NewSecret copies b into a Secret.
func NewSecret(b []byte) Secret { return Secret{v: string(b)} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.v) }

// Hash returns the hex SHA-256 of the secret.
func (s Secret) Hash() string {
	h := sha256.Sum256([]byte(s.v))
	return hex.EncodeToString(h[:])
}

// Redacted returns a display form that keeps a short prefix of long
// secrets (enough to tell a GitHub token from an AWS key) and hides the
// rest.
func (s Secret) Redacted() string {
	n := utf8.RuneCountInString(s.v)
	if n < 16 {
		return "*****"
	}
	keep := 4
	if n >= 32 {
		keep = 6
	}
	var out []rune
	for i, r := range s.v {
		_ = i
		if len(out) == keep {
			break
		}
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out) + "*****"
}

// String implements fmt.Stringer with a redacted form.
func (s Secret) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer with a redacted form.
func (s Secret) GoString() string { return "detect.Secret{[REDACTED]}" }

// Format redacts the secret for every verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, "[REDACTED]") }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// MarshalText encodes the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }
