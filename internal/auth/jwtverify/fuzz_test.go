package jwtverify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
)

// fuzzSigners are fixed keys, so that the corpus in testdata/fuzz holds
// tokens they signed. The RSA key is testdata/fuzz-rsa.pem (a test key,
// never used anywhere else).
func fuzzSigners(t testing.TB) []*jwtverifytest.Signer {
	raw, err := os.ReadFile("testdata/fuzz-rsa.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	rk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	scalar := sha256.Sum256([]byte("coffer jwtverify fuzz ec key"))
	ek, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("coffer jwtverify fuzz ed25519 key"))
	return []*jwtverifytest.Signer{
		{Key: rk.(*rsa.PrivateKey), KID: "rsa", Alg: jose.RS256},
		{Key: rk.(*rsa.PrivateKey), KID: "rsa", Alg: jose.PS256},
		{Key: ek, KID: "ec", Alg: jose.ES256},
		{Key: ed25519.NewKeyFromSeed(seed[:]), KID: "", Alg: jose.EdDSA},
	}
}

// FuzzVerify checks that Verify never panics and that any token it
// accepts carries a signature that the standard library's own primitives
// confirm under one of the configured keys, over exactly the header and
// claims that Verify reports.
func FuzzVerify(f *testing.F) {
	signers := fuzzSigners(f)
	var keys jwtverify.StaticKeySet
	for _, s := range signers {
		keys = append(keys, jwtverify.Key{ID: s.KID, Public: s.Key.Public()})
	}
	v := &jwtverify.Verifier{Keys: keys}
	for _, s := range signers {
		f.Add(s.Sign(f, claims(map[string]any{"kubernetes.io": map[string]any{"namespace": "eso"}})))
	}
	f.Add(jwtverifytest.Unsigned(f, claims(nil)))
	f.Add(jwtverifytest.HMAC(f, "rsa", []byte(signers[0].PEM(f)), claims(nil)))
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Verify(t.Context(), raw)
		if err != nil {
			return
		}
		parts := strings.Split(raw, ".")
		if !independentlyVerified(parts, signers) {
			t.Fatalf("accepted a token no configured key signed: %q", raw)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("accepted a token whose claims are not base64url: %q", raw)
		}
		dec := json.NewDecoder(strings.NewReader(string(payload)))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || !reflect.DeepEqual(m, tok.Claims) {
			t.Fatalf("claims %v differ from the signed payload %s", tok.Claims, payload)
		}
	})
}

// independentlyVerified checks the signature with crypto/* directly.
func independentlyVerified(parts []string, signers []*jwtverifytest.Signer) bool {
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var hdr struct{ Alg string }
	if json.Unmarshal(hb, &hdr) != nil {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := func(h hash.Hash) []byte { h.Write(input); return h.Sum(nil) }
	for _, s := range signers {
		switch pub := s.Key.Public().(type) {
		case *rsa.PublicKey:
			switch hdr.Alg {
			case "RS256":
				if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest(sha256.New()), sig) == nil {
					return true
				}
			case "RS512":
				if rsa.VerifyPKCS1v15(pub, crypto.SHA512, digest(sha512.New()), sig) == nil {
					return true
				}
			case "PS256":
				if rsa.VerifyPSS(pub, crypto.SHA256, digest(sha256.New()), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
					return true
				}
			}
		case *ecdsa.PublicKey:
			if hdr.Alg == "ES256" && len(sig) == 64 {
				r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				if ecdsa.Verify(pub, digest(sha256.New()), r, ss) {
					return true
				}
			}
		case ed25519.PublicKey:
			if hdr.Alg == "EdDSA" && ed25519.Verify(pub, input, sig) {
				return true
			}
		}
	}
	return false
}
