package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

// DefaultConfigFile is read from the working directory when no config file
// is named.
const DefaultConfigFile = ".coffer-scan.yaml"

// ErrConfig is wrapped by config and baseline file errors.
var ErrConfig = errors.New("scan: invalid config")

// Config is the allowlist configuration file:
//
//	rules: extra-rules.yaml      # merged over the defaults, like --rules
//	disable: [generic-secret]    # rule ids to switch off
//	allowlist:
//	  paths: ['^vendor/', '_test\.go$']   # regexes on file paths
//	  regexes: ['^AKIA.*TEST$']           # regexes on secrets
//	  stopwords: [localdev]               # substrings of secrets
//	  fingerprints: [3f1c...]             # findings to accept
//	  commits: [a1b2c3...]                # commits whose findings to accept
type Config struct {
	Rules     string          `yaml:"rules"`
	Disable   []string        `yaml:"disable"`
	Allowlist ConfigAllowlist `yaml:"allowlist"`
}

// ConfigAllowlist extends the rule allowlist with finding identities.
type ConfigAllowlist struct {
	rule.Allowlist `yaml:",inline"`
	Fingerprints   []string `yaml:"fingerprints"`
	Commits        []string `yaml:"commits"`
}

// LoadConfig reads a config file strictly. An empty name reads
// DefaultConfigFile if it exists and returns an empty config if not.
func LoadConfig(name string) (*Config, error) {
	explicit := name != ""
	if !explicit {
		name = DefaultConfigFile
	}
	data, err := os.ReadFile(name)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return &Config{}, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return ParseConfig(data, name)
}

// ParseConfig decodes config data strictly and reports every problem.
func ParseConfig(data []byte, name string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	var errs []error
	for _, s := range slices.Concat(c.Allowlist.Regexes, c.Allowlist.Paths) {
		if _, err := regexp.Compile(s); err != nil {
			errs = append(errs, fmt.Errorf("allowlist regex %q: %v", s, err))
		}
	}
	for _, s := range c.Allowlist.Stopwords {
		if s == "" {
			errs = append(errs, errors.New("allowlist: empty stopword"))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, name, errors.Join(errs...))
	}
	return &c, nil
}

func (c *Config) suppressed(f *Finding) bool {
	if slices.Contains(c.Allowlist.Fingerprints, f.Fingerprint) {
		return true
	}
	if f.Commit != nil {
		for _, h := range c.Allowlist.Commits {
			if len(h) >= 7 && len(h) <= len(f.Commit.Hash) && f.Commit.Hash[:len(h)] == h {
				return true
			}
		}
	}
	return false
}

// Baseline is a set of accepted findings, written by --write-baseline and
// read by --baseline. A JSON report (--format json) is also a valid
// baseline.
type Baseline struct {
	Version  int             `json:"version"`
	Findings []BaselineEntry `json:"findings"`
}

// BaselineEntry identifies one accepted finding; only Fingerprint is used
// for matching, the rest helps people review the file.
type BaselineEntry struct {
	Fingerprint string `json:"fingerprint"`
	Rule        string `json:"rule,omitempty"`
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
	Commit      string `json:"commit,omitempty"`
}

// ReadBaseline reads a baseline file.
func ReadBaseline(name string) (*Baseline, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: baseline: %v", ErrConfig, err)
	}
	var raw struct {
		Version  int               `json:"version"`
		Findings []json.RawMessage `json:"findings"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: baseline %s: %v (want the JSON written by --write-baseline)", ErrConfig, name, err)
	}
	b := &Baseline{Version: raw.Version}
	for i, m := range raw.Findings {
		var e BaselineEntry
		if err := json.Unmarshal(m, &e); err != nil || e.Fingerprint == "" {
			return nil, fmt.Errorf("%w: baseline %s: finding %d has no fingerprint", ErrConfig, name, i)
		}
		b.Findings = append(b.Findings, e)
	}
	return b, nil
}

// Filter removes the findings the baseline accepts and returns how many.
func (b *Baseline) Filter(res *Result) int {
	set := make(map[string]bool, len(b.Findings))
	for _, e := range b.Findings {
		set[e.Fingerprint] = true
	}
	n := len(res.Findings)
	res.Findings = slices.DeleteFunc(res.Findings, func(f Finding) bool { return set[f.Fingerprint] })
	return n - len(res.Findings)
}

// WriteBaseline writes findings as a baseline file.
func WriteBaseline(name string, findings []Finding) error {
	b := Baseline{Version: 1, Findings: []BaselineEntry{}}
	seen := map[string]bool{}
	for _, f := range findings {
		if seen[f.Fingerprint] {
			continue
		}
		seen[f.Fingerprint] = true
		e := BaselineEntry{Fingerprint: f.Fingerprint, Rule: f.RuleID, File: f.File, Line: f.Line}
		if f.Commit != nil {
			e.Commit = f.Commit.Hash
		}
		b.Findings = append(b.Findings, e)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(name, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("scan: write baseline: %w", err)
	}
	return nil
}
