// Package scan is coffer's leak scanner: it finds credentials that belong in
// coffer but sit in files, in git history or in Kubernetes manifests.
//
// Run takes Options (what to scan, rules, output format, baseline, config)
// and returns a Result; the command line in internal/cli is a thin layer
// over it. The pieces live in subpackages:
//
//   - rule: the declarative rule file (embedded defaults plus user files)
//   - detect: the engine (keyword automaton, windowed regexes, entropy,
//     placeholder filters and structural validators) over bounded-memory
//     streams
//   - source: files and directories, git history, staged changes, ranges
//   - manifest: Kubernetes Secrets in YAML and JSON, with data decoded
//
// Findings carry a fingerprint, the hash of (rule id, path, secret hash),
// which does not change when lines move; baselines and config allowlists
// refer to it. Secrets never leave this package unredacted unless
// Options.ShowSecrets is set.
package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/scan/source"
)

// ErrFindings is returned by Run, after the report is written, when the
// scan found secrets that are not in the baseline or allowlisted. The
// command maps it to exit code 1; any other error is exit code 2.
var ErrFindings = errors.New("scan: secrets found")

// ErrUsage is wrapped by errors in Options.
var ErrUsage = errors.New("scan: invalid options")

// Formats of the report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatSARIF = "sarif"
)

// Options say what to scan and how to report it.
type Options struct {
	// Paths are files and directories; "-" reads standard input. Ignored
	// when a git mode is set.
	Paths []string
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Git scans the full history of Repo (every ref).
	Git bool
	// Staged scans the lines added in Repo's index (pre-commit).
	Staged bool
	// Since scans commits in Since..HEAD of Repo (a "A..B" range as is).
	Since string
	// Repo is the repository for git modes; default ".".
	Repo string
	// Gitignore skips paths ignored by .gitignore in directory scans.
	Gitignore bool
	// NoSkip also scans lock files and binary formats by name.
	NoSkip bool
	// NoManifests turns off decoding of Kubernetes Secrets.
	NoManifests bool
	// RulesFile extends or overrides the default rules by id.
	RulesFile string
	// ConfigFile is the allowlist config; when empty, .coffer-scan.yaml in
	// the working directory is used if present.
	ConfigFile string
	// Baseline suppresses findings whose fingerprint it lists.
	Baseline string
	// WriteBaseline writes the findings of this run as a baseline file.
	WriteBaseline string
	// Format is table (default), json or sarif; Output receives it.
	Format string
	Output io.Writer
	// ShowSecrets prints secrets unredacted.
	ShowSecrets bool
	// Workers is the number of scanning goroutines; 0 means all cores.
	Workers int
	// Progress, when set, receives a live progress line (a terminal).
	Progress io.Writer
	// Warnings, when set, receives one line per skipped input.
	Warnings io.Writer
	// Logger receives debug detail; nil discards.
	Logger *slog.Logger
	// Version is reported in SARIF and JSON output.
	Version string
}

// Finding is one detected secret.
type Finding struct {
	RuleID      string
	Description string
	Family      string
	Severity    rule.Severity
	File        string
	Line        int
	Column      int
	EndLine     int
	Commit      *source.Commit
	Secret      detect.Secret
	Fingerprint string
	// Kubernetes is set for values decoded from a Secret manifest.
	Kubernetes *KubeRef
}

// KubeRef locates a finding inside a Kubernetes Secret.
type KubeRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Field     string `json:"field"`
	Key       string `json:"key"`
}

// Warning is an input that was skipped or read in part.
type Warning struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Stats summarise a run.
type Stats struct {
	Items       int64         `json:"items"`
	Bytes       int64         `json:"bytes"`
	Binary      int64         `json:"skippedBinary"`
	Suppressed  int           `json:"suppressed"`
	Duration    time.Duration `json:"-"`
	DurationSec float64       `json:"seconds"`
}

// Result is what Run found.
type Result struct {
	Findings []Finding
	Warnings []Warning
	Stats    Stats
	// Rules is the number of active rules.
	Rules int
}

