package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/core"
)

// denied is a 403 carrying Vault's wording for a token that fails
// validation.
func denied(format string, args ...any) error {
	return core.StatusError(403, "error validating token: "+format, args...)
}

func (b *Backend) login(ctx context.Context, req *core.Request) (*core.Response, error) {
	body, err := param.Parse(req.Body)
	if err != nil {
		return nil, err
	}
	var roleName, raw string
	body.String("role", &roleName)
	body.String("jwt", &raw)
	if raw == "" {
		return nil, core.BadRequest("missing token")
	}
	if len(raw) > jwtverify.MaxTokenSize {
		return nil, core.BadRequest("invalid jwt: %d bytes, the limit is %d", len(raw), jwtverify.MaxTokenSize)
	}
	rt, err := b.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if rt == nil {
		return nil, core.BadRequest("the jwt auth method at %s is not configured: write %sconfig first", req.MountPath, req.MountPath)
	}
	if roleName == "" {
		roleName = rt.cfg.DefaultRole
	}
	if roleName == "" {
		return nil, core.BadRequest("missing role")
	}
	ro, err := loadRole(ctx, b.store, roleName)
	if err != nil {
		return nil, err
	}
	if ro == nil {
		return nil, core.BadRequest("role %q could not be found", roleName)
	}
	if ro.RoleType != "jwt" {
		return nil, core.BadRequest("role with oidc role_type is not allowed")
	}
	if !ro.RemoteAllowed(req.RemoteAddr) {
		return nil, core.ErrPermissionDenied
	}

	tok, err := rt.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, b.tokenError(err)
	}
	exp := jwtverify.Expected{
		Audiences:                ro.BoundAudiences,
		RejectUnexpectedAudience: true,
		Now:                      b.now(),
		ClockSkew:                ro.ClockSkewLeeway,
		ExpirationLeeway:         ro.ExpirationLeeway,
		NotBeforeLeeway:          ro.NotBeforeLeeway,
		RequireTime:              true,
	}
	if rt.cfg.BoundIssuer != "" {
		exp.Issuers = []string{rt.cfg.BoundIssuer}
	}
	if err := tok.Validate(exp); err != nil {
		return nil, denied("%v", err)
	}
	if ro.BoundSubject != "" && tok.Subject != ro.BoundSubject {
		return nil, denied("sub claim does not match bound subject")
	}
	if err := checkBoundClaims(tok, ro); err != nil {
		return nil, core.StatusError(403, "error validating claims: %v", err)
	}

	var user any
	var ok bool
	if ro.UserClaimPointer {
		user, ok = tok.Claim(ro.UserClaim)
	} else {
		user, ok = tok.Claims[ro.UserClaim]
	}
	userName, isStr := scalarString(user)
	if !ok || !isStr || userName == "" {
		return nil, core.StatusError(403, "claim %q not found in token", ro.UserClaim)
	}
	if ro.GroupsClaim != "" {
		g, ok := tok.Claim(ro.GroupsClaim)
		if !ok {
			return nil, core.StatusError(403, "%q claim not found in token", ro.GroupsClaim)
		}
		if _, ok := normalizeList(g); !ok {
			return nil, core.StatusError(403, "%q claim is not a string or a list", ro.GroupsClaim)
		}
	}
	meta := map[string]string{"role": roleName}
	for _, src := range slices.Sorted(maps.Keys(ro.ClaimMappings)) {
		v, ok := tok.Claim(src)
		if !ok {
			continue
		}
		s, ok := scalarString(v)
		if !ok {
			return nil, core.StatusError(403, "error converting claim '%s' to string", src)
		}
		meta[ro.ClaimMappings[src]] = s
	}
	l := ro.Token.Login()
	l.Metadata = meta
	l.DisplayName = b.display + "-" + userName
	l.EntityID = nameUUID(b.accessor, userName)
	return &core.Response{Login: l}, nil
}

// tokenError maps a verification failure: a broken token is a 400; the
// rest is a 403 naming the kind of failure, with detail in the log.
func (b *Backend) tokenError(err error) error {
	switch {
	case errors.Is(err, jwtverify.ErrMalformed), errors.Is(err, jwtverify.ErrTooLarge):
		return core.BadRequest("invalid jwt: %v", err)
	case errors.Is(err, jwtverify.ErrAlgorithm):
		return denied("%v", err)
	case errors.Is(err, jwtverify.ErrKeysUnavailable):
		b.log.Warn("login refused: the issuer's keys are unavailable", "error", err)
		return denied("%v", jwtverify.ErrKeysUnavailable)
	case errors.Is(err, jwtverify.ErrUnknownKey):
		b.log.Info("login refused", "error", err)
		return denied("%v", jwtverify.ErrUnknownKey)
	}
	b.log.Info("login refused", "error", err)
	return denied("%v", jwtverify.ErrSignature)
}

// checkBoundClaims applies bound_claims: every listed claim must be
// present and one of its values must match one of the bound values.
func checkBoundClaims(tok *jwtverify.Token, ro *role) error {
	for _, name := range slices.Sorted(maps.Keys(ro.BoundClaims)) {
		got, ok := tok.Claim(name)
		if !ok {
			return fmt.Errorf("claim %q is missing", name)
		}
		gotVals, ok := normalizeList(got)
		if !ok {
			return fmt.Errorf("claim %q is not a string, number, boolean or a list of them", name)
		}
		wantVals, _ := normalizeList(ro.BoundClaims[name])
		if !matchAny(wantVals, gotVals, ro.BoundClaimsType == BoundClaimsGlob) {
			return fmt.Errorf("claim %q does not match any associated bound claim values", name)
		}
	}
	return nil
}

func matchAny(want, got []any, globs bool) bool {
	for _, w := range want {
		ws, wok := scalarString(w)
		for _, g := range got {
			gs, gok := scalarString(g)
			if !wok || !gok {
				continue
			}
			if globs {
				// Only strings glob; numbers and booleans never match a glob.
				if _, isStr := g.(string); isStr && jwtverify.Glob(ws, gs) {
					return true
				}
				continue
			}
			if ws == gs && sameKind(w, g) {
				return true
			}
		}
	}
	return false
}

// sameKind keeps "true" (a string) from matching true (a boolean).
func sameKind(a, b any) bool {
	switch a.(type) {
	case string:
		_, ok := b.(string)
		return ok
	case bool:
		_, ok := b.(bool)
		return ok
	case json.Number:
		_, ok := b.(json.Number)
		return ok
	}
	return false
}

// normalizeList turns a scalar into a one-element list and checks that a
// list holds only scalars.
func normalizeList(v any) ([]any, bool) {
	switch x := v.(type) {
	case string, bool, json.Number:
		return []any{x}, true
	case []any:
		for _, el := range x {
			if _, ok := scalarString(el); !ok {
				return nil, false
			}
		}
		return x, true
	}
	return nil, false
}

// scalarString is the text of a string, number or boolean claim.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// nameUUID derives a stable UUID-shaped entity id from the mount
// accessor and the user claim's value.
func nameUUID(accessor, name string) string {
	h := sha256.Sum256([]byte("coffer/jwt\x00" + accessor + "\x00" + name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
