package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA modulus accepted for a verification key.
const MinRSABits = 2048

// Key is one verification key.
type Key struct {
	// ID is the JWK "kid"; empty for PEM keys, which match any token.
	ID string
	// Algorithm is the JWK "alg", when the key set names one; the token's
	// alg must then be exactly it.
	Algorithm string
	// Public is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// KeySet gives the verification keys for a token.
type KeySet interface {
	// Keys returns the candidate keys for kid: those with that id and
	// those without any id, or every key when kid is empty. It returns
	// an error wrapping ErrUnknownKey when there is none.
	Keys(ctx context.Context, kid string) ([]Key, error)
}

// StaticKeySet is a fixed list of keys, such as PEM keys from config.
type StaticKeySet []Key

var _ KeySet = StaticKeySet(nil)

// Keys implements KeySet.
func (s StaticKeySet) Keys(_ context.Context, kid string) ([]Key, error) {
	out := matchKID(s, kid)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no configured key has id %q", ErrUnknownKey, kid)
	}
	return out, nil
}

// matchKID returns the keys of ks that may have signed a token with kid.
func matchKID(ks []Key, kid string) []Key {
	var out []Key
	for _, k := range ks {
		if kid == "" || k.ID == "" || k.ID == kid {
			out = append(out, k)
		}
	}
	return out
}

// ParsePEMKeys parses public keys in PEM form: "PUBLIC KEY" (PKIX), "RSA
// PUBLIC KEY" (PKCS #1) or "CERTIFICATE" blocks, several per string
// allowed. Every problem is reported at once; a private key is refused
// with a message saying so.
func ParsePEMKeys(pems []string) (StaticKeySet, error) {
	var keys StaticKeySet
	var errs []error
	for i, s := range pems {
		rest := []byte(strings.TrimSpace(s))
		n := 0
		for len(rest) > 0 {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				errs = append(errs, fmt.Errorf("key %d: not PEM: want a \"-----BEGIN PUBLIC KEY-----\" block", i+1))
				break
			}
			n++
			k, err := parsePEMBlock(block)
			if err != nil {
				errs = append(errs, fmt.Errorf("key %d: %w", i+1, err))
				continue
			}
			keys = append(keys, Key{Public: k})
			rest = []byte(strings.TrimSpace(string(rest)))
		}
		if n == 0 && len(rest) == 0 {
			errs = append(errs, fmt.Errorf("key %d: empty", i+1))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func parsePEMBlock(b *pem.Block) (crypto.PublicKey, error) {
	var pub any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		if strings.Contains(b.Type, "PRIVATE") {
			return nil, fmt.Errorf("%q is a private key; give the public key only", b.Type)
		}
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Type, err)
	}
	return checkPublic(pub)
}

// checkPublic accepts the supported public key types and sizes.
func checkPublic(pub any) (crypto.PublicKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small: want at least %d", k.N.BitLen(), MinRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not supported: want P-256, P-384 or P-521", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("key type %T is not supported: want RSA, ECDSA or Ed25519", pub)
}

// keyFromJWK turns one JWK into a Key, refusing symmetric and
// encryption-only keys.
func keyFromJWK(j *jose.JSONWebKey) (Key, error) {
	if j.Use != "" && j.Use != "sig" {
		return Key{}, fmt.Errorf("key %q is for %q, not signatures", j.KeyID, j.Use)
	}
	k := j.Key
	if !j.IsPublic() {
		pk := j.Public()
		if pk.Key == nil {
			return Key{}, fmt.Errorf("key %q is symmetric; only public keys verify tokens", j.KeyID)
		}
		k = pk.Key
	}
	pub, err := checkPublic(k)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: %w", j.KeyID, err)
	}
	if j.Algorithm != "" {
		if _, err := ParseAlgorithms([]string{j.Algorithm}); err != nil {
			return Key{}, fmt.Errorf("key %q: %w", j.KeyID, err)
		}
		if !compatible(jose.SignatureAlgorithm(j.Algorithm), pub) {
			return Key{}, fmt.Errorf("key %q: alg %q does not fit its key type", j.KeyID, j.Algorithm)
		}
	}
	return Key{ID: j.KeyID, Algorithm: j.Algorithm, Public: pub}, nil
}
