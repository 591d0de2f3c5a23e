package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/policy"
	"github.com/cofferhq/coffer/internal/storage"
)

// policyStore keeps ACL policies in the barrier, parsed policies cached.
type policyStore struct {
	store storage.Backend

	// mu guards cache.
	mu    sync.RWMutex
	cache map[string]*policy.Policy
}

type storedPolicy struct {
	Name     string    `json:"name"`
	Text     string    `json:"policy"`
	Version  int       `json:"version"`
	Modified time.Time `json:"modified"`
}

func newPolicyStore(s storage.Backend) *policyStore {
	return &policyStore{store: s, cache: map[string]*policy.Policy{}}
}

func (ps *policyStore) ensureDefault(ctx context.Context) error {
	if _, err := ps.read(ctx, "default"); err == nil {
		return nil
	}
	_, err := ps.write(ctx, "default", policy.DefaultPolicy, time.Now())
	return err
}

func validPolicyName(name string) error {
	if name == "" {
		return BadRequest("policy name must not be empty")
	}
	if len(name) > 128 || strings.ContainsAny(name, "/\x00 ") || name == "." || name == ".." {
		return BadRequest("invalid policy name %q: use letters, digits, '-', '_' and '.' (at most 128)", name)
	}
	return nil
}

func (ps *policyStore) read(ctx context.Context, name string) (*storedPolicy, error) {
	raw, err := ps.store.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	var sp storedPolicy
	if err := json.Unmarshal(raw, &sp); err != nil {
		return nil, fmt.Errorf("decode policy %q: %w", name, err)
	}
	return &sp, nil
}

