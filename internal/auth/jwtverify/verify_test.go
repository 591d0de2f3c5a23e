package jwtverify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/jwtverify/jwtverifytest"
)

var now = time.Unix(1_795_354_879, 0)

func claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": "https://issuer.example",
		"sub": "system:serviceaccount:eso:external-secrets",
		"aud": []string{"coffer"},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestVerifyAlgorithms(t *testing.T) {
	t.Parallel()
	rsaS := jwtverifytest.NewRSA(t, "rsa")
	psS := &jwtverifytest.Signer{Key: rsaS.Key, KID: "rsa", Alg: jose.PS256}
	rs512 := &jwtverifytest.Signer{Key: rsaS.Key, KID: "rsa", Alg: jose.RS512}
	ecS := jwtverifytest.NewEC(t, "ec")
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384 := &jwtverifytest.Signer{Key: k384, KID: "ec384", Alg: jose.ES384}
	edS := jwtverifytest.NewEd25519(t, "ed")
	keys := jwtverify.StaticKeySet{
		{ID: "rsa", Public: rsaS.Key.Public()},
		{ID: "ec", Public: ecS.Key.Public()},
		{ID: "ec384", Public: ec384.Key.Public()},
		{ID: "ed", Public: edS.Key.Public()},
	}
	v := &jwtverify.Verifier{Keys: keys}
	for _, s := range []*jwtverifytest.Signer{rsaS, psS, rs512, ecS, ec384, edS} {
		t.Run(string(s.Alg), func(t *testing.T) {
			tok, err := v.Verify(t.Context(), s.Sign(t, claims(nil)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tok.Algorithm != string(s.Alg) || tok.KeyID != s.KID || tok.Issuer != "https://issuer.example" ||
				len(tok.Audience) != 1 || tok.Audience[0] != "coffer" || !tok.Expiry.Equal(now.Add(10*time.Minute)) {
				t.Fatalf("token = %+v", tok)
			}
		})
	}
	t.Run("restricted list", func(t *testing.T) {
		v := &jwtverify.Verifier{Keys: keys, Algorithms: []jose.SignatureAlgorithm{jose.ES256}}
		_, err := v.Verify(t.Context(), rsaS.Sign(t, claims(nil)))
		if !errors.Is(err, jwtverify.ErrAlgorithm) {
			t.Fatalf("RS256 against [ES256]: %v, want ErrAlgorithm", err)
		}
	})
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	s := jwtverifytest.NewRSA(t, "k1")
	other := jwtverifytest.NewRSA(t, "k1") // same kid, different key
	ec := jwtverifytest.NewEC(t, "k1")
	pubPEM := s.PEM(t)
	v := &jwtverify.Verifier{Keys: jwtverify.StaticKeySet{{ID: "k1", Public: s.Key.Public()}}}
	good := s.Sign(t, claims(nil))
	parts := strings.Split(good, ".")
	ecHeader := strings.Split(ec.Sign(t, claims(nil)), ".")[0]

	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"alg none", jwtverifytest.Unsigned(t, claims(nil)), jwtverify.ErrAlgorithm},
		{"alg none with signature", jwtverifytest.Raw(t, map[string]any{"alg": "none"}, claims(nil),
			func([]byte) []byte { return []byte("x") }), jwtverify.ErrAlgorithm},
		{"HS256 with the public key as secret", jwtverifytest.HMAC(t, "k1", []byte(pubPEM), claims(nil)), jwtverify.ErrAlgorithm},
		{"HS256 with the DER key as secret", jwtverifytest.HMAC(t, "k1", derOf(t, s), claims(nil)), jwtverify.ErrAlgorithm},
		{"signed by another key", other.Sign(t, claims(nil)), jwtverify.ErrSignature},
		{"ES256 header on an RSA key", ecHeader + "." + parts[1] + "." + parts[2], jwtverify.ErrUnknownKey},
		{"claims swapped", parts[0] + "." + strings.Split(s.Sign(t, claims(map[string]any{"sub": "admin"})), ".")[1] + "." + parts[2], jwtverify.ErrSignature},
		{"empty", "", jwtverify.ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], jwtverify.ErrMalformed},
		{"JWE", "a.b.c.d.e", jwtverify.ErrMalformed},
		{"header not base64", "!!." + parts[1] + "." + parts[2], jwtverify.ErrMalformed},
		{"header not JSON", "bm90IGpzb24." + parts[1] + "." + parts[2], jwtverify.ErrMalformed},
		{"no signature", parts[0] + "." + parts[1] + ".", jwtverify.ErrMalformed},
		{"signature not base64", parts[0] + "." + parts[1] + ".***", jwtverify.ErrMalformed},
		{"too large", parts[0] + "." + strings.Repeat("A", jwtverify.MaxTokenSize) + "." + parts[2], jwtverify.ErrTooLarge},
		{"claims not an object", s.Sign(t, []string{"a"}), jwtverify.ErrMalformed},
		{"aud a number", s.Sign(t, claims(map[string]any{"aud": 7})), jwtverify.ErrMalformed},
		{"exp a string", s.Sign(t, claims(map[string]any{"exp": "tomorrow"})), jwtverify.ErrMalformed},
		{"exp overflowing", s.Sign(t, claims(map[string]any{"exp": 1e300})), jwtverify.ErrMalformed},
		{"iss a number", s.Sign(t, claims(map[string]any{"iss": 1})), jwtverify.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := v.Verify(t.Context(), c.raw)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, %v; want %v", tok, err, c.want)
			}
		})
	}
}

