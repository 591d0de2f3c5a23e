package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/storage"
)

// Bound claim matching.
const (
	BoundClaimsString = "string"
	BoundClaimsGlob   = "glob"
)

// Vault's leeway defaults, applied when a role's value is 0.
const (
	DefaultClockSkewLeeway  = 60 * time.Second
	DefaultExpirationLeeway = 150 * time.Second
	DefaultNotBeforeLeeway  = 150 * time.Second
)

const (
	rolePrefix  = "role/"
	maxRoleName = 128
)

// role maps verified claims to token parameters
// (auth/<mount>/role/<name>).
type role struct {
	RoleType         string            `json:"role_type"`
	BoundAudiences   []string          `json:"bound_audiences,omitempty"`
	BoundSubject     string            `json:"bound_subject,omitempty"`
	BoundClaims      map[string]any    `json:"bound_claims,omitempty"`
	BoundClaimsType  string            `json:"bound_claims_type"`
	ClaimMappings    map[string]string `json:"claim_mappings,omitempty"`
	UserClaim        string            `json:"user_claim"`
	UserClaimPointer bool              `json:"user_claim_json_pointer,omitempty"`
	GroupsClaim      string            `json:"groups_claim,omitempty"`
	ClockSkewLeeway  time.Duration     `json:"clock_skew_leeway"`
	ExpirationLeeway time.Duration     `json:"expiration_leeway"`
	NotBeforeLeeway  time.Duration     `json:"not_before_leeway"`
	param.Token
}

// newRole is the role a create starts from: Vault's defaults.
func newRole() *role {
	return &role{
		RoleType:         "jwt",
		BoundClaimsType:  BoundClaimsString,
		ClockSkewLeeway:  DefaultClockSkewLeeway,
		ExpirationLeeway: DefaultExpirationLeeway,
		NotBeforeLeeway:  DefaultNotBeforeLeeway,
	}
}

// decodeRole applies a role write onto r and validates the result,
// reporting every problem at once.
func decodeRole(r *role, raw []byte) error {
	b, err := param.Parse(raw)
	if err != nil {
		return err
	}
	b.String("role_type", &r.RoleType)
	b.Strings("bound_audiences", &r.BoundAudiences)
	b.String("bound_subject", &r.BoundSubject)
	b.Object("bound_claims", &r.BoundClaims)
	b.String("bound_claims_type", &r.BoundClaimsType)
	b.StringMap("claim_mappings", &r.ClaimMappings)
	b.String("user_claim", &r.UserClaim)
	b.Bool("user_claim_json_pointer", &r.UserClaimPointer)
	b.String("groups_claim", &r.GroupsClaim)
	b.Leeway("clock_skew_leeway", &r.ClockSkewLeeway)
	b.Leeway("expiration_leeway", &r.ExpirationLeeway)
	b.Leeway("not_before_leeway", &r.NotBeforeLeeway)
	r.Token.Decode(b)
	// OIDC browser-flow settings: meaningless for jwt roles, accepted
	// empty so that Vault tooling that sends them still works.
	for _, name := range []string{"allowed_redirect_uris", "oidc_scopes"} {
		var v []string
		b.Strings(name, &v)
		if len(v) > 0 {
			b.Fail(name, "only used by the OIDC browser login, which coffer does not support")
		}
	}
	var verbose bool
	b.Bool("verbose_oidc_logging", &verbose)
	var maxAge time.Duration
	b.Duration("max_age", &maxAge)
	b.Ignore("name")
	// 0 means Vault's default, as in Vault.
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&r.ClockSkewLeeway, DefaultClockSkewLeeway}, {&r.ExpirationLeeway, DefaultExpirationLeeway}, {&r.NotBeforeLeeway, DefaultNotBeforeLeeway}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if r.RoleType == "" {
		r.RoleType = "jwt"
	}
	if r.BoundClaimsType == "" {
		r.BoundClaimsType = BoundClaimsString
	}
	for _, e := range r.validate() {
		b.Failf("%s", e)
	}
	return b.Err()
}

