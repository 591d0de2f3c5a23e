package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/storage"
)

// CreateRequest describes a token to create.
type CreateRequest struct {
	// ID is an explicit token (e.g. -dev-root-token-id): any non-empty
	// string up to MaxTokenLen bytes. Empty means generate "s.<24 base62>".
	ID string
	// Policies are stored sorted and without duplicates. Create neither
	// inherits the parent's nor adds "default"; see CheckPolicySubset.
	Policies    []string
	Meta        map[string]string
	DisplayName string
	// Path is the creating path, e.g. "auth/token/create".
	Path     string
	EntityID string
	// TTL is the requested TTL; 0 means Options.DefaultTTL, or never
	// expiring for a root token without Period or ExplicitMaxTTL.
	TTL time.Duration
	// ExplicitMaxTTL, when set, is a hard limit on the token's life that
	// no renewal extends.
	ExplicitMaxTTL time.Duration
	// Period makes a periodic token: every renewal grants Period (capped
	// at Options.MaxTTL), indefinitely unless ExplicitMaxTTL is set.
	Period time.Duration
	// NumUses limits the token to that many uses; 0 is unlimited.
	NumUses int
	// Renewable defaults to true.
	Renewable *bool
	// NoParent makes an orphan even when Parent is set.
	NoParent bool
	// Parent is the creating token; its revocation revokes the new one.
	// Nil makes an orphan (logins through auth methods).
	Parent *Entry
	// BoundCIDRs restrict where the token may be used from: CIDRs
	// ("10.0.0.0/8") or single addresses.
	BoundCIDRs []string
}

// Validate reports every problem with the request at once.
func (r *CreateRequest) Validate() error {
	var problems []string
	if len(r.ID) > MaxTokenLen {
		problems = append(problems, fmt.Sprintf("id is %d bytes, longer than %d", len(r.ID), MaxTokenLen))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ttl", r.TTL}, {"explicit_max_ttl", r.ExplicitMaxTTL}, {"period", r.Period}} {
		if d.v < 0 {
			problems = append(problems, fmt.Sprintf("%s %v is negative", d.name, d.v))
		}
	}
	if r.NumUses < 0 {
		problems = append(problems, fmt.Sprintf("num_uses %d is negative; use 0 for unlimited", r.NumUses))
	}
	for _, c := range r.BoundCIDRs {
		if _, err := parseCIDR(strings.TrimSpace(c)); err != nil {
			problems = append(problems, fmt.Sprintf("bound CIDR %q is neither a CIDR nor an IP address", c))
		}
	}
	if r.Parent != nil && !r.NoParent && !isHash(r.Parent.ID) {
		problems = append(problems, "parent entry has no valid id; pass an entry from Lookup")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, strings.Join(problems, "; "))
	}
	return nil
}

// grant computes the TTL to grant at now for a token created at start,
// following Vault: a periodic token gets period (capped at the effective
// max TTL) and is bounded only by start+explicitMax; any other token gets
// increment, else base, else the default TTL, bounded by
// start+min(MaxTTL, explicitMax). ok is false when that bound has passed.
func (s *Store) grant(now, start time.Time, increment, base, period, explicitMax time.Duration) (ttl time.Duration, ok bool) {
	maxTTL := s.maxTTL
	if explicitMax > 0 && explicitMax < maxTTL {
		maxTTL = explicitMax
	}
	var limit time.Time
	if period > 0 {
		ttl = min(period, maxTTL)
		if explicitMax > 0 {
			limit = start.Add(explicitMax)
		}
	} else {
		switch {
		case increment > 0:
			ttl = increment
		case base > 0:
			ttl = base
		default:
			ttl = s.defaultTTL
		}
		limit = start.Add(maxTTL)
	}
	if !limit.IsZero() {
		left := limit.Sub(now)
		if left <= 0 {
			return 0, false
		}
		ttl = min(ttl, left)
	}
	return ttl, true
}

