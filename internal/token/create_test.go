package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`^s\.[0-9A-Za-z]{24}$`)

func ptr[T any](v T) *T { return &v }

func TestCreateLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        Options
		req         CreateRequest
		wantTTL     time.Duration // CreationTTL; 0 with wantNever
		wantNever   bool
		wantRenew   bool
		wantPeriod  time.Duration
		wantPolicy  []string
		wantErr     error
		wantErrText string
	}{
		{name: "default TTL", req: CreateRequest{Policies: []string{"default"}}, wantTTL: DefaultTTL, wantRenew: true, wantPolicy: []string{"default"}},
		{name: "configured default TTL", opts: Options{DefaultTTL: time.Hour}, req: CreateRequest{}, wantTTL: time.Hour, wantRenew: true},
		{name: "explicit TTL", req: CreateRequest{TTL: time.Hour}, wantTTL: time.Hour, wantRenew: true},
		{name: "TTL capped at system max", opts: Options{MaxTTL: 2 * time.Hour, DefaultTTL: time.Hour}, req: CreateRequest{TTL: 5 * time.Hour}, wantTTL: 2 * time.Hour, wantRenew: true},
		{name: "TTL capped at explicit max", req: CreateRequest{TTL: 5 * time.Hour, ExplicitMaxTTL: 90 * time.Minute}, wantTTL: 90 * time.Minute, wantRenew: true},
		{name: "periodic", req: CreateRequest{Period: 30 * time.Minute, TTL: 5 * time.Hour}, wantTTL: 30 * time.Minute, wantRenew: true, wantPeriod: 30 * time.Minute},
		{name: "period capped at system max", opts: Options{MaxTTL: time.Hour, DefaultTTL: time.Hour}, req: CreateRequest{Period: 3 * time.Hour}, wantTTL: time.Hour, wantRenew: true, wantPeriod: time.Hour},
		{name: "not renewable", req: CreateRequest{TTL: time.Hour, Renewable: ptr(false)}, wantTTL: time.Hour},
		{name: "root never expires", req: CreateRequest{Policies: []string{"root"}, Path: "auth/token/root"}, wantNever: true, wantPolicy: []string{"root"}},
		{name: "root with TTL expires", req: CreateRequest{Policies: []string{"root"}, TTL: time.Hour}, wantTTL: time.Hour, wantRenew: true, wantPolicy: []string{"root"}},
		{name: "policies normalised", req: CreateRequest{Policies: []string{"b", " a", "b", "", "default"}}, wantTTL: DefaultTTL, wantRenew: true, wantPolicy: []string{"a", "b", "default"}},
		{name: "negative values", req: CreateRequest{TTL: -1, NumUses: -2, ExplicitMaxTTL: -time.Second}, wantErr: ErrInvalidRequest,
			wantErrText: "ttl -1ns is negative; explicit_max_ttl -1s is negative; num_uses -2 is negative; use 0 for unlimited"},
		{name: "bad CIDR", req: CreateRequest{BoundCIDRs: []string{"10.0.0.0/8", "nope"}}, wantErr: ErrInvalidRequest, wantErrText: `bound CIDR "nope"`},
		{name: "id too long", req: CreateRequest{ID: strings.Repeat("x", MaxTokenLen+1)}, wantErr: ErrInvalidRequest, wantErrText: "longer than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, tt.opts)
			now := env.clock.Now()
			tok, e, err := env.s.Create(t.Context(), tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tokenRE.MatchString(tok) {
				t.Errorf("token %q does not look like s.<24 base62>", tok)
			}
			if len(e.Accessor) != randomLen || !isHash(e.ID) {
				t.Errorf("accessor %q / id %q malformed", e.Accessor, e.ID)
			}
			got, err := env.s.Lookup(t.Context(), tok)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if got.ID != e.ID || got.Accessor != e.Accessor || !got.CreationTime.Equal(now) {
				t.Errorf("Lookup = %+v, want %+v", got, e)
			}
			if got.CreationTTL != tt.wantTTL {
				t.Errorf("creation TTL = %v, want %v", got.CreationTTL, tt.wantTTL)
			}
			if tt.wantNever {
				if got.ExpireTime() != nil || got.TTLRemaining(now.Add(1000*time.Hour)) != 0 {
					t.Errorf("root token expires: %v", got.ExpireTime())
				}
			} else if exp := got.ExpireTime(); exp == nil || !exp.Equal(now.Add(tt.wantTTL)) || got.TTLRemaining(now) != tt.wantTTL {
				t.Errorf("expire time = %v, TTL = %v; want %v", exp, got.TTLRemaining(now), tt.wantTTL)
			}
			if got.Renewable != tt.wantRenew || got.Period != tt.wantPeriod {
				t.Errorf("renewable %v period %v, want %v %v", got.Renewable, got.Period, tt.wantRenew, tt.wantPeriod)
			}
			if !slices.Equal(got.Policies, tt.wantPolicy) && !(len(got.Policies) == 0 && len(tt.wantPolicy) == 0) {
				t.Errorf("policies = %q, want %q", got.Policies, tt.wantPolicy)
			}
			if got.Type != TypeService || !got.Orphan() {
				t.Errorf("type %q orphan %v", got.Type, got.Orphan())
			}
			if byAcc, err := env.s.LookupAccessor(t.Context(), e.Accessor); err != nil || byAcc.ID != e.ID {
				t.Errorf("LookupAccessor = %v, %v", byAcc, err)
			}
			if byID, err := env.s.LookupID(t.Context(), e.ID); err != nil || byID.Accessor != e.Accessor {
				t.Errorf("LookupID = %v, %v", byID, err)
			}
		})
	}
}

