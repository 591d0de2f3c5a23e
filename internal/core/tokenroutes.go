package core

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/token"
)

// tokenBackend serves auth/token/.
type tokenBackend struct{ c *Core }

func (b *tokenBackend) Routes() []Route {
	return []Route{
		{Pattern: "create", Handlers: ops(OpCreate, b.create(false), OpUpdate, b.create(false))},
		{Pattern: "create-orphan", Handlers: ops(OpCreate, b.create(true), OpUpdate, b.create(true))},
		{Pattern: "lookup", Handlers: ops(OpUpdate, b.lookup, OpRead, b.lookup)},
		{Pattern: "lookup-self", Handlers: ops(OpRead, b.lookupSelf, OpUpdate, b.lookupSelf)},
		{Pattern: "lookup-accessor", Handlers: ops(OpUpdate, b.lookupAccessor)},
		{Pattern: "renew", Handlers: ops(OpUpdate, b.renew)},
		{Pattern: "renew-self", Handlers: ops(OpUpdate, b.renewSelf)},
		{Pattern: "renew-accessor", Handlers: ops(OpUpdate, b.renewAccessor)},
		{Pattern: "revoke", Handlers: ops(OpUpdate, b.revoke)},
		{Pattern: "revoke-self", Handlers: ops(OpUpdate, b.revokeSelf)},
		{Pattern: "revoke-accessor", Handlers: ops(OpUpdate, b.revokeAccessor)},
		{Pattern: "revoke-orphan", Sudo: true, Handlers: ops(OpUpdate, b.revokeOrphan)},
		{Pattern: "accessors", Sudo: true, Handlers: ops(OpList, b.accessors)},
		{Pattern: "tidy", Sudo: true, Handlers: ops(OpUpdate, b.tidy)},
	}
}

type tokenCreateInput struct {
	ID              string            `json:"id"`
	Policies        []string          `json:"policies"`
	Meta            map[string]string `json:"meta"`
	NoParent        bool              `json:"no_parent"`
	NoDefaultPolicy bool              `json:"no_default_policy"`
	Renewable       *bool             `json:"renewable"`
	TTL             Duration          `json:"ttl"`
	Lease           Duration          `json:"lease"`
	ExplicitMaxTTL  Duration          `json:"explicit_max_ttl"`
	Period          Duration          `json:"period"`
	DisplayName     string            `json:"display_name"`
	NumUses         int               `json:"num_uses"`
	Type            string            `json:"type"`
	EntityAlias     string            `json:"entity_alias"`
	BoundCIDRs      []string          `json:"bound_cidrs"`
}

func (b *tokenBackend) create(orphan bool) Handler {
	return func(ctx context.Context, r *Request) (*Response, error) {
		var in tokenCreateInput
		if err := r.Decode(&in); err != nil {
			return nil, err
		}
		if in.Type != "" && in.Type != "service" && in.Type != "default" {
			return nil, BadRequest("token type %q is not supported: coffer issues service tokens", in.Type)
		}
		if in.NumUses < 0 {
			return nil, BadRequest("num_uses cannot be negative")
		}
		parent := r.Auth.entry
		isRoot := r.Auth.Root
		if in.ID != "" && !isRoot {
			return nil, BadRequest("root or sudo privileges required to specify token id")
		}
		if in.NoParent && !isRoot && !orphan {
			return nil, BadRequest("root or sudo privileges required to create orphan token")
		}
		pols := in.Policies
		if len(pols) == 0 {
			pols = append([]string(nil), r.Auth.Policies...)
		}
		pols = trimPolicies(pols)
		if !in.NoDefaultPolicy && !contains(pols, "default") && !contains(pols, "root") {
			pols = append(pols, "default")
		}
		if in.NoDefaultPolicy {
			pols = remove(pols, "default")
		}
		if err := token.CheckPolicySubset(r.Auth.Policies, pols, isRoot); err != nil {
			return nil, BadRequest("%v", err)
		}
		ttl := time.Duration(in.TTL)
		if ttl == 0 {
			ttl = time.Duration(in.Lease)
		}
		name := "token"
		if in.DisplayName != "" {
			name = "token-" + strings.TrimPrefix(in.DisplayName, "token-")
		}
		req := token.CreateRequest{
			ID: in.ID, Policies: pols, Meta: in.Meta, DisplayName: name, Path: "auth/token/" + r.RoutePath,
			EntityID: r.Auth.EntityID, TTL: ttl, ExplicitMaxTTL: time.Duration(in.ExplicitMaxTTL),
			Period: time.Duration(in.Period), NumUses: in.NumUses, Renewable: in.Renewable,
			NoParent: in.NoParent || orphan, Parent: parent, BoundCIDRs: in.BoundCIDRs,
		}
		if err := req.Validate(); err != nil {
			return nil, BadRequest("%v", err)
		}
		tok, e, err := b.c.tokens.Create(ctx, req)
		if err != nil {
			return nil, tokenErr(err)
		}
		return &Response{Auth: b.c.authResponse(tok, e)}, nil
	}
}