func derOf(t *testing.T, s *jwtverifytest.Signer) []byte {
	der, err := x509.MarshalPKIXPublicKey(s.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestJWKAlgorithmPinsKey(t *testing.T) {
	t.Parallel()
	s := jwtverifytest.NewRSA(t, "k")
	ps := &jwtverifytest.Signer{Key: s.Key, KID: "k", Alg: jose.PS256}
	v := &jwtverify.Verifier{Keys: jwtverify.StaticKeySet{{ID: "k", Algorithm: "RS256", Public: s.Key.Public()}}}
	if _, err := v.Verify(t.Context(), s.Sign(t, claims(nil))); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	if _, err := v.Verify(t.Context(), ps.Sign(t, claims(nil))); !errors.Is(err, jwtverify.ErrUnknownKey) {
		t.Fatalf("PS256 with a key pinned to RS256: %v, want ErrUnknownKey", err)
	}
}

func TestParseUnverified(t *testing.T) {
	t.Parallel()
	s := jwtverifytest.NewRSA(t, "k")
	tok, err := jwtverify.ParseUnverified(s.Sign(t, claims(map[string]any{"kubernetes.io": map[string]any{"namespace": "eso"}})))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "system:serviceaccount:eso:external-secrets" || tok.Claims["kubernetes.io"].(map[string]any)["namespace"] != "eso" {
		t.Fatalf("token = %+v", tok)
	}
	if _, err := jwtverify.ParseUnverified(jwtverifytest.Unsigned(t, claims(nil))); !errors.Is(err, jwtverify.ErrAlgorithm) {
		t.Fatalf("alg none: %v", err)
	}
}

func TestParseAlgorithms(t *testing.T) {
	t.Parallel()
	if got, err := jwtverify.ParseAlgorithms(nil); err != nil || len(got) != len(jwtverify.Algorithms) {
		t.Fatalf("nil = %v, %v", got, err)
	}
	if got, err := jwtverify.ParseAlgorithms([]string{"RS256", " ES256"}); err != nil || len(got) != 2 {
		t.Fatalf("RS256,ES256 = %v, %v", got, err)
	}
	_, err := jwtverify.ParseAlgorithms([]string{"none", "HS256", "XX1", "RS256"})
	if err == nil {
		t.Fatal("none, HS256, XX1 accepted")
	}
	for _, want := range []string{`"none" (unsigned`, `"HS256" (shared-secret`, `"XX1" (unknown)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestParsePEMKeys(t *testing.T) {
	t.Parallel()
	s := jwtverifytest.NewRSA(t, "")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(s.Key)
	two := s.PEM(t) + jwtverifytest.NewEC(t, "").PEM(t)
	keys, err := jwtverify.ParsePEMKeys([]string{two, jwtverifytest.NewEd25519(t, "").PEM(t)})
	if err != nil || len(keys) != 3 {
		t.Fatalf("ParsePEMKeys = %d keys, %v; want 3", len(keys), err)
	}
	_, err = jwtverify.ParsePEMKeys([]string{
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER})),
		"not pem",
		"",
	})
	if err == nil {
		t.Fatal("bad keys accepted")
	}
	for _, want := range []string{"key 1: \"PRIVATE KEY\" is a private key", "key 2: RSA key of 1024 bits is too small", "key 3: not PEM", "key 4: empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
