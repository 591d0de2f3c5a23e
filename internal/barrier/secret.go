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
// anything using encoding.TextMarshaler. The barrier holds it by pointer,
// so even printing a struct that contains one (where fmt cannot call the
// methods of unexported fields) shows an address, not bytes. zero
// overwrites the bytes in place when the barrier seals.
type secretKey struct {
	b []byte
}

func (secretKey) String() string               { return redacted }
func (secretKey) GoString() string             { return redacted }
func (secretKey) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (secretKey) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secretKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (secretKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (k *secretKey) zero()                     { clear(k.b) }
