package barrier

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// secretKey holds key material: the root key or a keyring term's data key.
// It redacts itself wherever it could be printed or encoded: fmt (every
// verb, through Format), slog (LogValue), encoding/json (MarshalJSON) and
// anything using encoding.TextMarshaler. The bytes sit behind a pointer to
// an array, so reflection-based printing that bypasses those methods (fmt
// on an unexported field, or a bad verb) shows an address, not bytes. zero
// overwrites the bytes in place when the barrier seals.
type secretKey struct {
	b *[keyLen]byte
}

// newSecretKey moves raw, which must be keyLen bytes, into a secretKey and
// zeroes raw.
func newSecretKey(raw []byte) *secretKey {
	k := &secretKey{b: new([keyLen]byte)}
	copy(k.b[:], raw)
	clear(raw)
	return k
}

// bytes returns the key bytes, aliased: zero clears them.
func (k *secretKey) bytes() []byte { return k.b[:] }

func (k *secretKey) zero() { clear(k.b[:]) }

func (secretKey) String() string               { return redacted }
func (secretKey) GoString() string             { return redacted }
func (secretKey) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (secretKey) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secretKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (secretKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }
