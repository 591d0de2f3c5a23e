// Package rule is the declarative rule file of coffer scan: the types a rule
// file decodes into, the strict loader, the embedded default rules, and the
// merge that lets a user file extend or override the defaults by id.
//
// A rule file is YAML:
//
//	version: 1
//	rules:
//	  - id: github-pat
//	    description: GitHub personal access token
//	    family: vcs
//	    severity: high
//	    keywords: [ghp_]
//	    regex: '\b(ghp_[A-Za-z0-9]{36})\b'
//	    secretGroup: 1
//	    entropy: 3.5
//	    validate: crc32-base62
//
// A rule either gives a full regex (with secretGroup naming the capture that
// holds the secret; 0 means the whole match) or the pair context/secret, from
// which an assignment pattern is built: an identifier containing context, an
// assignment operator (=, :, :=, =>, ...), optional quotes, then secret.
// Every content rule needs keywords: the scanner runs a rule's regex only
// near a place where one of its keywords occurs (case-insensitively), so
// every string the regex matches must contain one of them.
//
// target selects what the rule looks at: "content" (the default) scans file
// text; "path" matches regex against file paths and reports the file itself
// (after validate, if any, accepts the file's bytes); "secret-entry" applies
// to decoded Kubernetes Secret entries, with regex matched against the key
// name.
//
// Loading is strict: unknown fields, duplicate ids, bad regexes and unknown
// validators are errors, reported all at once.
package rule

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultRules []byte

// ErrInvalid is wrapped by every error Parse and Validate return for a rule
// file that decodes but does not make sense.
var ErrInvalid = errors.New("invalid rule file")

// Severity ranks a finding.
type Severity string

// Severities, most severe first.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Rank orders severities: critical is 4, info 0, unknown -1.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	case Info:
		return 0
	}
	return -1
}

// SARIFLevel is the SARIF result level of s: error for critical and high,
// warning for medium, note below.
func (s Severity) SARIFLevel() string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

// SecuritySeverity is the CVSS-like score GitHub code scanning ranks SARIF
// alerts by (the "security-severity" rule property).
func (s Severity) SecuritySeverity() string {
	switch s {
	case Critical:
		return "9.5"
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	case Low:
		return "3.0"
	}
	return "1.0"
}

// Targets a rule can apply to.
const (
	TargetContent     = "content"
	TargetPath        = "path"
	TargetSecretEntry = "secret-entry"
)

// Validators known to the detector. The scanner package implements them;
// the list lives here so a rule file is checked when it is loaded.
var Validators = []string{
	"pem",          // PEM private key that parses (PKCS#1, PKCS#8, SEC 1, OpenSSH, PGP)
	"jwt",          // three base64url parts, header and claims decode to JSON objects
	"crc32-base62", // GitHub/npm style token: last 6 chars are base62(crc32(body))
	"base64",       // secret decodes as standard base64
	"base64-pem",   // secret is base64 of a PEM private key that parses
	"basic-auth",   // secret is base64 of "user:password" with a real password
	"docker-auth",  // as basic-auth, for docker config "auth" fields
	"pkcs12",       // file bytes are a DER PKCS#12 PFX
	"assignment",   // generic value: not code, not a reference, not a placeholder
	"uri-password", // password part of a URL, not a placeholder or reference
}

// Allowlist suppresses candidates. Regexes and Stopwords apply to the
// secret, Paths (regexes) to the file path.
type Allowlist struct {
	Regexes   []string `yaml:"regexes,omitempty"`
	Stopwords []string `yaml:"stopwords,omitempty"`
	Paths     []string `yaml:"paths,omitempty"`
}

// Empty reports whether the allowlist allows nothing.
func (a Allowlist) Empty() bool {
	return len(a.Regexes) == 0 && len(a.Stopwords) == 0 && len(a.Paths) == 0
}

// Rule is one detector.
type Rule struct {
	ID          string    `yaml:"id"`
	Description string    `yaml:"description,omitempty"`
	Family      string    `yaml:"family,omitempty"`
	Severity    Severity  `yaml:"severity,omitempty"`
	Target      string    `yaml:"target,omitempty"`
	Keywords    []string  `yaml:"keywords,omitempty"`
	Regex       string    `yaml:"regex,omitempty"`
	SecretGroup int       `yaml:"secretGroup,omitempty"`
	Context     string    `yaml:"context,omitempty"`
	Secret      string    `yaml:"secret,omitempty"`
	Entropy     float64   `yaml:"entropy,omitempty"`
	Validate    string    `yaml:"validate,omitempty"`
	Window      int       `yaml:"window,omitempty"`
	Generic     bool      `yaml:"generic,omitempty"`
	Disabled    bool      `yaml:"disabled,omitempty"`
	Allowlist   Allowlist `yaml:"allowlist,omitempty"`
}

// MaxWindow bounds Rule.Window: how far past a keyword a multi-line match
// may reach.
const MaxWindow = 32 << 10

// File is a decoded rule file.
type File struct {
	Version   int       `yaml:"version"`
	Rules     []Rule    `yaml:"rules"`
	Allowlist Allowlist `yaml:"allowlist,omitempty"`
}

// Default returns the embedded default rule file.
func Default() (*File, error) {
	f, err := Parse(defaultRules)
	if err != nil {
		return nil, fmt.Errorf("default rules: %w", err)
	}
	return f, nil
}

// DefaultBytes returns the embedded default rule file as YAML.
func DefaultBytes() []byte { return bytes.Clone(defaultRules) }

