package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

const dbPolicy = `
path "db/creds" {
  capabilities        = ["create", "read", "update", "delete"]
  allowed_parameters  = { "role" = ["app-*", "reporting"], "ttl" = [] }
  denied_parameters   = { "ttl" = ["0"] }
  required_parameters = ["role"]
}

path "kv/any" {
  capabilities       = ["update"]
  allowed_parameters = { "*" = [], "mode" = ["ro"] }
}

path "kv/none" {
  capabilities      = ["update"]
  denied_parameters = { "*" = [] }
}

path "kv/typed" {
  capabilities       = ["update"]
  allowed_parameters = { "n" = [1, 2.5], "b" = [true], "s" = ["*-prod", "*mid*", "*"] }
}

path "wrap/me" {
  capabilities     = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 3600
}

path "sys/rotate" {
  capabilities = ["update"]
}

path "sys/seal" {
  capabilities = ["update", "sudo"]
}
`

func TestAuthorize(t *testing.T) {
	t.Parallel()
	type params = map[string]any
	tests := []struct {
		name string
		pols []string
		req  Request
		ok   bool
	}{
		{"required parameter missing", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update}, false},
		{"allowed glob value", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1"}}, true},
		{"allowed exact value and any-value key", []string{dbPolicy}, Request{Path: "db/creds", Operation: Create, Params: params{"role": "reporting", "ttl": "1h"}}, true},
		{"value not allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "admin"}}, false},
		{"parameter not allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1", "extra": "x"}}, false},
		{"denied value wins over allowed key", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1", "ttl": "0"}}, false},
		{"parameter names compare lowercased", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1", "TTL": "0"}}, false},
		{"read checks parameters too", []string{dbPolicy}, Request{Path: "db/creds", Operation: Read}, false},
		{"delete does not check parameters", []string{dbPolicy}, Request{Path: "db/creds", Operation: Delete}, true},
		{"list value all allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": []any{"app-1", "reporting"}}}, true},
		{"list value one not allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": []any{"app-1", "admin"}}}, false},
		{"comma string all allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1, reporting"}}, true},
		{"comma string one not allowed", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "admin,app-1"}}, false},
		{"comma string one denied", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": "app-1", "ttl": "5,0"}}, false},
		{"empty string is not split", []string{dbPolicy}, Request{Path: "db/creds", Operation: Update, Params: params{"role": ""}}, false},
		{"star key allows others", []string{dbPolicy}, Request{Path: "kv/any", Operation: Update, Params: params{"anything": 1, "mode": "ro"}}, true},
		{"star key keeps value limits", []string{dbPolicy}, Request{Path: "kv/any", Operation: Update, Params: params{"mode": "rw"}}, false},
		{"deny all parameters", []string{dbPolicy}, Request{Path: "kv/none", Operation: Update, Params: params{"x": "y"}}, false},
		{"deny all parameters without any", []string{dbPolicy}, Request{Path: "kv/none", Operation: Update}, true},
		{"json number matches int", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"n": json.Number("1")}}, true},
		{"float matches float", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"n": 2.5}}, true},
		{"number not listed", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"n": 3}}, false},
		{"string is not a number", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"n": "1"}}, false},
		{"bool matches", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"b": true}}, true},
		{"bool mismatch", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"b": false}}, false},
		{"suffix glob", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"s": "db-prod"}}, true},
		{"infix glob", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"s": "xmidx"}}, true},
		{"lone star value is literal", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"s": "*"}}, true},
		{"glob mismatch", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"s": "dev"}}, false},
		{"nil value matches nothing listed", []string{dbPolicy}, Request{Path: "kv/typed", Operation: Update, Params: params{"s": nil}}, false},
		{"wrapping required", []string{dbPolicy}, Request{Path: "wrap/me", Operation: Read}, false},
		{"wrapping below min", []string{dbPolicy}, Request{Path: "wrap/me", Operation: Read, WrapTTL: 30 * time.Second}, false},
		{"wrapping in range", []string{dbPolicy}, Request{Path: "wrap/me", Operation: Read, WrapTTL: 5 * time.Minute}, true},
		{"wrapping above max", []string{dbPolicy}, Request{Path: "wrap/me", Operation: Read, WrapTTL: 2 * time.Hour}, false},
		{"sudo path without sudo", []string{dbPolicy}, Request{Path: "sys/rotate", Operation: Update, RequireSudo: true}, false},
		{"sudo path with sudo", []string{dbPolicy}, Request{Path: "sys/seal", Operation: Update, RequireSudo: true}, true},
		{"sudo operation", []string{dbPolicy}, Request{Path: "sys/seal", Operation: Sudo}, true},
		{"deny is not an operation", []string{rule("x", "deny")}, Request{Path: "x", Operation: Deny}, false},
		{"zero is not an operation", []string{rule("x", "read")}, Request{Path: "x"}, false},
		{"root skips parameters", []string{"ROOT"}, Request{Path: "db/creds", Operation: Update, RequireSudo: true, Params: params{"x": 1}}, true},
		{"merged allowed values concatenate", []string{
			`path "p" { capabilities = ["update"] allowed_parameters = { "a" = ["x"] } }`,
			`path "p" { capabilities = ["update"] allowed_parameters = { "a" = ["y"] } }`,
		}, Request{Path: "p", Operation: Update, Params: params{"a": "y"}}, true},
		{"merged empty list allows any value", []string{
			`path "p" { capabilities = ["update"] allowed_parameters = { "a" = ["x"] } }`,
			`path "p" { capabilities = ["update"] allowed_parameters = { "a" = [] } }`,
		}, Request{Path: "p", Operation: Update, Params: params{"a": "z"}}, true},
		{"merged restrictions accumulate", []string{
			`path "p" { capabilities = ["update"] }`,
			`path "p" { capabilities = ["read"] allowed_parameters = { "a" = [] } }`,
		}, Request{Path: "p", Operation: Update, Params: params{"b": "z"}}, false},
		{"merged required parameters union", []string{
			`path "p" { capabilities = ["update"] required_parameters = ["a"] }`,
			`path "p" { capabilities = ["update"] required_parameters = ["b"] }`,
		}, Request{Path: "p", Operation: Update, Params: params{"a": 1}}, false},
		{"merged smaller max wrapping ttl wins", []string{
			`path "p" { capabilities = ["read"] max_wrapping_ttl = "1h" }`,
			`path "p" { capabilities = ["read"] max_wrapping_ttl = "10m" }`,
		}, Request{Path: "p", Operation: Read, WrapTTL: 30 * time.Minute}, false},
		{"merged deny drops parameters", []string{
			`path "p" { capabilities = ["update"] allowed_parameters = { "a" = [] } }`,
			rule("p", "deny"),
		}, Request{Path: "p", Operation: Update, Params: params{"a": 1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := compile(t, Identity{}, tt.pols...).Authorize(tt.req)
			if (err == nil) != tt.ok {
				t.Fatalf("Authorize(%+v) = %v, want ok=%v", tt.req, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrPermissionDenied) {
				t.Errorf("error %v does not match ErrPermissionDenied", err)
			}
		})
	}
}

