package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/cofferhq/coffer/internal/engine/field"
)

// keyType is a transit key type, named on the wire as Vault names it.
type keyType uint8

const (
	typeAES256GCM96 keyType = iota + 1
	typeAES128GCM96
	typeChaCha20Poly1305
	typeED25519
	typeECDSAP256
	typeECDSAP384
	typeECDSAP521
	typeRSA2048
	typeRSA3072
	typeRSA4096
)

// defaultKeyType is the type of a key created without one.
const defaultKeyType = typeAES256GCM96

var keyTypeNames = map[keyType]string{
	typeAES256GCM96:      "aes256-gcm96",
	typeAES128GCM96:      "aes128-gcm96",
	typeChaCha20Poly1305: "chacha20-poly1305",
	typeED25519:          "ed25519",
	typeECDSAP256:        "ecdsa-p256",
	typeECDSAP384:        "ecdsa-p384",
	typeECDSAP521:        "ecdsa-p521",
	typeRSA2048:          "rsa-2048",
	typeRSA3072:          "rsa-3072",
	typeRSA4096:          "rsa-4096",
}

func (t keyType) String() string {
	if s, ok := keyTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("keyType(%d)", uint8(t))
}

// parseKeyType turns a wire name into a keyType.
func parseKeyType(s string) (keyType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for t, name := range keyTypeNames {
		if name == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown key type %s (known: aes256-gcm96, aes128-gcm96, chacha20-poly1305, ed25519, ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096)", field.Quote(s))
}

// symmetric keys are AEAD keys; the rest are private keys.
func (t keyType) symmetric() bool {
	return t == typeAES256GCM96 || t == typeAES128GCM96 || t == typeChaCha20Poly1305
}

func (t keyType) rsa() bool { return t == typeRSA2048 || t == typeRSA3072 || t == typeRSA4096 }

func (t keyType) ecdsa() bool { return t == typeECDSAP256 || t == typeECDSAP384 || t == typeECDSAP521 }

// The capabilities a key type reports (supports_* in a key read).
func (t keyType) canEncrypt() bool { return t.symmetric() || t.rsa() }
func (t keyType) canSign() bool    { return t == typeED25519 || t.ecdsa() || t.rsa() }
func (t keyType) canDerive() bool  { return t.symmetric() || t == typeED25519 }

// canConverge: convergent encryption needs a nonce-based AEAD.
func (t keyType) canConverge() bool { return t.symmetric() }

// symmetricKeyLen is the AEAD key length of a symmetric type.
func (t keyType) symmetricKeyLen() int {
	if t == typeAES128GCM96 {
		return 16
	}
	return 32
}

func (t keyType) curve() elliptic.Curve {
	switch t {
	case typeECDSAP256:
		return elliptic.P256()
	case typeECDSAP384:
		return elliptic.P384()
	case typeECDSAP521:
		return elliptic.P521()
	}
	return nil
}

func (t keyType) rsaBits() int {
	switch t {
	case typeRSA2048:
		return 2048
	case typeRSA3072:
		return 3072
	case typeRSA4096:
		return 4096
	}
	return 0
}

// publicName is the "name" a key read shows for an asymmetric version.
func (t keyType) publicName() string {
	switch {
	case t.ecdsa():
		return t.curve().Params().Name
	case t == typeED25519:
		return "ed25519"
	}
	return t.String()
}

// generate makes new key material for t: the raw AEAD key for symmetric
// types, a PKCS#8 private key otherwise.
func (t keyType) generate() ([]byte, error) {
	switch {
	case t.symmetric():
		b := make([]byte, t.symmetricKeyLen())
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return b, nil
	case t == typeED25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	case t.ecdsa():
		priv, err := ecdsa.GenerateKey(t.curve(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	case t.rsa():
		priv, err := rsa.GenerateKey(rand.Reader, t.rsaBits())
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	}
	return nil, fmt.Errorf("cannot generate a key of type %v", t)
}

// parsePrivate parses PKCS#8 material of an asymmetric type and checks
// that it is a key of that type.
func (t keyType) parsePrivate(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	switch priv := k.(type) {
	case ed25519.PrivateKey:
		if t == typeED25519 {
			return priv, nil
		}
	case *ecdsa.PrivateKey:
		if t.ecdsa() && priv.Curve == t.curve() {
			return priv, nil
		}
	case *rsa.PrivateKey:
		if t.rsa() && priv.N.BitLen() == t.rsaBits() {
			return priv, nil
		}
	}
	return nil, fmt.Errorf("stored private key is a %T, not a %v key", k, t)
}
