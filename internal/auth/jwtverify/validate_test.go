package jwtverify_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
)

func at(d time.Duration) *time.Time {
	t := now.Add(d)
	return &t
}

func TestValidate(t *testing.T) {
	t.Parallel()
	base := func() jwtverify.Token {
		return jwtverify.Token{
			Issuer: "https://issuer.example", Audience: []string{"coffer", "other"},
			IssuedAt: at(0), NotBefore: at(0), Expiry: at(10 * time.Minute),
		}
	}
	exp := jwtverify.Expected{
		Issuers: []string{"https://issuer.example"}, Audiences: []string{"coffer"},
		Now: now, ClockSkew: time.Minute, RequireTime: true,
	}
	cases := []struct {
		name string
		tok  func(*jwtverify.Token)
		exp  func(*jwtverify.Expected)
		want error
	}{
		{"valid", nil, nil, nil},
		{"other issuer", func(t *jwtverify.Token) { t.Issuer = "https://evil.example" }, nil, jwtverify.ErrIssuer},
		{"no issuer", func(t *jwtverify.Token) { t.Issuer = "" }, nil, jwtverify.ErrIssuer},
		{"issuer not checked", func(t *jwtverify.Token) { t.Issuer = "x" }, func(e *jwtverify.Expected) { e.Issuers = nil }, nil},
		{"wrong audience", func(t *jwtverify.Token) { t.Audience = []string{"vault"} }, nil, jwtverify.ErrAudience},
		{"no audience", func(t *jwtverify.Token) { t.Audience = nil }, nil, jwtverify.ErrAudience},
		{"any of several audiences", nil, func(e *jwtverify.Expected) { e.Audiences = []string{"x", "other"} }, nil},
		{"unexpected audience", nil, func(e *jwtverify.Expected) { e.Audiences = nil; e.RejectUnexpectedAudience = true }, jwtverify.ErrUnexpectedAud},
		{"audience unchecked", nil, func(e *jwtverify.Expected) { e.Audiences = nil }, nil},
		{"expired", func(t *jwtverify.Token) { t.Expiry = at(-2 * time.Minute) }, nil, jwtverify.ErrExpired},
		{"expired within skew", func(t *jwtverify.Token) { t.Expiry = at(-59 * time.Second) }, nil, nil},
		{"expired within exp leeway", func(t *jwtverify.Token) { t.Expiry = at(-3 * time.Minute) },
			func(e *jwtverify.Expected) { e.ExpirationLeeway = 150 * time.Second }, nil},
		{"expired beyond exp leeway", func(t *jwtverify.Token) { t.Expiry = at(-4 * time.Minute) },
			func(e *jwtverify.Expected) { e.ExpirationLeeway = 150 * time.Second }, jwtverify.ErrExpired},
		{"nbf in the future", func(t *jwtverify.Token) { t.NotBefore = at(5 * time.Minute) }, nil, jwtverify.ErrNotYetValid},
		{"nbf within skew", func(t *jwtverify.Token) { t.NotBefore = at(59 * time.Second) }, nil, nil},
		{"nbf within nbf leeway", func(t *jwtverify.Token) { t.NotBefore = at(3 * time.Minute); t.IssuedAt = nil },
			func(e *jwtverify.Expected) { e.NotBeforeLeeway = 150 * time.Second }, nil},
		{"skew beyond leeway", func(t *jwtverify.Token) { t.NotBefore = at(61 * time.Second); t.IssuedAt = at(61 * time.Second) }, nil, jwtverify.ErrNotYetValid},
		{"no skew at all", func(t *jwtverify.Token) { t.NotBefore = at(time.Second) }, func(e *jwtverify.Expected) { e.ClockSkew = -1 }, jwtverify.ErrNotYetValid},
		{"iat in the future", func(t *jwtverify.Token) { t.IssuedAt = at(2 * time.Minute); t.NotBefore = nil }, nil, jwtverify.ErrIssuedInFuture},
		{"no time claims", func(t *jwtverify.Token) { t.IssuedAt, t.NotBefore, t.Expiry = nil, nil, nil }, nil, jwtverify.ErrNoTimeClaims},
		{"no time claims allowed", func(t *jwtverify.Token) { t.IssuedAt, t.NotBefore, t.Expiry = nil, nil, nil },
			func(e *jwtverify.Expected) { e.RequireTime = false }, nil},
		{"no exp: lives for the exp leeway", func(t *jwtverify.Token) { t.Expiry = nil; t.IssuedAt = at(-100 * time.Second); t.NotBefore = nil },
			func(e *jwtverify.Expected) { e.ExpirationLeeway = 150 * time.Second }, nil},
		{"no exp: dead after the exp leeway", func(t *jwtverify.Token) { t.Expiry = nil; t.IssuedAt = at(-220 * time.Second); t.NotBefore = nil },
			func(e *jwtverify.Expected) { e.ExpirationLeeway = 150 * time.Second }, jwtverify.ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, e := base(), exp
			if c.tok != nil {
				c.tok(&tok)
			}
			if c.exp != nil {
				c.exp(&e)
			}
			if err := tok.Validate(e); !errors.Is(err, c.want) {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	// The texts Vault sends (vault-api.md 3.3).
	for err, want := range map[error]string{
		jwtverify.ErrNotYetValid: "invalid not before (nbf) claim: token not yet valid",
		jwtverify.ErrExpired:     "invalid expiration time (exp) claim: token is expired",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err, want)
		}
	}
	if got := jwtverify.ErrAudience.Error(); got[:len("invalid audience (aud) claim: ")] != "invalid audience (aud) claim: " {
		t.Errorf("audience error %q", got)
	}
}
