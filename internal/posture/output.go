package posture

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

// Formats of the report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatSARIF = "sarif"
	FormatHTML  = "html"
)

// Formats lists the report formats.
var Formats = []string{FormatTable, FormatJSON, FormatSARIF, FormatHTML}

// WriteOptions tune the report writers.
type WriteOptions struct {
	// Version of coffer, for JSON and SARIF.
	Version string
	// Limit bounds the findings listed per check and the subjects listed
	// with paths in the table; 0 means 20. JSON, SARIF and HTML list all
	// findings.
	Limit int
}

// Write writes rep in format.
func Write(w io.Writer, rep *Report, format string, o WriteOptions) error {
	switch format {
	case FormatJSON:
		return WriteJSON(w, rep, o)
	case FormatSARIF:
		return WriteSARIF(w, rep, o)
	case FormatHTML:
		return WriteHTML(w, rep, o)
	case FormatTable, "":
		return WriteTable(w, rep, o)
	}
	return fmt.Errorf("posture: unknown format %q: want %s", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report, o WriteOptions) error {
	r := *rep
	r.Tool = strings.TrimSpace("coffer posture " + o.Version)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&r)
}

// oneLine keeps a cell on one line and printable.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if max > 3 && len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}

// WriteTable writes the report for people.
func WriteTable(w io.Writer, rep *Report, o WriteOptions) error {
	limit := o.Limit
	if limit <= 0 {
		limit = 20
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := rep.Maturity
	p("coffer posture: %s\n%d objects read %s\n\n", oneLine(rep.Source, 200), rep.Objects, rep.Taken.Format("2006-01-02 15:04 MST"))
	p("Maturity: level %d (%s), score %d/100\n", m.Level, m.Name, m.Score)
	for _, l := range m.Levels {
		state := "passed"
		if !l.Passed {
			var b []string
			for _, g := range l.Gates {
				switch g.Status {
				case StatusFail:
					b = append(b, fmt.Sprintf("%s (%d)", g.Check, g.Failed))
				case StatusNotEvaluated:
					b = append(b, g.Check+" (not evaluated)")
				}
			}
			state = "blocked by " + strings.Join(b, ", ")
		}
		p("  %d %-18s %s\n", l.Level, l.Name, state)
	}
	var asp []string
	for _, a := range m.Aspects {
		if a.Checks == 0 {
			asp = append(asp, a.Aspect+" n/a")
			continue
		}
		asp = append(asp, fmt.Sprintf("%s %d", a.Aspect, a.Score))
	}
	p("Aspects: %s\n", strings.Join(asp, " · "))
	if len(m.NextFixes) > 0 {
		p("\nNext fixes:\n")
		for i, f := range m.NextFixes {
			what := fmt.Sprintf("%d finding(s)", f.Failed)
			if f.Status == StatusNotEvaluated {
				what = "not evaluated"
			}
			p("  %d. [%s] %s: %s (%s)\n     %s\n", i+1, f.Severity, f.Check, f.Title, what, f.Remediation)
		}
	}

	p("\nChecks:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tSEVERITY\tCHECK\tCIS\tFAILED\tNOTE")
	for _, c := range rep.Checks {
		cis := c.CIS
		if cis == "" {
			cis = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%s\n", c.Status, c.Severity, c.ID, cis, c.Failed, c.Evaluated, oneLine(c.Note, 70))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(rep.Findings) > 0 {
		p("\nFindings (%d):\n", len(rep.Findings))
		shown := map[string]int{}
		for _, f := range rep.Findings {
			shown[f.Check]++
			if shown[f.Check] > limit {
				continue
			}
			cis := ""
			if f.CIS != "" {
				cis = " CIS " + f.CIS
			}
			p("  [%s] %s%s: %s\n", f.Severity, f.Check, cis, oneLine(f.Message, 200))
			for i, e := range f.Evidence {
				if i == 4 {
					p("      ... %d more\n", len(f.Evidence)-4)
					break
				}
				p("      %s\n", oneLine(e, 240))
			}
		}
		for _, c := range rep.Checks {
			if n := shown[c.ID]; n > limit {
				p("  ... %d more %s finding(s); use --format json for all\n", n-limit, c.ID)
			}
		}
	}

	if len(rep.Readers) > 0 {
		p("\nWho can reach secret contents (subjects not in the allowlist):\n")
		for _, nr := range rep.Readers {
			var rs []string
			for _, r := range nr.Readers {
				if r.Allowed {
					continue
				}
				how := "reads"
				if !r.Direct {
					how = fmt.Sprintf("%s, %d step(s)", r.First, r.Steps)
				}
				rs = append(rs, fmt.Sprintf("%s (%s)", r.Subject, how))
			}
			if len(rs) == 0 {
				continue
			}
			ns := "every namespace"
			if nr.Namespace != "" {
				ns = "namespace " + nr.Namespace
			}
			extra := ""
			if len(rs) > limit {
				extra = fmt.Sprintf(" and %d more", len(rs)-limit)
				rs = rs[:limit]
			}
			p("  %s (%d Secrets): %s%s\n", ns, nr.Secrets, strings.Join(rs, ", "), extra)
		}
	}

	if len(rep.Gaps) > 0 || len(rep.Problems) > 0 || len(rep.RBACProblems) > 0 {
		p("\nIncomplete input:\n")
		for _, g := range rep.Gaps {
			where := "all namespaces"
			if g.Namespace != "" {
				where = "namespace " + g.Namespace
			}
			p("  could not read %s in %s: %s\n", g.Resource, where, g.Reason)
		}
		for i, pr := range rep.Problems {
			if i == limit {
				p("  ... %d more input problem(s)\n", len(rep.Problems)-limit)
				break
			}
			p("  %s: %s\n", oneLine(pr.Source, 120), oneLine(pr.Reason, 160))
		}
		for i, pr := range rep.RBACProblems {
			if i == limit {
				p("  ... %d more RBAC problem(s)\n", len(rep.RBACProblems)-limit)
				break
			}
			p("  rbac: %s\n", oneLine(pr, 200))
		}
	}
	_, err := fmt.Fprintf(w, "\n%s; analysed in %.2fs\n", summary(rep), rep.Duration.Seconds())
	return err
}

func summary(rep *Report) string {
	if len(rep.Findings) == 0 {
		return "no findings"
	}
	counts := map[rule.Severity]int{}
	for _, f := range rep.Findings {
		counts[f.Severity]++
	}
	var parts []string
	for _, s := range []rule.Severity{rule.Critical, rule.High, rule.Medium, rule.Low, rule.Info} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return fmt.Sprintf("%d finding(s) (%s)", len(rep.Findings), strings.Join(parts, ", "))
}

// WritePaths writes each subject's paths to secret contents.
func WritePaths(w io.Writer, access []SubjectAccess) error {
	for _, sa := range access {
		fmt.Fprintf(w, "%s\n", sa.Subject)
		for _, acc := range sa.Access {
			fmt.Fprintf(w, "  -> %s\n", acc.Target)
			for i, s := range acc.Path {
				fmt.Fprintf(w, "     %d. [%s] %s -> %s\n", i+1, s.Kind, s.From, s.To)
				if s.Reason != "" {
					fmt.Fprintf(w, "        %s\n", oneLine(s.Reason, 300))
				}
				for _, v := range s.Via {
					fmt.Fprintf(w, "        via %s\n", oneLine(v, 300))
				}
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d subject(s) can reach secret contents\n", len(access))
	return err
}
