package transit

import (
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/cofferhq/coffer/internal/core"
)

// versionPrefix starts every ciphertext, signature and HMAC; Vault's and
// OpenBao's prefix, kept so stored values stay portable.
const versionPrefix = "vault:v"

// convergentVersion is reported by key reads of convergent keys: the
// nonce is an HMAC of the plaintext under a key separate from the
// encryption key, as in Vault's version 3.
const convergentVersion = 3

// maxVersionDigits bounds the version number in a ciphertext.
const maxVersionDigits = 9

// Error texts clients see, in Vault's words where Vault has them.
const (
	msgMissingContext = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
	msgTooOld         = "ciphertext or signature version is disallowed by policy (too old)"
	msgAuthFailed     = "cipher: message authentication failed"
)

// formatVersioned renders "vault:v<n>:<base64 body>".
func formatVersioned(n int, body []byte, enc *base64.Encoding) string {
	var b strings.Builder
	b.Grow(len(versionPrefix) + maxVersionDigits + 1 + enc.EncodedLen(len(body)))
	b.WriteString(versionPrefix)
	b.WriteString(strconv.Itoa(n))
	b.WriteByte(':')
	b.WriteString(enc.EncodeToString(body))
	return b.String()
}

// parseVersioned splits "vault:v<n>:<base64>" into n and the decoded
// body. noun ("ciphertext", "signature", "hmac") names the value in
// errors. Parsing is canonical: a version with a sign or leading zeros,
// and base64 with line breaks, non-zero padding bits or missing padding,
// are all refused, so each accepted string is the only spelling of its
// bytes.
func parseVersioned(s, noun string, enc *base64.Encoding) (int, []byte, error) {
	rest, ok := strings.CutPrefix(s, versionPrefix)
	if !ok {
		return 0, nil, core.BadRequest("invalid %s: no prefix", noun)
	}
	digits, body, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, nil, core.BadRequest("invalid %s: wrong number of fields", noun)
	}
	n, ok := parseVersionNumber(digits)
	if !ok {
		return 0, nil, core.BadRequest("invalid %s: version number could not be decoded", noun)
	}
	if strings.ContainsAny(body, "\r\n") {
		return 0, nil, core.BadRequest("invalid %s: could not decode base64", noun)
	}
	raw, err := enc.Strict().DecodeString(body)
	if err != nil {
		return 0, nil, core.BadRequest("invalid %s: could not decode base64", noun)
	}
	return n, raw, nil
}

func parseVersionNumber(s string) (int, bool) {
	if s == "" || len(s) > maxVersionDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// readVersion returns version n of k for decrypting or verifying.
func (k *key) readVersion(n int, noun string) (*version, error) {
	if n > k.latest() {
		return nil, core.BadRequest("invalid %s: version is too new", noun)
	}
	if n < k.minDecrypt {
		return nil, core.BadRequest(msgTooOld)
	}
	return k.versions[n-1], nil
}

// writeVersion returns the version to encrypt or sign with: requested, or
// the latest when requested is 0.
func (k *key) writeVersion(requested int) (*version, error) {
	switch {
	case requested == 0:
		return k.versions[k.latest()-1], nil
	case requested < 0:
		return nil, core.BadRequest("invalid key version %d: versions start at 1", requested)
	case requested > k.latest():
		return nil, core.BadRequest("requested version for encryption is higher than the latest key version")
	case requested < k.minEncrypt:
		return nil, core.BadRequest("requested version for encryption is less than the minimum encryption key version")
	case requested < k.minDecrypt:
		return nil, core.BadRequest("requested version for encryption is less than the minimum decryption version, so the result could not be decrypted")
	}
	return k.versions[requested-1], nil
}

// checkContext enforces a derived key's need for a context.
func (k *key) checkContext(context []byte) error {
	if k.derived && len(context) == 0 {
		return core.BadRequest(msgMissingContext)
	}
	return nil
}

// aeadFor returns the AEAD of version v for context, and for a
// convergent key the key that derives nonces. A key that is not derived
// uses the version's own AEAD. A derived key uses, as Vault does, the
// first bytes of HKDF-SHA256(secret=version key, salt=nil, info=context)
// as its AEAD key and, when convergent, the next 32 bytes as the nonce
// key (Vault's convergent version 3).
func (k *key) aeadFor(v *version, context []byte) (cipher.AEAD, []byte, error) {
	if !k.derived {
		return v.aead, nil, nil
	}
	if err := k.checkContext(context); err != nil {
		return nil, nil, err
	}
	n := k.typ.symmetricKeyLen()
	total := n
	if k.convergent {
		total += convergentNonceKeyLen
	}
	dk, err := hkdf.Key(sha256.New, v.key.bytes(), nil, string(context), total)
	if err != nil {
		return nil, nil, err
	}
	defer clear(dk[:n])
	aead, err := newAEAD(k.typ, dk[:n])
	if err != nil {
		return nil, nil, err
	}
	if !k.convergent {
		return aead, nil, nil
	}
	return aead, dk[n:], nil
}

const convergentNonceKeyLen = 32

// convergentNonce derives the nonce of a convergent encryption: equal
// plaintexts (and associated data) under one context give equal
// ciphertexts, and nothing else repeats a nonce. Without associated data
// it is Vault's HMAC-SHA256(nonce key, plaintext); associated data is
// appended with its length, so two encryptions that differ only in it
// never share a nonce (which would give away GCM's authentication key).
func convergentNonce(nonceKey, ad, pt []byte, size int) []byte {
	m := hmac.New(sha256.New, nonceKey)
	m.Write(pt)
	if len(ad) > 0 {
		m.Write(ad)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(ad)))
		m.Write(n[:])
	}
	return m.Sum(nil)[:size]
}

