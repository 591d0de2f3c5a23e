// Package jwtverifytest makes signed tokens and serves key sets for the
// tests of jwtverify and the auth methods built on it. It is for tests
// only.
//
//	s := jwtverifytest.NewRSA(t, "key-1")
//	iss := jwtverifytest.NewIssuer(t, s)          // TLS discovery + JWKS server
//	raw := s.Sign(t, map[string]any{"iss": iss.URL, "aud": "coffer", ...})
//
// Tokens that no honest issuer makes (alg none, HMAC with a public key as
// the secret) come from Unsigned and HMAC.
package jwtverifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Signer signs tokens with one key.
type Signer struct {
	Key crypto.Signer
	KID string
	Alg jose.SignatureAlgorithm
}

// NewRSA returns an RS256 signer with a fresh 2048-bit key.
func NewRSA(t testing.TB, kid string) *Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k, KID: kid, Alg: jose.RS256}
}

// NewEC returns an ES256 signer with a fresh P-256 key.
func NewEC(t testing.TB, kid string) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k, KID: kid, Alg: jose.ES256}
}

// NewEd25519 returns an EdDSA signer with a fresh key.
func NewEd25519(t testing.TB, kid string) *Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k, KID: kid, Alg: jose.EdDSA}
}

// Sign returns a compact JWS of claims.
func (s *Signer) Sign(t testing.TB, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.KID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), s.KID)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.Alg, Key: s.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// JWK returns the public key as a JWK.
func (s *Signer) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.Key.Public(), KeyID: s.KID, Algorithm: string(s.Alg), Use: "sig"}
}

// PEM returns the public key as a "PUBLIC KEY" PEM block.
func (s *Signer) PEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Unsigned returns a token with alg "none" and an empty signature.
func Unsigned(t testing.TB, claims any) string {
	t.Helper()
	return compact(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, nil)
}

// HMAC returns an HS256 token whose secret is secret: given the PEM of a
// public key, that is the algorithm confusion attack.
func HMAC(t testing.TB, kid string, secret []byte, claims any) string {
	t.Helper()
	hdr := map[string]any{"alg": "HS256", "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	return compact(t, hdr, claims, func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	})
}

// compact encodes hdr and claims and signs the signing input with sign
// (no signature when nil).
func compact(t testing.TB, hdr, claims any, sign func([]byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

// Raw returns a token with any header and claims, signed by sign over
// the signing input (empty signature when sign is nil).
func Raw(t testing.TB, hdr, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	return compact(t, hdr, claims, sign)
}

// Issuer is a TLS server with an OIDC discovery document at
// /.well-known/openid-configuration and a JWKS at /jwks. Its issuer is
// its URL unless IssuerName is set.
type Issuer struct {
	*httptest.Server
	CAPEM string // PEM of the server's certificate, to trust it

	mu         sync.Mutex // guards keys and issuerName
	keys       []jose.JSONWebKey
	issuerName string

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
}

// NewIssuer starts an Issuer serving the public keys of signers. It is
// closed when the test ends.
func NewIssuer(t testing.TB, signers ...*Signer) *Issuer {
	t.Helper()
	iss := &Issuer{}
	iss.SetKeys(signers...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveryHits.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                iss.Name(),
			"jwks_uri":                              iss.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksHits.Add(1)
		iss.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), iss.keys...)}
		iss.mu.Unlock()
		writeJSON(w, set)
	})
	iss.Server = httptest.NewTLSServer(mux)
	t.Cleanup(iss.Close)
	iss.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate().Raw}))
	return iss
}

// SetKeys replaces the served keys with the public keys of signers.
func (i *Issuer) SetKeys(signers ...*Signer) {
	keys := make([]jose.JSONWebKey, len(signers))
	for n, s := range signers {
		keys[n] = s.JWK()
	}
	i.mu.Lock()
	i.keys = keys
	i.mu.Unlock()
}

// SetIssuerName makes the discovery document name another issuer.
func (i *Issuer) SetIssuerName(name string) {
	i.mu.Lock()
	i.issuerName = name
	i.mu.Unlock()
}

// Name is the issuer named in the discovery document.
func (i *Issuer) Name() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.issuerName != "" {
		return i.issuerName
	}
	return i.URL
}

// JWKSHits counts requests for the key set.
func (i *Issuer) JWKSHits() int { return int(i.jwksHits.Load()) }

// DiscoveryHits counts requests for the discovery document.
func (i *Issuer) DiscoveryHits() int { return int(i.discoveryHits.Load()) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