// Fingerprint returns the stable identity of a finding: a hash of the rule
// id, the path and the secret's hash. Line numbers are left out so edits
// around a secret do not change it.
func Fingerprint(ruleID, path string, s detect.Secret) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", ruleID, path, s.Hash())
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Run scans what opts name, writes the report and returns the result. It
// returns ErrFindings (with the result) when unsuppressed findings remain.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	eng, err := buildEngine(opts.RulesFile, cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s := newScanner(eng, opts, cfg)
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	res := s.result()
	res.Rules = len(eng.Rules())
	if opts.Baseline != "" {
		b, err := ReadBaseline(opts.Baseline)
		if err != nil {
			return nil, err
		}
		res.Stats.Suppressed += b.Filter(res)
	}
	res.Stats.Duration = time.Since(start)
	res.Stats.DurationSec = res.Stats.Duration.Seconds()
	if opts.WriteBaseline != "" {
		if err := WriteBaseline(opts.WriteBaseline, res.Findings); err != nil {
			return res, err
		}
	}
	if err := writeReport(opts, res); err != nil {
		return res, fmt.Errorf("scan: write report: %w", err)
	}
	if len(res.Findings) > 0 && opts.WriteBaseline == "" {
		return res, ErrFindings
	}
	return res, nil
}

func (o *Options) normalize() error {
	var errs []error
	if o.Format == "" {
		o.Format = FormatTable
	}
	switch o.Format {
	case FormatTable, FormatJSON, FormatSARIF:
	default:
		errs = append(errs, fmt.Errorf("format %q: want table, json or sarif", o.Format))
	}
	git := 0
	for _, b := range []bool{o.Git, o.Staged, o.Since != ""} {
		if b {
			git++
		}
	}
	if git > 1 {
		errs = append(errs, errors.New("--git, --staged and --since exclude each other"))
	}
	if git > 0 && len(o.Paths) > 0 {
		errs = append(errs, errors.New("paths cannot be combined with --git, --staged or --since (use --repo)"))
	}
	if o.Repo == "" {
		o.Repo = "."
	}
	if git == 0 && len(o.Paths) == 0 {
		o.Paths = []string{"."}
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers %d: want at most 256", o.Workers))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrUsage, errors.Join(errs...))
	}
	return nil
}

// buildEngine merges default rules, the config's and the user's rule file,
// applies the config's disable list and allowlist, and compiles.
func buildEngine(rulesFile string, cfg *Config) (*detect.Engine, error) {
	f, err := rule.Default()
	if err != nil {
		return nil, err
	}
	for _, p := range []string{cfg.Rules, rulesFile} {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("scan: rules: %w", err)
		}
		user, err := rule.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("scan: rules %s: %w", p, err)
		}
		f = rule.Merge(f, user)
	}
	if len(cfg.Disable) > 0 {
		f.Rules = slices.DeleteFunc(f.Rules, func(r rule.Rule) bool { return slices.Contains(cfg.Disable, r.ID) })
	}
	f.Allowlist.Regexes = append(f.Allowlist.Regexes, cfg.Allowlist.Regexes...)
	f.Allowlist.Stopwords = append(f.Allowlist.Stopwords, cfg.Allowlist.Stopwords...)
	f.Allowlist.Paths = append(f.Allowlist.Paths, cfg.Allowlist.Paths...)
	eng, err := detect.New(f)
	if err != nil {
		return nil, fmt.Errorf("scan: rules: %w", err)
	}
	return eng, nil
}

// collector gathers findings and warnings from the workers.
type collector struct {
	mu         sync.Mutex // guards findings, warnings, suppressed
	findings   []Finding
	warnings   []Warning
	suppressed int
	out        io.Writer
	log        *slog.Logger
}

func (c *collector) warn(path string, err error) {
	msg := err.Error()
	c.log.Warn("scan: skipped input", "path", path, "reason", msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, Warning{Path: path, Message: msg})
	if c.out != nil {
		fmt.Fprintf(c.out, "coffer: warning: %s: %s\n", path, strings.TrimSpace(msg))
	}
}

func (c *collector) add(f Finding) {
	c.mu.Lock()
	c.findings = append(c.findings, f)
	c.mu.Unlock()
}