func TestCreateFields(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	meta := map[string]string{"team": "a"}
	tok, e := env.create(t, CreateRequest{
		Policies: []string{"default"}, Meta: meta, DisplayName: "token-demo", Path: "auth/token/create",
		EntityID: "ent-1", NumUses: 3, BoundCIDRs: []string{" 10.0.0.0/8 "},
	})
	meta["team"] = "changed"
	got, err := env.s.Lookup(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta["team"] != "a" || got.DisplayName != "token-demo" || got.Path != "auth/token/create" ||
		got.EntityID != "ent-1" || got.NumUses != 3 || !slices.Equal(got.BoundCIDRs, []string{"10.0.0.0/8"}) {
		t.Errorf("fields not kept: %+v", got)
	}
	if e.Meta["team"] != "a" {
		t.Errorf("Create kept the caller's meta map")
	}
	_, root := env.create(t, CreateRequest{Policies: []string{"root"}, Meta: map[string]string{}})
	if root.Meta != nil {
		t.Errorf("empty meta stored as %v, want nil (Vault shows null)", root.Meta)
	}
}

func TestExplicitID(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	tok, e := env.create(t, CreateRequest{ID: "my-dev-root", Policies: []string{"root"}, NoParent: true})
	if tok != "my-dev-root" {
		t.Fatalf("token = %q", tok)
	}
	if got, err := env.s.Lookup(t.Context(), "my-dev-root"); err != nil || got.ID != e.ID {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	if _, _, err := env.s.Create(t.Context(), CreateRequest{ID: "my-dev-root"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate id: err = %v, want ErrExists", err)
	}
}

func TestLookupUnknown(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	tok, e := env.create(t, CreateRequest{})
	for _, s := range []string{"", "s.", tok + "x", tok[:len(tok)-1], strings.ToUpper(tok), e.ID, e.Accessor, strings.Repeat("a", MaxTokenLen+1)} {
		if _, err := env.s.Lookup(t.Context(), s); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%.20q) err = %v, want ErrNotFound", s, err)
		}
	}
	for _, s := range []string{"", tok, e.ID, e.Accessor + "x", strings.Repeat("a", 200)} {
		if _, err := env.s.LookupAccessor(t.Context(), s); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupAccessor(%.20q) err = %v, want ErrNotFound", s, err)
		}
	}
	for _, s := range []string{"", tok, strings.ToUpper(e.ID), e.ID[:63], e.ID + "0", "../" + e.ID[3:]} {
		if _, err := env.s.LookupID(t.Context(), s); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupID(%.20q) err = %v, want ErrNotFound", s, err)
		}
	}
}

// TestNoPlaintextStored runs every operation and then scans every stored
// key and value for any token issued (and for the explicit id).
func TestNoPlaintextStored(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	ctx := t.Context()
	var toks []string
	add := func(req CreateRequest) *Entry {
		tok, e := env.create(t, req)
		toks = append(toks, tok)
		return e
	}
	root := add(CreateRequest{ID: "dev-root-token-id-1234", Policies: []string{"root"}})
	for i := range 20 {
		child := add(CreateRequest{Parent: root, Policies: []string{"default"}, TTL: time.Hour, NumUses: (i % 3) * 2})
		add(CreateRequest{Parent: child, Period: time.Hour})
		if _, err := env.s.Use(ctx, child); err != nil {
			t.Fatal(err)
		}
		if _, err := env.s.Renew(ctx, child, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			if err := env.s.RevokeOrphan(ctx, child); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := dump(t, env.b)
	for _, k := range sortedKeys(all) {
		for _, tok := range toks {
			if strings.Contains(k, tok) || bytes.Contains(all[k], []byte(tok)) {
				t.Fatalf("plaintext token found at %s", k)
			}
		}
	}
	if len(all) < 100 {
		t.Fatalf("only %d keys stored; the scan saw too little", len(all))
	}
}

func TestTokenRedacts(t *testing.T) {
	t.Parallel()
	tok := Token("s.SECRETSECRETSECRETSECRET")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", tok, "group", slog.GroupValue(slog.Any("t", tok)))
	js, _ := json.Marshal(struct{ T Token }{tok})
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", tok), "%s": fmt.Sprintf("%s", tok), "%q": fmt.Sprintf("%q", tok),
		"%x": fmt.Sprintf("%x", tok), "%#v": fmt.Sprintf("%#v", tok), "%+v struct": fmt.Sprintf("%+v", struct{ T Token }{tok}),
		"Sprint": fmt.Sprint(tok), "error": fmt.Errorf("bad %v", tok).Error(), "slog": buf.String(), "json": string(js),
	}
	for name, out := range outs {
		if strings.Contains(out, "SECRET") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s: %q", name, out)
		}
	}
	if tok.Reveal() != "s.SECRETSECRETSECRETSECRET" {
		t.Error("Reveal lost the value")
	}
}