func TestAuthorizeErrorsHideValues(t *testing.T) {
	t.Parallel()
	acl := compile(t, Identity{}, dbPolicy)
	err := acl.Authorize(Request{Path: "db/creds", Operation: Update, Params: map[string]any{"role": "s3cr3t-value"}})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v: want a denial that does not quote the value", err)
	}
}

func TestHasAnyUnder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pols   []string
		id     Identity
		prefix string
		want   bool
	}{
		{"exact rule under prefix", []string{rule("secret/data/app/db", "read")}, Identity{}, "secret/data/", true},
		{"exact rule elsewhere", []string{rule("secret/data/app/db", "read")}, Identity{}, "secret/data/other/", false},
		{"exact deny under prefix", []string{rule("secret/data/app/db", "deny")}, Identity{}, "secret/data/", false},
		{"glob above prefix", []string{rule("secret/*", "read")}, Identity{}, "secret/data/x/", true},
		{"glob below prefix", []string{rule("secret/data/app/*", "read")}, Identity{}, "secret/", true},
		{"glob beside prefix", []string{rule("secret/data/app/*", "read")}, Identity{}, "secret/data/b", false},
		{"partial segment prefix", []string{rule("secret/data/app/*", "read")}, Identity{}, "secret/data/a", true},
		{"covering deny wins", []string{rule("secret/*", "read"), rule("secret/team/*", "deny")}, Identity{}, "secret/team/x/", false},
		{"longer grant under covering deny", []string{rule("secret/*", "deny"), rule("secret/team/app/*", "read")}, Identity{}, "secret/team/", true},
		{"covering deny shadows earlier plus", []string{rule("secret/+/x", "read"), rule("secret/team/*", "deny")}, Identity{}, "secret/team/", false},
		{"plus rule can match", []string{rule("secret/+/config", "read")}, Identity{}, "secret/team/", true},
		{"plus rule too short", []string{rule("secret/+/config", "read")}, Identity{}, "secret/team/other/", false},
		{"plus rule partial segment", []string{rule("secret/+/config", "read")}, Identity{}, "secret/team/con", true},
		{"plus rule partial mismatch", []string{rule("secret/+/config", "read")}, Identity{}, "secret/team/x", false},
		{"more plus segments rank lower", []string{rule("secret/*", "read"), rule("secret/+/*", "deny")}, Identity{}, "secret/team/", true},
		{"list fallback to exact rule", []string{rule("secret/metadata/app", "list")}, Identity{}, "secret/metadata/app/", true},
		{"empty rule covers", []string{rule("secret/*", "read"), rule("secret/x/*")}, Identity{}, "secret/x/y/", false},
		{"list of covered folder uses trimmed path", []string{rule("secret/*", "read"), rule("secret/x/*")}, Identity{}, "secret/x/", true},
		{"exact deny does not block siblings", []string{rule("secret/*", "read"), rule("secret/x", "deny")}, Identity{}, "secret/x", true},
		{"templated rule for this caller", []string{rule("secret/{{identity.metadata.ns}}/*", "read")}, teamID, "secret/team-a/", true},
		{"templated rule for another caller", []string{rule("secret/{{identity.metadata.ns}}/*", "read")}, teamID, "secret/team-b/", false},
		{"root", []string{"ROOT"}, Identity{}, "anything/", true},
		{"no policies", []string{""}, Identity{}, "secret/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := compile(t, tt.id, tt.pols...).HasAnyUnder(tt.prefix); got != tt.want {
				t.Fatalf("HasAnyUnder(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}
}

// TestHasAnyUnderBruteForce checks HasAnyUnder against Capabilities on
// every path of a small universe, for random policies. It must never say
// false where some path under the prefix is granted; with no "+" rules it
// must be exact.
func TestHasAnyUnderBruteForce(t *testing.T) {
	t.Parallel()
	segs := []string{"a", "b", "ab", "z", ""}
	var paths []string
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		paths = append(paths, prefix)
		if depth == 4 {
			return
		}
		for _, s := range segs {
			walk(prefix+s+"/", depth+1)
			paths = append(paths, prefix+s)
		}
	}
	walk("", 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		plus := iter%2 == 0
		var texts []string
		for range 1 + rng.IntN(5) {
			n := 1 + rng.IntN(3)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = []string{"a", "b", "ab", "+"}[rng.IntN(map[bool]int{true: 4, false: 3}[plus])]
			}
			p := strings.Join(parts, "/")
			switch rng.IntN(3) {
			case 0:
				p += "*"
			case 1:
				p += "/*"
			}
			if strings.Contains(p, "+*") {
				p = strings.TrimSuffix(p, "*")
			}
			caps := [][]string{{"read"}, {"deny"}, {}}[rng.IntN(3)]
			texts = append(texts, rule(p, caps...))
		}
		acl := compile(t, Identity{}, texts...)
		for _, prefix := range []string{"", "a", "a/", "ab/", "a/b", "a/b/", "b/a/", "a/a/a/", "z/"} {
			truth := false
			for _, p := range paths {
				if strings.HasPrefix(p, prefix) && acl.Capabilities(p)[0] != "deny" {
					truth = true
					break
				}
			}
			got := acl.HasAnyUnder(prefix)
			if truth && !got || !plus && got != truth {
				t.Fatalf("policies:\n%s\nHasAnyUnder(%q) = %v, brute force says %v", strings.Join(texts, "\n"), prefix, got, truth)
			}
		}
	}
}