func tokenErr(err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	switch {
	case errors.Is(err, token.ErrNotFound):
		return BadRequest("bad token")
	case errors.Is(err, token.ErrNotRenewable):
		return BadRequest("token is not renewable")
	case errors.Is(err, token.ErrPolicySubset):
		return BadRequest("%v", err)
	}
	if strings.Contains(err.Error(), "invalid") {
		return BadRequest("%v", err)
	}
	return err
}

// authResponse is the envelope's auth block for a token.
func (c *Core) authResponse(tok string, e *token.Entry) *AuthResponse {
	var tokenPolicies []string
	for _, p := range e.Policies {
		tokenPolicies = append(tokenPolicies, p)
	}
	meta := e.Meta
	return &AuthResponse{
		ClientToken: tok, Accessor: e.Accessor, Policies: e.Policies, TokenPolicies: tokenPolicies,
		Metadata: meta, LeaseDuration: leaseSeconds(e.TTLRemaining(c.now())), Renewable: e.Renewable,
		EntityID: e.EntityID, TokenType: "service", Orphan: e.Orphan(), NumUses: e.NumUses,
	}
}

// leaseSeconds rounds a just-set TTL to whole seconds, so a token created
// or renewed with ttl=2m reports lease_duration 120, as Vault does, not
// the 119 the microseconds since its creation would truncate to.
func leaseSeconds(d time.Duration) int64 {
	return int64((d + time.Second/2) / time.Second)
}

// lookupData is the Vault lookup response for a token entry.
func (c *Core) lookupData(e *token.Entry, id string) map[string]any {
	now := c.now()
	var expire any
	if t := e.ExpireTime(); t != nil {
		expire = t.UTC().Format(time.RFC3339Nano)
	}
	meta := any(nil)
	if len(e.Meta) > 0 {
		meta = e.Meta
	}
	d := map[string]any{
		"accessor":         e.Accessor,
		"creation_time":    e.CreationTime.Unix(),
		"creation_ttl":     int64(e.CreationTTL.Seconds()),
		"display_name":     e.DisplayName,
		"entity_id":        e.EntityID,
		"expire_time":      expire,
		"explicit_max_ttl": int64(e.ExplicitMaxTTL.Seconds()),
		"id":               id,
		"issue_time":       e.CreationTime.UTC().Format(time.RFC3339Nano),
		"meta":             meta,
		"num_uses":         e.NumUses,
		"orphan":           e.Orphan(),
		"path":             e.Path,
		"policies":         e.Policies,
		"renewable":        e.Renewable,
		"ttl":              int64(e.TTLRemaining(now).Seconds()),
		"type":             "service",
	}
	if e.Period > 0 {
		d["period"] = int64(e.Period.Seconds())
	}
	if !e.LastRenewalTime.IsZero() {
		d["last_renewal_time"] = e.LastRenewalTime.Unix()
		d["last_renewal"] = e.LastRenewalTime.UTC().Format(time.RFC3339Nano)
	}
	if len(e.BoundCIDRs) > 0 {
		d["bound_cidrs"] = e.BoundCIDRs
	}
	return d
}

type tokenRef struct {
	Token     string   `json:"token"`
	Accessor  string   `json:"accessor"`
	Increment Duration `json:"increment"`
}

func (b *tokenBackend) ref(r *Request) (*tokenRef, error) {
	var in tokenRef
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Token == "" {
		in.Token = r.Query.Get("token")
	}
	if in.Accessor == "" {
		in.Accessor = r.Query.Get("accessor")
	}
	return &in, nil
}

func (b *tokenBackend) lookup(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	if in.Token == "" {
		return b.lookupSelf(ctx, r)
	}
	e, err := b.c.tokens.Lookup(ctx, in.Token)
	if err != nil {
		return nil, tokenErr(err)
	}
	return &Response{Data: b.c.lookupData(e, in.Token)}, nil
}

func (b *tokenBackend) lookupSelf(ctx context.Context, r *Request) (*Response, error) {
	// The entry authenticated this request; a token whose last use this
	// is can still look itself up.
	e := r.Auth.entry
	if e == nil {
		return nil, ErrPermissionDenied
	}
	return &Response{Data: b.c.lookupData(e, r.Token)}, nil
}

func (b *tokenBackend) lookupAccessor(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	e, err := b.c.tokens.LookupAccessor(ctx, in.Accessor)
	if err != nil {
		return nil, BadRequest("invalid accessor")
	}
	return &Response{Data: b.c.lookupData(e, "")}, nil
}