// validate reports every problem with r.
func (r *role) validate() []string {
	var errs []string
	switch r.RoleType {
	case "jwt":
	case "oidc":
		errs = append(errs, `role_type "oidc": the OIDC browser login is not supported by coffer; use "jwt"`)
	default:
		errs = append(errs, fmt.Sprintf("invalid 'role_type': %q (want \"jwt\")", r.RoleType))
	}
	if r.UserClaim == "" {
		errs = append(errs, "a user claim must be defined on the role")
	}
	if r.UserClaimPointer && r.UserClaim != "" && !strings.HasPrefix(r.UserClaim, "/") {
		errs = append(errs, `user_claim: with user_claim_json_pointer it must be a JSON pointer starting with "/"`)
	}
	if len(r.BoundAudiences) == 0 && len(r.BoundCIDRs) == 0 && r.BoundSubject == "" && len(r.BoundClaims) == 0 {
		errs = append(errs, "must have at least one bound constraint when creating/updating a role")
	}
	switch r.BoundClaimsType {
	case BoundClaimsString, BoundClaimsGlob:
	default:
		errs = append(errs, fmt.Sprintf("invalid 'bound_claims_type': %q (want \"string\" or \"glob\")", r.BoundClaimsType))
	}
	for _, k := range slices.Sorted(maps.Keys(r.BoundClaims)) {
		vals, ok := normalizeList(r.BoundClaims[k])
		if !ok {
			errs = append(errs, fmt.Sprintf("bound_claims[%q]: want a string, number, boolean or a list of them", k))
			continue
		}
		if r.BoundClaimsType == BoundClaimsGlob {
			for _, v := range vals {
				if _, ok := v.(string); !ok {
					errs = append(errs, fmt.Sprintf("bound_claims[%q]: glob values must be strings", k))
					break
				}
			}
		}
	}
	targets := map[string]string{}
	for _, src := range slices.Sorted(maps.Keys(r.ClaimMappings)) {
		dst := r.ClaimMappings[src]
		switch {
		case dst == "":
			errs = append(errs, fmt.Sprintf("claim_mappings[%q]: empty metadata key", src))
		case dst == "role":
			errs = append(errs, `metadata key "role" is reserved and may not be a mapping destination`)
		case targets[dst] != "":
			errs = append(errs, fmt.Sprintf("multiple keys are mapped to metadata key %q", dst))
		}
		targets[dst] = src
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"clock_skew_leeway", r.ClockSkewLeeway}, {"expiration_leeway", r.ExpirationLeeway}, {"not_before_leeway", r.NotBeforeLeeway}} {
		if f.v > time.Hour {
			errs = append(errs, f.name+": at most 1h")
		}
	}
	return append(errs, r.Token.Validate()...)
}

// data is the role-read response.
func (r *role) data() map[string]any {
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	leeway := func(d time.Duration) int64 {
		if d < 0 {
			return -1
		}
		return int64(d / time.Second)
	}
	d := map[string]any{
		"role_type":               r.RoleType,
		"bound_audiences":         orEmpty(r.BoundAudiences),
		"bound_subject":           r.BoundSubject,
		"bound_claims":            r.BoundClaims,
		"bound_claims_type":       r.BoundClaimsType,
		"claim_mappings":          r.ClaimMappings,
		"user_claim":              r.UserClaim,
		"user_claim_json_pointer": r.UserClaimPointer,
		"groups_claim":            r.GroupsClaim,
		"clock_skew_leeway":       leeway(r.ClockSkewLeeway),
		"expiration_leeway":       leeway(r.ExpirationLeeway),
		"not_before_leeway":       leeway(r.NotBeforeLeeway),
		"allowed_redirect_uris":   []string{},
		"oidc_scopes":             []string{},
		"verbose_oidc_logging":    false,
		"max_age":                 0,
	}
	r.Token.Data(d)
	return d
}

func checkRoleName(name string) error {
	if name == "" || len(name) > maxRoleName {
		return core.BadRequest("role name must be 1 to %d bytes", maxRoleName)
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == '/' {
			return core.BadRequest("role name %q contains an invalid character", name)
		}
	}
	return nil
}

func loadRole(ctx context.Context, s storage.Backend, name string) (*role, error) {
	raw, err := s.Get(ctx, rolePrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jwt: load role %q: %w", name, err)
	}
	r := &role{}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber() // bound claim values keep their JSON text
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("jwt: decode role %q: %w", name, err)
	}
	return r, nil
}

func saveRole(ctx context.Context, s storage.Backend, name string, r *role) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, rolePrefix+name, raw); err != nil {
		return fmt.Errorf("jwt: save role %q: %w", name, err)
	}
	return nil
}

func (b *Backend) roleExists(ctx context.Context, r *core.Request) (bool, error) {
	ro, err := loadRole(ctx, b.store, r.Params["name"])
	return ro != nil, err
}

func (b *Backend) roleRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	ro, err := loadRole(ctx, b.store, r.Params["name"])
	if err != nil {
		return nil, err
	}
	if ro == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: ro.data()}, nil
}

func (b *Backend) roleWrite(ctx context.Context, r *core.Request) (*core.Response, error) {
	name := r.Params["name"]
	if err := checkRoleName(name); err != nil {
		return nil, err
	}
	ro, err := loadRole(ctx, b.store, name)
	if err != nil {
		return nil, err
	}
	if ro == nil {
		ro = newRole()
	}
	if err := decodeRole(ro, r.Body); err != nil {
		return nil, err
	}
	return nil, saveRole(ctx, b.store, name, ro)
}

func (b *Backend) roleDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	if err := b.store.Delete(ctx, rolePrefix+r.Params["name"]); err != nil {
		return nil, fmt.Errorf("jwt: delete role: %w", err)
	}
	return nil, nil
}

func (b *Backend) roleList(ctx context.Context, _ *core.Request) (*core.Response, error) {
	keys, err := b.store.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("jwt: list roles: %w", err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/") })
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}
