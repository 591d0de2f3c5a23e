package param

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// Token is the token_* parameter set of an auth role: what a login on the
// role mints. The zero value is Vault's default.
type Token struct {
	Policies        []string      `json:"token_policies,omitempty"`
	TTL             time.Duration `json:"token_ttl,omitempty"`
	MaxTTL          time.Duration `json:"token_max_ttl,omitempty"`
	ExplicitMaxTTL  time.Duration `json:"token_explicit_max_ttl,omitempty"`
	Period          time.Duration `json:"token_period,omitempty"`
	NumUses         int           `json:"token_num_uses,omitempty"`
	BoundCIDRs      []string      `json:"token_bound_cidrs,omitempty"`
	NoDefaultPolicy bool          `json:"token_no_default_policy,omitempty"`
	// Type is "default" or "service" (coffer issues service tokens only).
	Type string `json:"token_type,omitempty"`
	// Legacy lists the pre-tokenutil names a write used (policies, ttl,
	// ...); role reads echo those as Vault does.
	Legacy []string `json:"legacy,omitempty"`
}

// legacyNames maps each legacy field to its token_* field.
var legacyNames = []struct{ old, new string }{
	{"policies", "token_policies"},
	{"ttl", "token_ttl"},
	{"max_ttl", "token_max_ttl"},
	{"period", "token_period"},
	{"num_uses", "token_num_uses"},
	{"bound_cidrs", "token_bound_cidrs"},
}

// Decode reads the token_* fields present in b, and their legacy names.
// Sending both names of one field is an error.
func (t *Token) Decode(b *Body) {
	for _, l := range legacyNames {
		if b.Has(l.old) && b.Has(l.new) {
			b.Failf("%s and %s are the same setting; send only %s", l.old, l.new, l.new)
		}
	}
	b.Strings("token_policies", &t.Policies)
	b.Duration("token_ttl", &t.TTL)
	b.Duration("token_max_ttl", &t.MaxTTL)
	b.Duration("token_explicit_max_ttl", &t.ExplicitMaxTTL)
	b.Duration("token_period", &t.Period)
	b.Int("token_num_uses", &t.NumUses)
	b.Strings("token_bound_cidrs", &t.BoundCIDRs)
	b.Bool("token_no_default_policy", &t.NoDefaultPolicy)
	b.String("token_type", &t.Type)
	for _, l := range legacyNames {
		if b.Has(l.new) {
			t.Legacy = slices.DeleteFunc(t.Legacy, func(s string) bool { return s == l.old })
		}
		if !b.Has(l.old) || b.Has(l.new) {
			b.Ignore(l.old)
			continue
		}
		switch l.old {
		case "policies":
			b.Strings(l.old, &t.Policies)
		case "ttl":
			b.Duration(l.old, &t.TTL)
		case "max_ttl":
			b.Duration(l.old, &t.MaxTTL)
		case "period":
			b.Duration(l.old, &t.Period)
		case "num_uses":
			b.Int(l.old, &t.NumUses)
		case "bound_cidrs":
			b.Strings(l.old, &t.BoundCIDRs)
		}
		if !slices.Contains(t.Legacy, l.old) {
			t.Legacy = append(t.Legacy, l.old)
		}
	}
	for i, p := range t.Policies {
		t.Policies[i] = strings.ToLower(strings.TrimSpace(p))
	}
}

// Validate reports every problem with the parameters.
func (t *Token) Validate() []string {
	var errs []string
	if t.MaxTTL > 0 && t.TTL > t.MaxTTL {
		errs = append(errs, fmt.Sprintf("token_ttl (%v) must not be greater than token_max_ttl (%v)", t.TTL, t.MaxTTL))
	}
	if t.NumUses < 0 {
		errs = append(errs, "token_num_uses must not be negative; 0 means unlimited")
	}
	switch t.Type {
	case "", "default", "service":
	case "batch":
		errs = append(errs, `token_type "batch": coffer issues service tokens only; use "default" or "service"`)
	default:
		errs = append(errs, fmt.Sprintf("token_type %q: want \"default\" or \"service\"", t.Type))
	}
	for _, c := range t.BoundCIDRs {
		if _, err := parsePrefix(c); err != nil {
			errs = append(errs, fmt.Sprintf("token_bound_cidrs: %q is neither a CIDR nor an IP address", c))
		}
	}
	for _, p := range t.Policies {
		if p == "root" {
			errs = append(errs, `token_policies: an auth role cannot grant the "root" policy`)
		}
	}
	return errs
}

// Data writes the role-read fields into d, with Vault's defaults for
// unset ones, and the legacy names the role was written with.
func (t *Token) Data(d map[string]any) {
	secs := func(v time.Duration) int64 { return int64(v / time.Second) }
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	typ := t.Type
	if typ == "" {
		typ = "default"
	}
	d["token_policies"] = orEmpty(t.Policies)
	d["token_ttl"] = secs(t.TTL)
	d["token_max_ttl"] = secs(t.MaxTTL)
	d["token_explicit_max_ttl"] = secs(t.ExplicitMaxTTL)
	d["token_period"] = secs(t.Period)
	d["token_num_uses"] = t.NumUses
	d["token_bound_cidrs"] = orEmpty(t.BoundCIDRs)
	d["token_no_default_policy"] = t.NoDefaultPolicy
	d["token_type"] = typ
	for _, l := range t.Legacy {
		d[l] = d["token_"+l]
	}
}

// Login returns the core login for these parameters. The explicit max
// TTL and the max TTL both bound the token; the smaller wins.
func (t *Token) Login() *core.Login {
	maxTTL := t.MaxTTL
	if t.ExplicitMaxTTL > 0 && (maxTTL == 0 || t.ExplicitMaxTTL < maxTTL) {
		maxTTL = t.ExplicitMaxTTL
	}
	return &core.Login{
		Policies:        slices.Clone(t.Policies),
		NoDefaultPolicy: t.NoDefaultPolicy,
		TTL:             t.TTL,
		MaxTTL:          maxTTL,
		Period:          t.Period,
		NumUses:         t.NumUses,
		BoundCIDRs:      slices.Clone(t.BoundCIDRs),
	}
}

// RemoteAllowed reports whether a login from remoteAddr (an address with
// or without a port) may use these parameters: Vault refuses a login from
// outside token_bound_cidrs as well as the token's later use.
func (t *Token) RemoteAllowed(remoteAddr string) bool {
	if len(t.BoundCIDRs) == 0 {
		return true
	}
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, c := range t.BoundCIDRs {
		if p, err := parsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// parsePrefix parses a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
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
