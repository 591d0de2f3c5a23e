package jwtverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms lists every signature algorithm a Verifier can accept: the
// asymmetric ones. "none" and HS256/HS384/HS512 are deliberately absent.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// ParseAlgorithms checks a configured list of algorithm names. Empty means
// every supported algorithm. "none" and the HMAC algorithms are refused
// with a message that says why.
func ParseAlgorithms(names []string) ([]jose.SignatureAlgorithm, error) {
	if len(names) == 0 {
		return Algorithms, nil
	}
	var out []jose.SignatureAlgorithm
	var bad []string
	for _, n := range names {
		a := jose.SignatureAlgorithm(strings.TrimSpace(n))
		switch {
		case isSupported(a):
			out = append(out, a)
		case strings.EqualFold(string(a), "none"):
			bad = append(bad, `"none" (unsigned tokens are never accepted)`)
		case strings.HasPrefix(strings.ToUpper(string(a)), "HS"):
			bad = append(bad, fmt.Sprintf("%q (shared-secret algorithms are not accepted)", n))
		default:
			bad = append(bad, fmt.Sprintf("%q (unknown)", n))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unsupported signing algorithm %s; supported: %s", strings.Join(bad, ", "), algNames(Algorithms))
	}
	return out, nil
}

func isSupported(a jose.SignatureAlgorithm) bool {
	for _, s := range Algorithms {
		if s == a {
			return true
		}
	}
	return false
}

func algNames(as []jose.SignatureAlgorithm) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// compatible reports whether a key of pub's type may verify alg.
func compatible(alg jose.SignatureAlgorithm, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		case jose.ES512:
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}
