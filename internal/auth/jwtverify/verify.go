package jwtverify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MaxTokenSize bounds the length of a token in bytes. Kubernetes service
// account tokens are about 1 KiB; identity provider tokens rarely reach
// 8 KiB.
const MaxTokenSize = 64 << 10

// Errors of Verify and ParseUnverified. They wrap with detail; test with
// errors.Is.
var (
	// ErrTooLarge: the token is longer than MaxTokenSize.
	ErrTooLarge = errors.New("token too large")
	// ErrMalformed: not a compact JWS with JSON header and claims.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the header's alg is not accepted.
	ErrAlgorithm = errors.New("signing algorithm not accepted")
	// ErrUnknownKey: no key of the key set may have signed the token.
	ErrUnknownKey = errors.New("no key for the token")
	// ErrSignature: no candidate key verifies the signature.
	ErrSignature = errors.New("signature verification failed")
	// ErrKeysUnavailable: the key set could not be fetched.
	ErrKeysUnavailable = errors.New("verification keys unavailable")
)

// Verifier verifies token signatures. The zero Algorithms accepts every
// algorithm in Algorithms.
type Verifier struct {
	Keys       KeySet
	Algorithms []jose.SignatureAlgorithm
}

// Token is a parsed token: its header fields and claims.
type Token struct {
	Algorithm string
	KeyID     string
	Issuer    string
	Subject   string
	Audience  []string
	// Expiry, NotBefore and IssuedAt are nil when the claim is absent.
	Expiry    *time.Time
	NotBefore *time.Time
	IssuedAt  *time.Time
	// Claims holds every claim; numbers are json.Number.
	Claims map[string]any
}

// Verify checks raw's signature and returns its claims. It does not
// validate them; see Token.Validate.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	algs := v.Algorithms
	if len(algs) == 0 {
		algs = Algorithms
	}
	hdr, err := parseHeader(raw, algs)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, trimJose(err))
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	keys, err := v.Keys.Keys(ctx, hdr.KID)
	if err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(hdr.Alg)
	tried := 0
	for _, k := range keys {
		if !compatible(alg, k.Public) || (k.Algorithm != "" && k.Algorithm != hdr.Alg) {
			continue
		}
		tried++
		payload, err := jws.Verify(k.Public)
		if err != nil {
			continue
		}
		tok, err := decodeClaims(payload)
		if err != nil {
			return nil, err
		}
		tok.Algorithm, tok.KeyID = hdr.Alg, hdr.KID
		return tok, nil
	}
	if tried == 0 {
		return nil, fmt.Errorf("%w: no %s key with id %q", ErrUnknownKey, hdr.Alg, hdr.KID)
	}
	return nil, ErrSignature
}

// ParseUnverified decodes raw without checking its signature, for the
// checks made before a TokenReview. Nothing it returns may be trusted
// until something else has verified the token.
func ParseUnverified(raw string) (*Token, error) {
	hdr, err := parseHeader(raw, nil)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: claims are not base64url", ErrMalformed)
	}
	tok, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	tok.Algorithm, tok.KeyID = hdr.Alg, hdr.KID
	return tok, nil
}

type header struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
}

// parseHeader makes the cheap structural checks and reads alg and kid. A
// nil algs accepts any alg but none.
func parseHeader(raw string, algs []jose.SignatureAlgorithm) (header, error) {
	var h header
	if len(raw) > MaxTokenSize {
		return h, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), MaxTokenSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		if len(parts) == 5 {
			return h, fmt.Errorf("%w: encrypted tokens (JWE) are not supported", ErrMalformed)
		}
		return h, fmt.Errorf("%w: want three dot-separated parts, got %d", ErrMalformed, len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return h, fmt.Errorf("%w: unsigned tokens (alg %q) are never accepted", ErrAlgorithm, h.Alg)
	}
	if algs != nil && !containsAlg(algs, jose.SignatureAlgorithm(h.Alg)) {
		return h, fmt.Errorf("%w: %q (accepted: %s)", ErrAlgorithm, h.Alg, algNames(algs))
	}
	if parts[2] == "" {
		return h, fmt.Errorf("%w: no signature", ErrMalformed)
	}
	return h, nil
}

func containsAlg(algs []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range algs {
		if x == a {
			return true
		}
	}
	return false
}

// trimJose drops go-jose's package prefix from its error texts.
func trimJose(err error) string {
	return strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
}

// decodeClaims decodes a claims set and its registered claims.
func decodeClaims(payload []byte) (*Token, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the claims object", ErrMalformed)
	}
	t := &Token{Claims: m}
	var err error
	if t.Issuer, err = stringClaim(m, "iss"); err != nil {
		return nil, err
	}
	if t.Subject, err = stringClaim(m, "sub"); err != nil {
		return nil, err
	}
	switch a := m["aud"].(type) {
	case nil:
	case string:
		t.Audience = []string{a}
	case []any:
		for _, el := range a {
			s, ok := el.(string)
			if !ok {
				return nil, fmt.Errorf("%w: aud must be a string or a list of strings", ErrMalformed)
			}
			t.Audience = append(t.Audience, s)
		}
	default:
		return nil, fmt.Errorf("%w: aud must be a string or a list of strings", ErrMalformed)
	}
	for _, c := range []struct {
		name string
		dst  **time.Time
	}{{"exp", &t.Expiry}, {"nbf", &t.NotBefore}, {"iat", &t.IssuedAt}} {
		v, ok := m[c.name]
		if !ok || v == nil {
			continue
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%w: %s must be a number", ErrMalformed, c.name)
		}
		f, err := n.Float64()
		// 1<<40 seconds is year 36812: beyond any real date, and far from
		// where time.Unix or int64 conversion could overflow.
		if err != nil || math.IsNaN(f) || math.Abs(f) > 1<<40 {
			return nil, fmt.Errorf("%w: %s is not a valid date", ErrMalformed, c.name)
		}
		sec, frac := math.Modf(f)
		tm := time.Unix(int64(sec), int64(frac*1e9))
		*c.dst = &tm
	}
	return t, nil
}

func stringClaim(m map[string]any, name string) (string, error) {
	switch v := m[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("%w: %s must be a string", ErrMalformed, name)
}