// Parse decodes a rule file strictly and validates it.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Marshal encodes f as YAML that Parse reads back to an equal File.
func Marshal(f *File) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Validate reports every problem in f at once.
func (f *File) Validate() error {
	var errs []error
	if f.Version != 1 {
		errs = append(errs, fmt.Errorf("version %d: want 1", f.Version))
	}
	seen := make(map[string]bool, len(f.Rules))
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.ID != "" && seen[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q: duplicate id", r.ID))
		}
		seen[r.ID] = true
		if err := r.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := f.Allowlist.validate(); err != nil {
		errs = append(errs, fmt.Errorf("allowlist: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,79}$`)

// Check validates one rule. A disabled rule needs only an id: it exists to
// switch a default rule off.
func (r *Rule) Check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !idRE.MatchString(r.ID) {
		add("id %q: want lowercase letters, digits, '.' and '-'", r.ID)
	}
	if r.Disabled {
		return joinRule(r.ID, errs)
	}
	if r.Severity.Rank() < 0 {
		add("severity %q: want critical, high, medium, low or info", r.Severity)
	}
	switch r.Target {
	case "", TargetContent:
		if r.Regex == "" && r.Secret == "" {
			add("needs regex, or context and secret")
		}
		if r.Regex != "" && (r.Context != "" || r.Secret != "") {
			add("regex and context/secret are exclusive")
		}
		if r.Regex == "" && (r.Context == "" || r.Secret == "") {
			add("context and secret go together")
		}
		if len(r.Keywords) == 0 {
			add("content rules need keywords")
		}
	case TargetPath, TargetSecretEntry:
		if r.Regex == "" {
			add("target %s needs regex", r.Target)
		}
		if r.Context != "" || r.Secret != "" {
			add("target %s takes no context/secret", r.Target)
		}
	default:
		add("target %q: want content, path or secret-entry", r.Target)
	}
	for _, k := range r.Keywords {
		if len(k) < 2 {
			add("keyword %q: shorter than 2 bytes", k)
		}
	}
	if re, err := r.Compile(); err != nil {
		add("%v", err)
	} else if r.SecretGroup < 0 || r.SecretGroup > re.NumSubexp() {
		add("secretGroup %d: regex has %d groups", r.SecretGroup, re.NumSubexp())
	}
	if r.Entropy < 0 || r.Entropy > 8 {
		add("entropy %v: want 0..8 bits per byte", r.Entropy)
	}
	if r.Validate != "" && !slices.Contains(Validators, r.Validate) {
		add("validate %q: want one of %s", r.Validate, strings.Join(Validators, ", "))
	}
	if r.Window < 0 || r.Window > MaxWindow {
		add("window %d: want 0..%d", r.Window, MaxWindow)
	}
	if err := r.Allowlist.validate(); err != nil {
		add("allowlist: %v", err)
	}
	return joinRule(r.ID, errs)
}

func joinRule(id string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("rule %q: %w", id, errors.Join(errs...))
}

func (a Allowlist) validate() error {
	var errs []error
	for _, s := range slices.Concat(a.Regexes, a.Paths) {
		if _, err := regexp.Compile(s); err != nil {
			errs = append(errs, fmt.Errorf("regex %q: %w", s, err))
		}
	}
	for _, s := range a.Stopwords {
		if s == "" {
			errs = append(errs, errors.New("empty stopword"))
		}
	}
	return errors.Join(errs...)
}

// assignment is the pattern a context/secret rule expands to. %s are the
// context and the secret. The identifier may carry a prefix and suffix
// (DB_PASSWORD, dbPassword, "password":), then an operator, then an
// optionally quoted value ending at a delimiter.
const assignment = `(?im)[\w.-]{0,40}?(?:%s)[\w.-]{0,30}["']?\s{0,3}(?:=|:=|::=|:|=>|\?=|\|\|=)\s{0,3}["'\x60]?(%s)(?:["'\x60\s;,)}\]<]|\\[nrt]|$)`

// anchored is the assignment pattern without the identifier prefix, for
// matching at a keyword occurrence.
const anchored = `(?im)\A(?:%s)[\w.-]*["']?\s{0,3}(?:=|:=|::=|:|=>|\?=|\|\|=)\s{0,3}["'\x60]?(%s)(?:["'\x60\s;,)}\]<]|\\[nrt]|$)`

// Anchored reports whether the rule is a context/secret rule, whose
// matches start at an occurrence of one of its keywords (after an
// optional identifier prefix), and returns the pattern to run there.
func (r *Rule) Anchored() (string, bool) {
	if r.Regex != "" || r.Secret == "" {
		return "", false
	}
	return fmt.Sprintf(anchored, r.Context, "(?-i:"+r.Secret+")"), true
}

// Compile returns the rule's regex: Regex, or the assignment pattern built
// from Context and Secret.
func (r *Rule) Compile() (*regexp.Regexp, error) {
	src := r.Pattern()
	if src == "" {
		return nil, errors.New("empty regex")
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("regex: %w", err)
	}
	return re, nil
}

// Pattern returns the regex source the rule compiles to.
func (r *Rule) Pattern() string {
	if r.Regex != "" || r.Secret == "" {
		return r.Regex
	}
	return fmt.Sprintf(assignment, r.Context, "(?-i:"+r.Secret+")")
}

// Group returns the capture group that holds the secret.
func (r *Rule) Group() int {
	if r.Regex == "" && r.Secret != "" {
		return 1
	}
	return r.SecretGroup
}

// Merge returns base with overlay applied: a rule in overlay replaces the
// base rule of the same id (or is added), a disabled overlay rule removes
// it, and the allowlists are concatenated. Neither input is modified.
func Merge(base, overlay *File) *File {
	out := &File{Version: 1}
	idx := make(map[string]int)
	for _, r := range base.Rules {
		idx[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	for _, r := range overlay.Rules {
		if i, ok := idx[r.ID]; ok {
			out.Rules[i] = r
			continue
		}
		idx[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	out.Rules = slices.DeleteFunc(out.Rules, func(r Rule) bool { return r.Disabled })
	out.Allowlist = Allowlist{
		Regexes:   slices.Concat(base.Allowlist.Regexes, overlay.Allowlist.Regexes),
		Stopwords: slices.Concat(base.Allowlist.Stopwords, overlay.Allowlist.Stopwords),
		Paths:     slices.Concat(base.Allowlist.Paths, overlay.Allowlist.Paths),
	}
	return out
}