// get returns the parsed policy, or nil when no such policy exists
// (a token may name a policy that was deleted).
func (ps *policyStore) get(ctx context.Context, name string) (*policy.Policy, error) {
	ps.mu.RLock()
	p, ok := ps.cache[name]
	ps.mu.RUnlock()
	if ok {
		return p, nil
	}
	sp, err := ps.read(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err = policy.Parse(name, sp.Text)
	if err != nil {
		return nil, fmt.Errorf("stored policy %q does not parse: %w", name, err)
	}
	ps.mu.Lock()
	ps.cache[name] = p
	ps.mu.Unlock()
	return p, nil
}

func (ps *policyStore) write(ctx context.Context, name, text string, now time.Time) (*storedPolicy, error) {
	p, err := policy.Parse(name, text)
	if err != nil {
		return nil, BadRequest("failed to parse policy: %v", err)
	}
	sp := &storedPolicy{Name: name, Text: text, Version: 1, Modified: now.UTC()}
	if old, err := ps.read(ctx, name); err == nil {
		sp.Version = old.Version + 1
	}
	raw, _ := json.Marshal(sp)
	if err := ps.store.Put(ctx, name, raw); err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.cache[name] = p
	ps.mu.Unlock()
	return sp, nil
}

func (ps *policyStore) delete(ctx context.Context, name string) error {
	if err := ps.store.Delete(ctx, name); err != nil {
		return err
	}
	ps.mu.Lock()
	delete(ps.cache, name)
	ps.mu.Unlock()
	return nil
}

func (ps *policyStore) list(ctx context.Context) ([]string, error) {
	keys, err := ps.store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []string{"root"}
	for _, k := range keys {
		if !strings.HasSuffix(k, "/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// --- sys/policies/acl and sys/policy handlers ---

type policyInput struct {
	Policy string `json:"policy"`
	Rules  string `json:"rules"` // legacy sys/policy body
}

func (s *sysBackend) writePolicy(ctx context.Context, r *Request) (*Response, error) {
	name := strings.ToLower(r.Params["name"])
	if err := validPolicyName(name); err != nil {
		return nil, err
	}
	if name == "root" {
		return nil, BadRequest("cannot update \"root\" policy")
	}
	var in policyInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	text := in.Policy
	if text == "" {
		text = in.Rules
	}
	if strings.TrimSpace(text) == "" {
		return nil, BadRequest("'policy' parameter not supplied or empty")
	}
	if _, err := s.c.policies.write(ctx, name, text, s.c.now()); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *sysBackend) readPolicyData(ctx context.Context, r *Request) (*storedPolicy, error) {
	name := strings.ToLower(r.Params["name"])
	if name == "root" {
		return &storedPolicy{Name: "root"}, nil
	}
	sp, err := s.c.policies.read(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	return sp, err
}

func (s *sysBackend) readPolicy(ctx context.Context, r *Request) (*Response, error) {
	sp, err := s.readPolicyData(ctx, r)
	if err != nil {
		return nil, err
	}
	return &Response{Data: map[string]any{
		"name": sp.Name, "policy": sp.Text, "version": sp.Version,
		"modified": sp.Modified.Format(time.RFC3339Nano), "cas_required": false,
		"allow_slashes_in_identity_templates": false, "allow_wildcards_in_identity_templates": false,
	}}, nil
}

func (s *sysBackend) readPolicyLegacy(ctx context.Context, r *Request) (*Response, error) {
	sp, err := s.readPolicyData(ctx, r)
	if err != nil {
		return nil, err
	}
	d := map[string]any{"name": sp.Name, "rules": sp.Text}
	return &Response{Data: d, TopLevel: d}, nil
}

func (s *sysBackend) deletePolicy(ctx context.Context, r *Request) (*Response, error) {
	name := strings.ToLower(r.Params["name"])
	switch name {
	case "root":
		return nil, BadRequest("cannot delete \"root\" policy")
	case "default":
		return nil, BadRequest("cannot delete \"default\" policy")
	}
	return nil, s.c.policies.delete(ctx, name)
}

func (s *sysBackend) listPolicies(ctx context.Context, r *Request) (*Response, error) {
	keys, err := s.c.policies.list(ctx)
	if err != nil {
		return nil, err
	}
	return &Response{Data: map[string]any{"keys": keys, "policies": keys}}, nil
}

func (s *sysBackend) listPoliciesLegacy(ctx context.Context, r *Request) (*Response, error) {
	keys, err := s.c.policies.list(ctx)
	if err != nil {
		return nil, err
	}
	d := map[string]any{"keys": keys, "policies": keys}
	return &Response{Data: d, TopLevel: d}, nil
}

type capabilitiesInput struct {
	Token    string   `json:"token"`
	Accessor string   `json:"accessor"`
	Path     string   `json:"path"`
	Paths    []string `json:"paths"`
}

func (c *capabilitiesInput) paths() ([]string, error) {
	ps := c.Paths
	if c.Path != "" {
		ps = append(ps, c.Path)
	}
	if len(ps) == 0 {
		return nil, BadRequest("missing paths")
	}
	return ps, nil
}

func capsResponse(acl aclChecker, paths []string) *Response {
	d := map[string]any{}
	var last []string
	for _, p := range paths {
		p = strings.TrimPrefix(p, "/")
		last = acl.capabilities(p)
		d[p] = last
	}
	if len(paths) == 1 {
		d["capabilities"] = last
	}
	return &Response{Data: d, TopLevel: d}
}

func (s *sysBackend) capabilitiesSelf(ctx context.Context, r *Request) (*Response, error) {
	var in capabilitiesInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	paths, err := in.paths()
	if err != nil {
		return nil, err
	}
	acl, err := s.c.aclFor(ctx, r.Auth)
	if err != nil {
		return nil, err
	}
	return capsResponse(acl, paths), nil
}

func (s *sysBackend) capabilities(ctx context.Context, r *Request) (*Response, error) {
	var in capabilitiesInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	paths, err := in.paths()
	if err != nil {
		return nil, err
	}
	e, err := s.c.tokens.Lookup(ctx, in.Token)
	if err != nil {
		return nil, BadRequest("invalid token")
	}
	acl, err := s.c.aclFor(ctx, authFromEntry(e))
	if err != nil {
		return nil, err
	}
	return capsResponse(acl, paths), nil
}

func (s *sysBackend) capabilitiesAccessor(ctx context.Context, r *Request) (*Response, error) {
	var in capabilitiesInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	paths, err := in.paths()
	if err != nil {
		return nil, err
	}
	e, err := s.c.tokens.LookupAccessor(ctx, in.Accessor)
	if err != nil {
		return nil, BadRequest("invalid accessor")
	}
	acl, err := s.c.aclFor(ctx, authFromEntry(e))
	if err != nil {
		return nil, err
	}
	return capsResponse(acl, paths), nil
}