func TestCheckPolicySubset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		parent    []string
		requested []string
		root      bool
		missing   []string
	}{
		{"subset", []string{"a", "b"}, []string{"a"}, false, nil},
		{"equal", []string{"a", "b"}, []string{"b", "a"}, false, nil},
		{"empty request", []string{"a"}, nil, false, nil},
		{"default always allowed", []string{"a"}, []string{"a", "default"}, false, nil},
		{"missing one", []string{"a"}, []string{"a", "x"}, false, []string{"x"}},
		{"missing sorted, deduplicated", []string{"a"}, []string{"z", "x", "z", "a"}, false, []string{"x", "z"}},
		{"root requested by non-root", []string{"a"}, []string{"root"}, false, []string{"root"}},
		{"root parent", []string{"root"}, []string{"anything"}, true, nil},
		{"sudo parent", []string{"ops"}, []string{"anything", "root"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckPolicySubset(tt.parent, tt.requested, tt.root)
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			pe, ok := errors.AsType[*PolicySubsetError](err)
			if !ok || !errors.Is(err, ErrPolicySubset) || !slices.Equal(pe.Missing, tt.missing) {
				t.Fatalf("err = %v, want missing %q", err, tt.missing)
			}
			want := fmt.Sprintf("child policies must be subset of parent: missing %v", tt.missing)
			if err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
}

func TestAllowedFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cidrs []string
		ip    string
		want  bool
	}{
		{"unbound", nil, "203.0.113.9", true},
		{"unbound garbage", nil, "garbage", true},
		{"inside", []string{"10.0.0.0/8"}, "10.1.2.3", true},
		{"outside", []string{"10.0.0.0/8"}, "11.1.2.3", false},
		{"with port", []string{"10.0.0.0/8"}, "10.1.2.3:4567", true},
		{"bare address", []string{"192.0.2.1"}, "192.0.2.1", true},
		{"bare address other", []string{"192.0.2.1"}, "192.0.2.2", false},
		{"v4-mapped caller", []string{"10.0.0.0/8"}, "::ffff:10.0.0.1", true},
		{"v6", []string{"2001:db8::/32"}, "[2001:db8::1]:80", true},
		{"second CIDR", []string{"10.0.0.0/8", "127.0.0.1/32"}, "127.0.0.1", true},
		{"bound garbage", []string{"10.0.0.0/8"}, "garbage", false},
		{"bound empty", []string{"10.0.0.0/8"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &Entry{BoundCIDRs: tt.cidrs}
			if got := e.AllowedFrom(tt.ip); got != tt.want {
				t.Errorf("AllowedFrom(%q) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestChildOfDeadParent(t *testing.T) {
	t.Parallel()
	env := newEnv(t, Options{})
	_, parent := env.create(t, CreateRequest{TTL: time.Hour})
	_, live := env.create(t, CreateRequest{TTL: time.Hour})
	if err := env.s.Revoke(t.Context(), parent); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.s.Create(t.Context(), CreateRequest{Parent: parent}); !errors.Is(err, ErrNotFound) {
		t.Errorf("child of revoked parent: err = %v, want ErrNotFound", err)
	}
	if _, _, err := env.s.Create(t.Context(), CreateRequest{Parent: parent, NoParent: true}); err != nil {
		t.Errorf("orphan despite Parent: %v", err)
	}
	env.clock.Add(time.Hour)
	if _, _, err := env.s.Create(t.Context(), CreateRequest{Parent: live}); !errors.Is(err, ErrNotFound) {
		t.Errorf("child of expired parent: err = %v, want ErrNotFound", err)
	}
	if _, err := env.s.Tidy(t.Context()); err != nil {
		t.Fatal(err)
	}
}
