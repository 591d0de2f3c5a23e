package token

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// TypeService is the only token type the store issues.
const TypeService = "service"

// RootPolicy is the policy that makes a token a root token.
const RootPolicy = "root"

// DefaultPolicy is attached to most tokens by their creator and is always
// allowed for a child (CheckPolicySubset).
const DefaultPolicy = "default"

// Revocation states of an Entry.
const (
	revokeTree   = "tree"   // the token and all its descendants are being revoked
	revokeOrphan = "orphan" // the token is being revoked; its children become orphans
)

// Entry is a stored token. The JSON form is the storage encoding. An Entry
// never holds the plaintext token: ID is its keyed hash.
//
// For the Vault lookup response: id is the token the caller presented
// (lookup-self) or "" (lookup-accessor); creation_time is
// CreationTime.Unix(); issue_time is CreationTime; creation_ttl,
// explicit_max_ttl and period are the durations in whole seconds; ttl is
// TTLRemaining in whole seconds; expire_time is ExpireTime (null for
// tokens that never expire); last_renewal_time is LastRenewalTime.Unix()
// when set; orphan is Orphan(); type is Type.
type Entry struct {
	// ID is hex(HMAC-SHA256(salt, token)): the token's storage key.
	ID string `json:"id"`
	// Accessor is the token's random accessor.
	Accessor string `json:"accessor"`
	// Parent is the parent token's ID, "" for an orphan.
	Parent string `json:"parent,omitempty"`
	// Policies are sorted and free of duplicates.
	Policies    []string          `json:"policies"`
	Meta        map[string]string `json:"meta,omitempty"`
	DisplayName string            `json:"display_name"`
	// Path is the path that created the token, e.g. "auth/token/create".
	Path     string `json:"path"`
	EntityID string `json:"entity_id,omitempty"`
	// Type is always TypeService.
	Type string `json:"type"`
	// CreationTime is when the token was issued (Vault's creation_time and
	// issue_time).
	CreationTime time.Time `json:"creation_time"`
	// CreationTTL is the TTL granted at creation; 0 for a token that never
	// expires. Renew uses it when called with a zero increment.
	CreationTTL    time.Duration `json:"creation_ttl,omitempty"`
	ExplicitMaxTTL time.Duration `json:"explicit_max_ttl,omitempty"`
	// Period is set for periodic tokens: each renewal grants Period.
	Period time.Duration `json:"period,omitempty"`
	// NumUses is the number of uses left; 0 means unlimited.
	NumUses   int  `json:"num_uses,omitempty"`
	Renewable bool `json:"renewable"`
	// LastRenewalTime is the time of the last Renew; zero if never renewed.
	LastRenewalTime time.Time `json:"last_renewal_time,omitzero"`
	// ExpireAt is when the token expires; zero if it never does.
	ExpireAt time.Time `json:"expire_at,omitzero"`
	// BoundCIDRs, when not empty, are the only networks the token may be
	// used from (see AllowedFrom).
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
	// Revocation is set while a revocation of the token is in progress.
	// Lookup never returns such an entry.
	Revocation string `json:"revocation,omitempty"`
}

// TTLRemaining returns how long the token has left at now: zero if it has
// expired or never expires (Vault reports ttl 0 for root tokens).
func (e *Entry) TTLRemaining(now time.Time) time.Duration {
	if e.ExpireAt.IsZero() {
		return 0
	}
	return max(0, e.ExpireAt.Sub(now))
}

// ExpireTime returns when the token expires, or nil if it never does.
func (e *Entry) ExpireTime() *time.Time {
	if e.ExpireAt.IsZero() {
		return nil
	}
	t := e.ExpireAt
	return &t
}

// Orphan reports whether the token has no parent.
func (e *Entry) Orphan() bool { return e.Parent == "" }

// IsRoot reports whether the token holds the root policy.
func (e *Entry) IsRoot() bool { return slices.Contains(e.Policies, RootPolicy) }

// AllowedFrom reports whether the token may be used from remoteIP (an IP
// address, with or without a port). A token without bound CIDRs is allowed
// from anywhere; one with bound CIDRs is refused for an address that does
// not parse.
func (e *Entry) AllowedFrom(remoteIP string) bool {
	if len(e.BoundCIDRs) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(remoteIP)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(remoteIP)
		if err2 != nil {
			return false
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap()
	for _, c := range e.BoundCIDRs {
		p, err := parseCIDR(c)
		if err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// expired reports whether the token has expired at now.
func (e *Entry) expired(now time.Time) bool {
	return !e.ExpireAt.IsZero() && !now.Before(e.ExpireAt)
}

// live reports whether the token itself is usable at now (ancestors aside).
func (e *Entry) live(now time.Time) bool {
	return e.Revocation == "" && !e.expired(now)
}

// parseCIDR accepts "10.0.0.0/8" or a bare address (a /32 or /128).
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normalisePolicies trims, drops empty names, sorts and removes duplicates.
func normalisePolicies(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ErrPolicySubset is returned (inside a *PolicySubsetError) when a child
// token asks for a policy its parent does not hold.
var ErrPolicySubset = errors.New("child policies must be subset of parent")

// PolicySubsetError names the policies a child asked for that its parent
// does not hold. It wraps ErrPolicySubset.
type PolicySubsetError struct {
	Missing []string
}

func (e *PolicySubsetError) Error() string {
	return fmt.Sprintf("%v: missing %v", ErrPolicySubset, e.Missing)
}

func (e *PolicySubsetError) Unwrap() error { return ErrPolicySubset }

// CheckPolicySubset enforces that a child token's policies are a subset
// of its parent's. "default" is always allowed. parentIsRoot is true when
// the parent holds the root policy or sudo on the create path; then any
// policy is allowed. The error is a *PolicySubsetError naming every
// missing policy, sorted.
//
// Inheriting the parent's policies when none are requested, and adding
// "default", are the caller's business and happen before this check.
func CheckPolicySubset(parent, requested []string, parentIsRoot bool) error {
	if parentIsRoot {
		return nil
	}
	have := make(map[string]bool, len(parent)+1)
	for _, p := range parent {
		have[strings.TrimSpace(p)] = true
	}
	have[DefaultPolicy] = true
	var missing []string
	for _, p := range normalisePolicies(requested) {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return &PolicySubsetError{Missing: missing}
	}
	return nil
}