func (b *tokenBackend) doRenew(ctx context.Context, e *token.Entry, inc Duration, tok string) (*Response, error) {
	ne, err := b.c.tokens.Renew(ctx, e, time.Duration(inc))
	if err != nil {
		return nil, tokenErr(err)
	}
	return &Response{Auth: b.c.authResponse(tok, ne)}, nil
}

func (b *tokenBackend) renew(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	if in.Token == "" {
		return nil, BadRequest("missing token")
	}
	e, err := b.c.tokens.Lookup(ctx, in.Token)
	if err != nil {
		return nil, tokenErr(err)
	}
	return b.doRenew(ctx, e, in.Increment, in.Token)
}

func (b *tokenBackend) renewSelf(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	e, err := b.c.tokens.LookupID(ctx, r.Auth.TokenID)
	if err != nil {
		return nil, tokenErr(err)
	}
	return b.doRenew(ctx, e, in.Increment, r.Token)
}

func (b *tokenBackend) renewAccessor(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	e, err := b.c.tokens.LookupAccessor(ctx, in.Accessor)
	if err != nil {
		return nil, BadRequest("invalid accessor")
	}
	return b.doRenew(ctx, e, in.Increment, "")
}

func (b *tokenBackend) revoke(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	if in.Token == "" {
		return nil, BadRequest("missing token")
	}
	e, err := b.c.tokens.Lookup(ctx, in.Token)
	if err != nil {
		// Revoking an unknown token succeeds, as in Vault.
		return nil, nil
	}
	return nil, b.c.tokens.Revoke(ctx, e)
}

func (b *tokenBackend) revokeSelf(ctx context.Context, r *Request) (*Response, error) {
	e, err := b.c.tokens.LookupID(ctx, r.Auth.TokenID)
	if err != nil {
		return nil, nil
	}
	return nil, b.c.tokens.Revoke(ctx, e)
}

func (b *tokenBackend) revokeAccessor(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	e, err := b.c.tokens.LookupAccessor(ctx, in.Accessor)
	if err != nil {
		return nil, BadRequest("invalid accessor")
	}
	return nil, b.c.tokens.Revoke(ctx, e)
}

func (b *tokenBackend) revokeOrphan(ctx context.Context, r *Request) (*Response, error) {
	in, err := b.ref(r)
	if err != nil {
		return nil, err
	}
	e, err := b.c.tokens.Lookup(ctx, in.Token)
	if err != nil {
		return nil, nil
	}
	return nil, b.c.tokens.RevokeOrphan(ctx, e)
}

func (b *tokenBackend) accessors(ctx context.Context, r *Request) (*Response, error) {
	return nil, StatusError(501, "listing token accessors is not supported yet")
}

func (b *tokenBackend) tidy(ctx context.Context, r *Request) (*Response, error) {
	n, err := b.c.tokens.Tidy(ctx)
	if err != nil {
		return nil, err
	}
	return &Response{Data: map[string]any{"tidied": n}, Warnings: []string{"Tidy operation successfully completed."}}, nil
}

func trimPolicies(in []string) []string {
	var out []string
	for _, p := range in {
		for _, q := range strings.Split(p, ",") {
			if q = strings.ToLower(strings.TrimSpace(q)); q != "" && !contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func remove(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// mintLogin creates the token an auth method's login asked for.
func (c *Core) mintLogin(ctx context.Context, req *Request, resp *Response) error {
	l := resp.Login
	resp.Login = nil
	pols := trimPolicies(l.Policies)
	if !l.NoDefaultPolicy && !contains(pols, "default") {
		pols = append(pols, "default")
	}
	if contains(pols, "root") {
		return BadRequest("auth methods cannot grant the root policy")
	}
	maxTTL := l.MaxTTL
	if m := (sysView{c: c}).MaxLeaseTTL(req.MountPath); maxTTL == 0 || maxTTL > m {
		maxTTL = m
	}
	ttl := l.TTL
	if ttl == 0 {
		ttl = (sysView{c: c}).DefaultLeaseTTL(req.MountPath)
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	tr := token.CreateRequest{
		Policies: pols, Meta: l.Metadata, DisplayName: l.DisplayName, Path: req.Path,
		EntityID: l.EntityID, TTL: ttl, ExplicitMaxTTL: l.MaxTTL, Period: l.Period, NumUses: l.NumUses,
		NoParent: true, BoundCIDRs: l.BoundCIDRs,
	}
	if err := tr.Validate(); err != nil {
		return BadRequest("%v", err)
	}
	tok, e, err := c.tokens.Create(ctx, tr)
	if err != nil {
		return tokenErr(err)
	}
	resp.Auth = c.authResponse(tok, e)
	return nil
}
