package jwtverify

import (
	"errors"
	"slices"
	"time"
)

// Claim validation errors, with the texts Vault's auth methods send.
var (
	ErrIssuer         = errors.New("invalid issuer (iss) claim")
	ErrAudience       = errors.New("invalid audience (aud) claim: audience claim does not match any expected audience")
	ErrUnexpectedAud  = errors.New("audience claim found in JWT but no audiences bound to the role")
	ErrExpired        = errors.New("invalid expiration time (exp) claim: token is expired")
	ErrNotYetValid    = errors.New("invalid not before (nbf) claim: token not yet valid")
	ErrIssuedInFuture = errors.New("invalid issued at (iat) claim: token issued in the future")
	ErrNoTimeClaims   = errors.New("no issued at (iat), not before (nbf), or expiration time (exp) claims in token")
)

// Expected is what Validate checks a token against.
type Expected struct {
	// Issuers: iss must be one of them. Empty skips the check.
	Issuers []string
	// Audiences: aud must contain one of them. Empty skips the check,
	// unless RejectUnexpectedAudience is set.
	Audiences []string
	// RejectUnexpectedAudience refuses a token that has an aud when
	// Audiences is empty (Vault's jwt method does).
	RejectUnexpectedAudience bool
	// Now is the time to check against.
	Now time.Time
	// ClockSkew widens the exp, nbf and iat checks. Zero or negative
	// means none.
	ClockSkew time.Duration
	// ExpirationLeeway is added to ClockSkew for exp, and is the lifetime
	// of a token without exp under RequireTime.
	ExpirationLeeway time.Duration
	// NotBeforeLeeway is added to ClockSkew for nbf.
	NotBeforeLeeway time.Duration
	// RequireTime refuses a token with none of exp, nbf and iat, and
	// gives a token without exp a lifetime of ExpirationLeeway.
	RequireTime bool
}

// Validate checks the token's registered claims. The first failing check
// is reported: issuer, audience, then times.
func (t *Token) Validate(e Expected) error {
	if len(e.Issuers) > 0 && !slices.Contains(e.Issuers, t.Issuer) {
		return ErrIssuer
	}
	switch {
	case len(e.Audiences) > 0:
		ok := false
		for _, a := range e.Audiences {
			if slices.Contains(t.Audience, a) {
				ok = true
				break
			}
		}
		if !ok {
			return ErrAudience
		}
	case e.RejectUnexpectedAudience && len(t.Audience) > 0:
		return ErrUnexpectedAud
	}
	return t.validateTimes(e)
}

func (t *Token) validateTimes(e Expected) error {
	skew := max(e.ClockSkew, 0)
	expLeeway := max(e.ExpirationLeeway, 0)
	nbfLeeway := max(e.NotBeforeLeeway, 0)
	exp := t.Expiry
	if t.Expiry == nil && t.NotBefore == nil && t.IssuedAt == nil {
		if e.RequireTime {
			return ErrNoTimeClaims
		}
		return nil
	}
	if exp == nil && e.RequireTime {
		start := t.IssuedAt
		if start == nil || (t.NotBefore != nil && t.NotBefore.After(*start)) {
			start = t.NotBefore
		}
		x := start.Add(expLeeway)
		exp, expLeeway = &x, 0
	}
	if t.NotBefore != nil && e.Now.Add(skew+nbfLeeway).Before(*t.NotBefore) {
		return ErrNotYetValid
	}
	if exp != nil && e.Now.Add(-(skew + expLeeway)).After(*exp) {
		return ErrExpired
	}
	if t.IssuedAt != nil && e.Now.Add(skew).Before(*t.IssuedAt) {
		return ErrIssuedInFuture
	}
	return nil
}
