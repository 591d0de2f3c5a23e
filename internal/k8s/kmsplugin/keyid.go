package kmsplugin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on what crosses the socket. The apiserver sends 32-byte seeds and
// refuses ciphertexts and key ids of 1 KiB or more.
const (
	maxPlaintext  = 512
	maxCiphertext = 1024
	maxKeyID      = 1024
)

// ciphertextPrefix starts every transit ciphertext: "vault:v<n>:<base64>".
const ciphertextPrefix = "vault:v"

// Errors for inputs the plugin refuses before asking coffer.
var (
	// ErrBadCiphertext means a Decrypt ciphertext is not a transit
	// ciphertext of a sane size ("vault:v<n>:<base64>").
	ErrBadCiphertext = errors.New("kms-plugin: not a coffer transit ciphertext")
	// ErrUnknownKeyID means a Decrypt key id was not written by this plugin's
	// transit key, or names another version than its ciphertext.
	ErrUnknownKeyID = errors.New("kms-plugin: unknown key id")
)

// keyName is the transit key the plugin serves: the mount path and the
// key's name. Its key ids are "<mount>/<name>:v<version>".
type keyName struct {
	mount string // without slashes at either end, e.g. "transit"
	name  string
}

func (k keyName) String() string { return k.mount + "/" + k.name }

// path is the key's transit path for op: <mount>/<op>/<name>.
func (k keyName) path(op string) string { return k.mount + "/" + op + "/" + k.name }

// keyID is the KMS key id of version v: it changes when the transit key
// rotates, which makes the apiserver fetch a new seed and treat data
// under older ids as stale.
func (k keyName) keyID(v int) string { return k.String() + ":v" + strconv.Itoa(v) }

// parseKeyID returns the version in id, which must be one of k's key ids.
func (k keyName) parseKeyID(id string) (int, error) {
	if len(id) > maxKeyID {
		return 0, fmt.Errorf("%w: %d bytes", ErrUnknownKeyID, len(id))
	}
	rest, ok := strings.CutPrefix(id, k.String()+":v")
	if !ok {
		return 0, fmt.Errorf("%w %q: this plugin serves transit key %s", ErrUnknownKeyID, id, k)
	}
	v, ok := parseVersion(rest)
	if !ok {
		return 0, fmt.Errorf("%w %q: bad version", ErrUnknownKeyID, id)
	}
	return v, nil
}

// parseVersion parses a key version: decimal, no sign, no leading zero,
// at least 1 and small enough for an int32.
func parseVersion(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(v), true
}

// parseCiphertext checks that ct is "vault:v<n>:<standard base64>" within
// the size limit and returns n. It does not decode the body further: only
// coffer can tell whether it opens.
func parseCiphertext(ct []byte) (int, error) {
	if len(ct) == 0 || len(ct) > maxCiphertext {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadCiphertext, len(ct))
	}
	s := string(ct)
	rest, ok := strings.CutPrefix(s, ciphertextPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: no %q prefix", ErrBadCiphertext, ciphertextPrefix)
	}
	num, body, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, fmt.Errorf("%w: no version separator", ErrBadCiphertext)
	}
	v, ok := parseVersion(num)
	if !ok {
		return 0, fmt.Errorf("%w: bad version", ErrBadCiphertext)
	}
	if body == "" || len(body)%4 != 0 {
		return 0, fmt.Errorf("%w: truncated body", ErrBadCiphertext)
	}
	// The decoder skips CR and LF; nothing outside the alphabet belongs in
	// a ciphertext.
	if strings.IndexFunc(body, notBase64) >= 0 {
		return 0, fmt.Errorf("%w: body is not base64", ErrBadCiphertext)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(body); err != nil {
		return 0, fmt.Errorf("%w: body is not base64", ErrBadCiphertext)
	}
	return v, nil
}

func notBase64(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=')
}
