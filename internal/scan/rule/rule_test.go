package rule_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	f, err := rule.Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rules) < 150 {
		t.Errorf("%d default rules, want at least 150", len(f.Rules))
	}
	families := map[string]int{}
	for _, r := range f.Rules {
		families[r.Family]++
		if r.Description == "" || r.Family == "" {
			t.Errorf("rule %s: needs description and family", r.ID)
		}
	}
	for _, want := range []string{"cloud", "vcs", "chat", "payment", "ci", "registry", "database", "private-key", "jwt", "generic", "kubernetes"} {
		if families[want] == 0 {
			t.Errorf("no rule in family %s", want)
		}
	}
}

func TestParseStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "version: 1\nrules:\n- id: a\n  severity: high\n  keywords: [ab]\n  regex: 'ab'\n  colour: red\n", "colour"},
		{"bad version", "version: 2\nrules: []\n", "version 2"},
		{"duplicate id", "version: 1\nrules:\n- {id: a, severity: high, keywords: [ab], regex: ab}\n- {id: a, severity: high, keywords: [ab], regex: ab}\n", "duplicate"},
		{"bad regex", "version: 1\nrules:\n- {id: a, severity: high, keywords: [ab], regex: 'a('}\n", "regex"},
		{"no keywords", "version: 1\nrules:\n- {id: a, severity: high, regex: ab}\n", "keywords"},
		{"bad validator", "version: 1\nrules:\n- {id: a, severity: high, keywords: [ab], regex: ab, validate: luhn}\n", "validate"},
		{"bad severity", "version: 1\nrules:\n- {id: a, severity: severe, keywords: [ab], regex: ab}\n", "severity"},
		{"group out of range", "version: 1\nrules:\n- {id: a, severity: high, keywords: [ab], regex: ab, secretGroup: 2}\n", "secretGroup"},
		{"two documents", "version: 1\nrules: []\n---\nversion: 1\n", "more than one"},
		{"every problem at once", "version: 1\nrules:\n- {id: A, severity: x, keywords: [ab], regex: ab}\n", "severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := rule.Parse([]byte(tc.yaml))
			if !errors.Is(err, rule.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	base, err := rule.Default()
	if err != nil {
		t.Fatal(err)
	}
	user, err := rule.Parse([]byte(`version: 1
rules:
  - id: github-pat
    disabled: true
  - id: aws-access-key-id
    description: overridden
    severity: low
    keywords: [akia]
    regex: '\b(AKIA[A-Z2-7]{16})\b'
    secretGroup: 1
  - id: acme-internal-token
    description: ACME internal token
    family: saas
    severity: high
    keywords: [acme_]
    regex: '\b(acme_[a-z0-9]{32})\b'
    secretGroup: 1
allowlist:
  paths: ['^vendor/']
`))
	if err != nil {
		t.Fatal(err)
	}
	m := rule.Merge(base, user)
	ids := map[string]rule.Rule{}
	for _, r := range m.Rules {
		ids[r.ID] = r
	}
	if _, ok := ids["github-pat"]; ok {
		t.Error("disabled rule still present")
	}
	if ids["aws-access-key-id"].Severity != rule.Low {
		t.Error("override not applied")
	}
	if _, ok := ids["acme-internal-token"]; !ok {
		t.Error("new rule not added")
	}
	if len(m.Rules) != len(base.Rules) {
		t.Errorf("merged %d rules, want %d (one removed, one added)", len(m.Rules), len(base.Rules))
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse: whatever Parse accepts, Marshal writes back in a form Parse
// reads to an equal File (parse, re-marshal, parse is a fixed point).
func FuzzParse(f *testing.F) {
	f.Add(rule.DefaultBytes()[:4000])
	f.Add([]byte("version: 1\nrules:\n- {id: a, severity: high, keywords: [ab], regex: '(ab)', secretGroup: 1}\n"))
	f.Add([]byte("version: 1\nrules:\n- {id: b, severity: low, keywords: [xy], context: xy, secret: '[a-z]{8}', validate: assignment}\nallowlist: {stopwords: [test]}\n"))
	f.Add([]byte("version: 1\nrules:\n- {id: p, severity: high, target: path, regex: '\\.p12$', validate: pkcs12}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := rule.Parse(data)
		if err != nil {
			return
		}
		out, err := rule.Marshal(a)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		b, err := rule.Parse(out)
		if err != nil {
			t.Fatalf("re-Parse of marshalled file: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(a), normalize(b)) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", a, b)
		}
	})
}

// normalize maps nil and empty slices together (YAML cannot tell them apart).
func normalize(f *rule.File) *rule.File {
	c := *f
	c.Rules = nil
	for _, r := range f.Rules {
		if len(r.Keywords) == 0 {
			r.Keywords = nil
		}
		r.Allowlist = normAllow(r.Allowlist)
		c.Rules = append(c.Rules, r)
	}
	c.Allowlist = normAllow(f.Allowlist)
	return &c
}

func normAllow(a rule.Allowlist) rule.Allowlist {
	if len(a.Regexes) == 0 {
		a.Regexes = nil
	}
	if len(a.Stopwords) == 0 {
		a.Stopwords = nil
	}
	if len(a.Paths) == 0 {
		a.Paths = nil
	}
	return a
}
