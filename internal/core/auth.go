package core

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"

	"github.com/cofferhq/coffer/internal/policy"
	"github.com/cofferhq/coffer/internal/token"
)

// aclChecker answers authorisation questions for one caller.
type aclChecker interface {
	allowed(path string, op Operation) bool
	hasAnyUnder(prefix string) bool
	capabilities(path string) []string
}

type rootACL struct{}

func (rootACL) allowed(string, Operation) bool { return true }
func (rootACL) hasAnyUnder(string) bool        { return true }
func (rootACL) capabilities(string) []string   { return []string{"root"} }

type policyACL struct{ acl *policy.ACL }

func (p policyACL) allowed(path string, op Operation) bool {
	c, err := policy.ParseCapability(string(op))
	if err != nil {
		return false
	}
	return p.acl.Allowed(path, c)
}
func (p policyACL) hasAnyUnder(prefix string) bool    { return p.acl.HasAnyUnder(prefix) }
func (p policyACL) capabilities(path string) []string { return p.acl.Capabilities(path) }

// authenticate resolves the request's token into an identity and an ACL.
// Unknown, expired and revoked tokens all give ErrPermissionDenied.
func (c *Core) authenticate(ctx context.Context, req *Request) (*Auth, aclChecker, error) {
	if req.Token == "" {
		return nil, nil, ErrPermissionDenied
	}
	e, err := c.tokens.Lookup(ctx, req.Token)
	if err != nil {
		if !errors.Is(err, token.ErrNotFound) {
			c.logger.Error("token lookup failed", "error", err, "request_id", req.ID)
		}
		return nil, nil, ErrPermissionDenied
	}
	if !e.AllowedFrom(hostOnly(req.RemoteAddr)) {
		return nil, nil, ErrPermissionDenied
	}
	a := authFromEntry(e)
	if e.NumUses > 0 {
		exhausted, err := c.tokens.Use(ctx, e)
		if err != nil {
			return nil, nil, ErrPermissionDenied
		}
		a.exhausted = exhausted
		a.numUsesLeft = &e.NumUses
	}
	a.entry = e
	acl, err := c.aclFor(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	return a, acl, nil
}

func authFromEntry(e *token.Entry) *Auth {
	a := &Auth{
		TokenID:     e.ID,
		Accessor:    e.Accessor,
		DisplayName: e.DisplayName,
		Policies:    append([]string(nil), e.Policies...),
		Metadata:    e.Meta,
		EntityID:    e.EntityID,
		Path:        e.Path,
	}
	for _, p := range e.Policies {
		if p == "root" {
			a.Root = true
		}
	}
	return a
}

// aclFor compiles the caller's policies into an ACL.
func (c *Core) aclFor(ctx context.Context, a *Auth) (aclChecker, error) {
	if a.Root {
		return rootACL{}, nil
	}
	var pols []*policy.Policy
	for _, name := range a.Policies {
		p, err := c.policies.get(ctx, name)
		if err != nil {
			return nil, err
		}
		if p != nil {
			pols = append(pols, p)
		}
	}
	id := policy.Identity{
		EntityID:   a.EntityID,
		EntityName: a.DisplayName,
		Metadata:   a.Metadata,
	}
	// Vault's template form names the auth mount by accessor:
	// {{identity.entity.aliases.<accessor>.metadata.<key>}}.
	if mt := c.mounts.Load(); mt != nil && strings.HasPrefix(a.Path, "auth/") && len(a.Metadata) > 0 {
		if m := mt.find(a.Path); m != nil && m.entry.Table == tableAuth {
			id.Aliases = map[string]map[string]string{m.entry.Accessor: a.Metadata}
		}
	}
	acl, err := policy.NewACL(id, pols...)
	if err != nil {
		return nil, err
	}
	return policyACL{acl: acl}, nil
}

// consumeUse revokes a token whose last use this request was.
func (c *Core) consumeUse(ctx context.Context, req *Request) {
	if !req.Auth.exhausted || req.Auth.entry == nil {
		return
	}
	if err := c.tokens.Revoke(context.WithoutCancel(ctx), req.Auth.entry); err != nil {
		c.logger.Error("revoke exhausted token", "accessor", req.Auth.Accessor, "error", err)
	}
}

// filterListKeys drops the keys of a list response under which the
// caller holds no capability at all.
func filterListKeys(resp *Response, path string, acl aclChecker) {
	m, ok := resp.Data.(map[string]any)
	if !ok {
		return
	}
	keys, ok := m["keys"].([]string)
	if !ok {
		return
	}
	base := strings.TrimSuffix(path, "/") + "/"
	out := keys[:0:0]
	for _, k := range keys {
		full := base + k
		if strings.HasSuffix(k, "/") {
			if acl.hasAnyUnder(full) {
				out = append(out, k)
			}
			continue
		}
		if caps := acl.capabilities(full); len(caps) > 0 && !(len(caps) == 1 && caps[0] == "deny") {
			out = append(out, k)
			continue
		}
		// KV v2 lists metadata/ but policies usually name data/.
		if alt := strings.Replace(full, "/metadata/", "/data/", 1); alt != full {
			if caps := acl.capabilities(alt); len(caps) > 0 && !(len(caps) == 1 && caps[0] == "deny") {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	m["keys"] = out
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