// encrypt seals pt under version v: nonce || AEAD output for symmetric
// keys, RSA-OAEP with SHA-256 for RSA keys.
func (k *key) encrypt(v *version, pt, context, ad []byte) ([]byte, error) {
	switch {
	case k.typ.symmetric():
		aead, nonceKey, err := k.aeadFor(v, context)
		if err != nil {
			return nil, err
		}
		out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
		if k.convergent {
			copy(out, convergentNonce(nonceKey, ad, pt, aead.NonceSize()))
			clear(nonceKey)
		} else if _, err := rand.Read(out); err != nil {
			return nil, err
		}
		return aead.Seal(out, out[:aead.NonceSize()], pt, ad), nil
	case k.typ.rsa():
		if len(ad) > 0 {
			return nil, core.BadRequest("associated_data is not supported by keys of type %v", k.typ)
		}
		priv := v.signer.(*rsa.PrivateKey)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, pt, nil)
		if err != nil {
			return nil, core.BadRequest("plaintext is %d bytes, too long for a %v key with OAEP (at most %d): use a datakey for larger data",
				len(pt), k.typ, priv.Size()-2*sha256.Size-2)
		}
		return ct, nil
	}
	return nil, core.BadRequest("key type %v does not support encryption", k.typ)
}

// decrypt opens what encrypt sealed.
func (k *key) decrypt(v *version, ct, context, ad []byte) ([]byte, error) {
	switch {
	case k.typ.symmetric():
		aead, nonceKey, err := k.aeadFor(v, context)
		if err != nil {
			return nil, err
		}
		clear(nonceKey)
		ns := aead.NonceSize()
		if len(ct) < ns+aead.Overhead() {
			return nil, core.BadRequest("invalid ciphertext: too short")
		}
		pt, err := aead.Open(nil, ct[:ns], ct[ns:], ad)
		if err != nil {
			return nil, core.BadRequest(msgAuthFailed)
		}
		return pt, nil
	case k.typ.rsa():
		if len(ad) > 0 {
			return nil, core.BadRequest("associated_data is not supported by keys of type %v", k.typ)
		}
		pt, err := rsa.DecryptOAEP(sha256.New(), nil, v.signer.(*rsa.PrivateKey), ct, nil)
		if err != nil {
			return nil, core.BadRequest("invalid ciphertext: unable to decrypt")
		}
		return pt, nil
	}
	return nil, core.BadRequest("key type %v does not support decryption", k.typ)
}

// deriveED25519 returns the ed25519 key of version v for context: the
// key whose seed is HKDF-SHA256(secret=private key, info=context), the
// 64-byte private key being the secret as in Vault.
func deriveED25519(v *version, context []byte) (ed25519.PrivateKey, error) {
	if len(context) == 0 {
		return nil, core.BadRequest(msgMissingContext)
	}
	seed, err := hkdf.Key(sha256.New, v.signer.(ed25519.PrivateKey), nil, string(context), ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}