// Create stores a new token and returns it with its entry. The plaintext
// token is returned only here.
//
// A child (Parent set, NoParent false) can only be created while its
// parent and all its ancestors are live; the parent's revocation will
// revoke it. Policy checks are the caller's: see CheckPolicySubset. A
// TTL, period or explicit max beyond Options.MaxTTL is capped silently,
// as Vault does (with a warning there).
func (s *Store) Create(ctx context.Context, req CreateRequest) (string, *Entry, error) {
	if err := req.Validate(); err != nil {
		return "", nil, err
	}
	now := s.clock()
	e := &Entry{
		Policies:       normalisePolicies(req.Policies),
		DisplayName:    req.DisplayName,
		Path:           req.Path,
		EntityID:       req.EntityID,
		Type:           TypeService,
		CreationTime:   now,
		ExplicitMaxTTL: req.ExplicitMaxTTL,
		Period:         min(req.Period, s.maxTTL),
		NumUses:        req.NumUses,
		Renewable:      req.Renewable == nil || *req.Renewable,
	}
	if len(req.Meta) > 0 {
		e.Meta = maps.Clone(req.Meta)
	}
	for _, c := range req.BoundCIDRs {
		e.BoundCIDRs = append(e.BoundCIDRs, strings.TrimSpace(c))
	}
	if e.IsRoot() && req.TTL == 0 && e.Period == 0 && e.ExplicitMaxTTL == 0 {
		e.Renewable = false // never expires: nothing to renew
	} else {
		ttl, _ := s.grant(now, now, 0, req.TTL, e.Period, e.ExplicitMaxTTL) // the limit is in the future at creation
		e.CreationTTL = ttl
		e.ExpireAt = now.Add(ttl)
	}
	var parent string
	if req.Parent != nil && !req.NoParent {
		parent = req.Parent.ID
		e.Parent = parent
	}

	var tok Token
	err := retry(ctx, "create", func() error {
		tok = Token(req.ID)
		if tok == "" {
			tok = newServiceToken()
		}
		e.ID = s.hash.token(tok.Reveal())
		e.Accessor = newAccessor()
		ops, err := s.createOps(ctx, e, now)
		if err != nil {
			return err
		}
		err = s.b.Txn(ctx, ops)
		if ce, ok := errors.AsType[*storage.ConflictError](err); ok && ce.Key == idKey(e.ID) && req.ID != "" {
			return ErrExists
		}
		// Other conflicts, a random collision (never in practice) or a
		// parent that changed under us (a use, a renewal, a revocation),
		// are retried.
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("token: create: %w", err)
	}
	return tok.Reveal(), e, nil
}

// createOps builds the Txn that stores e: the entry, its accessor and
// expiry rows, and for a child the parent link plus a pin on every
// ancestor, so the Txn fails if any of them changed since it was checked.
func (s *Store) createOps(ctx context.Context, e *Entry, now time.Time) ([]storage.Op, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("token: encode entry: %w", err)
	}
	ah := s.hash.accessor(e.Accessor)
	ops := []storage.Op{
		storage.CheckAbsent(idKey(e.ID)),
		storage.CheckAbsent(accessorKey(ah)),
		storage.Put(idKey(e.ID), b),
		storage.Put(accessorKey(ah), []byte(e.ID)),
	}
	if k := expiryKey(e.ExpireAt, e.ID); k != "" {
		ops = append(ops, storage.Put(k, nil))
	}
	if e.Parent == "" {
		return ops, nil
	}
	raw, pe, err := s.get(ctx, e.Parent)
	if err != nil {
		return nil, err
	}
	if !pe.live(now) {
		return nil, ErrNotFound
	}
	pins, err := s.ancestors(ctx, pe, now)
	if err != nil {
		return nil, err
	}
	ops = append(ops, storage.CheckEqual(idKey(e.Parent), raw), storage.Put(parentKey(e.Parent, e.ID), nil))
	return append(ops, pins...), nil
}

// Renew extends a token's life: the new TTL is increment, or the token's
// creation TTL when increment is 0, capped so the token does not outlive
// creation + min(ExplicitMaxTTL, Options.MaxTTL); a periodic token gets
// its period whatever the increment, capped only by ExplicitMaxTTL. A
// renewal can shorten the TTL, as in Vault. It returns the updated entry
// (e is not changed). A token that was created with renewable=false or
// never expires gives ErrNotRenewable; one that is not live, ErrNotFound.
func (s *Store) Renew(ctx context.Context, e *Entry, increment time.Duration) (*Entry, error) {
	if e == nil || !isHash(e.ID) {
		return nil, ErrNotFound
	}
	if increment < 0 {
		return nil, fmt.Errorf("%w: increment %v is negative", ErrInvalidRequest, increment)
	}
	now := s.clock()
	return s.update(ctx, e.ID, func(cur *Entry) ([]storage.Op, error) {
		if !cur.live(now) {
			return nil, ErrNotFound
		}
		if _, err := s.ancestors(ctx, cur, now); err != nil {
			return nil, err
		}
		if !cur.Renewable || cur.ExpireAt.IsZero() {
			return nil, ErrNotRenewable
		}
		ttl, ok := s.grant(now, cur.CreationTime, increment, cur.CreationTTL, cur.Period, cur.ExplicitMaxTTL)
		if !ok {
			return nil, ErrNotFound
		}
		oldKey := expiryKey(cur.ExpireAt, cur.ID)
		cur.ExpireAt = now.Add(ttl)
		cur.LastRenewalTime = now
		newKey := expiryKey(cur.ExpireAt, cur.ID)
		if oldKey == newKey {
			return nil, nil
		}
		return []storage.Op{storage.Delete(oldKey), storage.Put(newKey, nil)}, nil
	})
}
