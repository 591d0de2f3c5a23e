package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cofferhq/coffer/internal/scan/rule"
	"github.com/cofferhq/coffer/internal/scan/source"
)

func writeReport(opts Options, res *Result) error {
	switch opts.Format {
	case FormatJSON:
		return writeJSON(opts.Output, res, opts.ShowSecrets, opts.Version)
	case FormatSARIF:
		return writeSARIF(opts.Output, res, opts.ShowSecrets, opts.Version)
	}
	return writeTable(opts.Output, res, opts.ShowSecrets)
}

func secretText(f Finding, show bool) string {
	if show {
		return f.Secret.Reveal()
	}
	return f.Secret.Redacted()
}

// location renders file:line:col, plus the Secret key for manifests.
func location(f Finding) string {
	loc := fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Column)
	if k := f.Kubernetes; k != nil {
		name := k.Name
		if k.Namespace != "" {
			name = k.Namespace + "/" + name
		}
		loc += fmt.Sprintf(" (Secret %s %s.%s)", name, k.Field, k.Key)
	}
	return loc
}

// oneLine keeps a table cell on one line and printable.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func writeTable(w io.Writer, res *Result, show bool) error {
	if len(res.Findings) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tRULE\tLOCATION\tCOMMIT\tSECRET")
		for _, f := range res.Findings {
			commit := "-"
			if f.Commit != nil {
				commit = f.Commit.Hash[:min(len(f.Commit.Hash), 12)]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.RuleID, oneLine(location(f)), commit,
				oneLine(secretText(f, show)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintln(w, summary(res))
	return err
}

func summary(res *Result) string {
	var b strings.Builder
	if len(res.Findings) == 0 {
		b.WriteString("no secrets found")
	} else {
		counts := map[rule.Severity]int{}
		for _, f := range res.Findings {
			counts[f.Severity]++
		}
		var parts []string
		for _, s := range []rule.Severity{rule.Critical, rule.High, rule.Medium, rule.Low, rule.Info} {
			if counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			}
		}
		fmt.Fprintf(&b, "%d secret(s) found (%s)", len(res.Findings), strings.Join(parts, ", "))
	}
	st := res.Stats
	fmt.Fprintf(&b, "; %d input(s), %.1f MB in %.2fs", st.Items, float64(st.Bytes)/1e6, st.Duration.Seconds())
	if st.Binary > 0 {
		fmt.Fprintf(&b, ", %d binary skipped", st.Binary)
	}
	if st.Suppressed > 0 {
		fmt.Fprintf(&b, ", %d suppressed by baseline or allowlist", st.Suppressed)
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(&b, ", %d warning(s)", len(res.Warnings))
	}
	return b.String()
}

// jsonFinding is the JSON form of a Finding.
type jsonFinding struct {
	Fingerprint string         `json:"fingerprint"`
	Rule        string         `json:"rule"`
	Description string         `json:"description"`
	Family      string         `json:"family"`
	Severity    rule.Severity  `json:"severity"`
	File        string         `json:"file"`
	Line        int            `json:"line"`
	Column      int            `json:"column"`
	EndLine     int            `json:"endLine"`
	Commit      *source.Commit `json:"commit,omitempty"`
	Kubernetes  *KubeRef       `json:"kubernetes,omitempty"`
	Secret      string         `json:"secret"`
	Redacted    bool           `json:"redacted"`
}

type jsonReport struct {
	Version  int           `json:"version"`
	Tool     string        `json:"tool"`
	Findings []jsonFinding `json:"findings"`
	Warnings []Warning     `json:"warnings"`
	Stats    Stats         `json:"stats"`
}

func writeJSON(w io.Writer, res *Result, show bool, version string) error {
	rep := jsonReport{Version: 1, Tool: "coffer scan " + version, Findings: []jsonFinding{}, Warnings: res.Warnings, Stats: res.Stats}
	if rep.Warnings == nil {
		rep.Warnings = []Warning{}
	}
	rep.Tool = strings.TrimSpace(rep.Tool)
	for _, f := range res.Findings {
		rep.Findings = append(rep.Findings, jsonFinding{
			Fingerprint: f.Fingerprint, Rule: f.RuleID, Description: f.Description, Family: f.Family,
			Severity: f.Severity, File: f.File, Line: f.Line, Column: f.Column, EndLine: f.EndLine,
			Commit: f.Commit, Kubernetes: f.Kubernetes, Secret: secretText(f, show), Redacted: !show,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