func TestNewACLRejectsHandBuiltRules(t *testing.T) {
	t.Parallel()
	for _, r := range []Rule{
		{Path: "a/*/b", Capabilities: []Capability{Read}},
		{Path: "", Capabilities: []Capability{Read}},
		{Path: "a", Capabilities: []Capability{Capability(42)}},
	} {
		if _, err := NewACL(Identity{}, &Policy{Name: "hand", Rules: []Rule{r}}); err == nil {
			t.Errorf("NewACL accepted rule %+v", r)
		}
	}
	if _, err := NewACL(Identity{}, nil, &Policy{Name: "ok"}); err != nil {
		t.Errorf("NewACL with a nil policy: %v", err)
	}
}

func TestParseCapability(t *testing.T) {
	t.Parallel()
	for c := Create; c <= Deny; c++ {
		got, err := ParseCapability(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCapability(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseCapability("root"); err == nil || err.Error() != `invalid capability "root"` {
		t.Errorf("ParseCapability(root) error = %v", err)
	}
	if s := Capability(0).String(); s != "capability(0)" {
		t.Errorf("Capability(0).String() = %q", s)
	}
}

func TestTemplated(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		rule("a/{{identity.entity.id}}", "read"): true,
		rule("a/b", "read"):                      false,
	} {
		p, err := Parse("t", text)
		if err != nil {
			t.Fatal(err)
		}
		if p.Templated() != want {
			t.Errorf("Templated(%s) = %v", text, !want)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	in := `
# a comment that fmt drops
path "/secret/data/app/*" { capabilities = ["list", "read", "read"] }
path "legacy" { policy = "write" }
path "db/creds" {
  comment = "db \"creds\""
  required_parameters = ["role"]
  max_wrapping_ttl = 300
  min_wrapping_ttl = "90s"
  capabilities = ["update"]
  denied_parameters = { "TTL" = ["0", 1, 2.0, true] }
  allowed_parameters = { "role" = ["app-*"], "*" = [] }
}
path "gone" { capabilities = ["read", "deny"] allowed_parameters = { "a" = [] } }
path "${x}" {}
path "//x" { capabilities = ["read"] }
`
	want := `path "secret/data/app/*" {
  capabilities = ["read", "list"]
}

path "legacy" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "db/creds" {
  comment             = "db \"creds\""
  capabilities        = ["update"]
  allowed_parameters  = {
    "*"    = []
    "role" = ["app-*"]
  }
  denied_parameters   = {
    "ttl" = ["0", 1, 2.0, true]
  }
  required_parameters = ["role"]
  min_wrapping_ttl    = "90s"
  max_wrapping_ttl    = "5m"
}

path "gone" {
  capabilities = ["deny"]
}

path "\x24{x}" {
  capabilities = []
}

path "//x" {
  capabilities = ["read"]
}
`
	p, err := Parse("f", in)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != want {
		t.Fatalf("String():\n%s\nwant:\n%s", got, want)
	}
	assertRoundTrip(t, p)
}

func TestDefaultPolicyParses(t *testing.T) {
	t.Parallel()
	p, err := Parse("default", DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	acl, err := NewACL(Identity{}, p)
	if err != nil {
		t.Fatal(err)
	}
	for path, op := range map[string]Capability{
		"auth/token/lookup-self": Read, "auth/token/renew-self": Update, "auth/token/revoke-self": Update,
		"sys/capabilities-self": Update, "cubbyhole/x": Create, "sys/internal/ui/mounts/secret": Read,
		"sys/wrapping/unwrap": Update, "sys/leases/renew": Update, "sys/leases/lookup": Update,
	} {
		if !acl.Allowed(path, op) {
			t.Errorf("default policy does not allow %v on %s", op, path)
		}
	}
	if acl.Allowed("sys/wrapping/rewrap", Update) || acl.Allowed("auth/token/create", Update) {
		t.Error("default policy allows more than it should")
	}
}

// benchACL is about 50 rules of the shapes real policies have.
func benchACL(b *testing.B) *ACL {
	b.Helper()
	var sb strings.Builder
	for i := range 12 {
		fmt.Fprintf(&sb, "%s\n", rule(fmt.Sprintf("secret/data/team-%d/*", i), "read", "list"))
		fmt.Fprintf(&sb, "%s\n", rule(fmt.Sprintf("secret/metadata/team-%d/*", i), "list"))
		fmt.Fprintf(&sb, "%s\n", rule(fmt.Sprintf("transit/encrypt/key-%d", i), "update"))
		fmt.Fprintf(&sb, "%s\n", rule(fmt.Sprintf("database/creds/+/role-%d", i), "read"))
	}
	sb.WriteString(rule("secret/data/team-3/private/*", "deny") + "\n")
	sb.WriteString(rule("sys/*", "deny") + "\n")
	p, err := Parse("bench", sb.String()+DefaultPolicy)
	if err != nil {
		b.Fatal(err)
	}
	acl, err := NewACL(Identity{}, p)
	if err != nil {
		b.Fatal(err)
	}
	return acl
}

func BenchmarkAllowed(b *testing.B) {
	acl := benchACL(b)
	for _, bc := range []struct {
		name, path string
		op         Capability
		want       bool
	}{
		{"exact", "transit/encrypt/key-7", Update, true},
		{"prefix", "secret/data/team-9/app/db", Read, true},
		{"plus", "database/creds/pg/role-5", Read, true},
		{"deny", "secret/data/team-3/private/x", Read, false},
		{"miss", "pki/issue/web", Update, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if acl.Allowed(bc.path, bc.op) != bc.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkNewACL(b *testing.B) {
	var sb strings.Builder
	for i := range 50 {
		fmt.Fprintf(&sb, "%s\n", rule(fmt.Sprintf("secret/data/{{identity.metadata.ns}}/app-%d/*", i), "read"))
	}
	p, err := Parse("bench", sb.String())
	if err != nil {
		b.Fatal(err)
	}
	id := Identity{Metadata: map[string]string{"ns": "payments"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewACL(id, p); err != nil {
			b.Fatal(err)
		}
	}
}

// vaultNonExact is Vault's CheckAllowedFromNonExactPaths written out
// plainly (longest "*" prefix plus every matching "+" rule, sorted by
// priority, last wins), as a reference for the optimised nonExact.
func vaultNonExact(a *ACL, path string) *perm {
	type cand struct {
		rank
		perm *perm
	}
	var cands []cand
	bestLen := -1
	for q, p := range a.prefix {
		if strings.HasPrefix(path, q) && len(q) > bestLen {
			bestLen = len(q)
			cands = []cand{{rank{firstWild: len(q), isPrefix: true, wcPath: q}, p}}
		}
	}
	pathParts := strings.Split(path, "/")
next:
	for _, w := range a.wild {
		if len(pathParts) < len(w.parts) || !w.isPrefix && len(pathParts) != len(w.parts) {
			continue
		}
		for i, part := range w.parts {
			switch {
			case part == "+", part == pathParts[i]:
			case w.isPrefix && i == len(w.parts)-1 && strings.HasPrefix(pathParts[i], part):
			default:
				continue next
			}
		}
		cands = append(cands, cand{w.rank, w.perm})
	}
	if len(cands) == 0 {
		return nil
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if best.less(c.rank) {
			best = c
		}
	}
	return best.perm
}

func TestNonExactMatchesVaultAlgorithm(t *testing.T) {
	t.Parallel()
	words := []string{"a", "b", "ab", "+", ""}
	rng := rand.New(rand.NewPCG(3, 4))
	var paths []string
	for range 400 {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = []string{"a", "b", "ab", "abc", "", "z"}[rng.IntN(6)]
		}
		paths = append(paths, strings.Join(parts, "/"))
	}
	for range 300 {
		var texts []string
		for i := range 1 + rng.IntN(8) {
			n := 1 + rng.IntN(4)
			parts := make([]string, n)
			for j := range parts {
				parts[j] = words[rng.IntN(len(words))]
			}
			p := strings.Join(parts, "/")
			if rng.IntN(2) == 0 && !strings.HasSuffix(p, "+") {
				p += "*"
			}
			if p == "" || p == "/" {
				p = "x"
			}
			texts = append(texts, rule(p, []string{"read", "list", "update", "delete", "deny"}[i%5]))
		}
		acl := compile(t, Identity{}, texts...)
		for _, path := range paths {
			if got, want := acl.nonExact(path), vaultNonExact(acl, path); got != want {
				t.Fatalf("policies:\n%s\nnonExact(%q) = %+v, Vault's algorithm gives %+v", strings.Join(texts, "\n"), path, got, want)
			}
		}
	}
}

func TestACLConcurrentUse(t *testing.T) {
	t.Parallel()
	acl := compile(t, teamID, DefaultPolicy, dbPolicy, rule("secret/data/{{identity.metadata.ns}}/*", "read"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if !acl.Allowed("secret/data/team-a/x", Read) || acl.Allowed("secret/data/team-b/x", Read) {
					t.Error("wrong answer under concurrency")
					return
				}
				acl.Capabilities("cubbyhole/x")
				acl.HasAnyUnder("db/")
			}
		})
	}
	wg.Wait()
}
