package posture

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
)

// maxDrawnPaths bounds the paths drawn per target.
const maxDrawnPaths = 30

type svgNode struct {
	X, Y, W, H int
	Label      string
	Title      string
	Class      string
}

type svgEdge struct {
	X1, Y1, X2, Y2 int
	LX, LY         int
	Label          string
	Title          string
}

type svgGraph struct {
	Target  string
	Width   int
	Height  int
	Nodes   []svgNode
	Edges   []svgEdge
	Omitted int
}

type pathRef struct {
	subject string
	allowed bool
	acc     Access
}

// graphs lays out, for every target, the paths that reach it: subjects on
// the left, the target on the right, the steps in between in columns.
func graphs(rep *Report, allowed map[string]bool) []svgGraph {
	by := map[string][]pathRef{}
	for _, sa := range rep.Access {
		for _, acc := range sa.Access {
			t := acc.Target.String()
			by[t] = append(by[t], pathRef{subject: sa.Subject.String(), allowed: allowed[sa.Subject.Key()], acc: acc})
		}
	}
	targets := make([]string, 0, len(by))
	for t := range by {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	const colW, nodeW, nodeH, rowH, pad = 250, 210, 34, 46, 12
	var out []svgGraph
	for _, t := range targets {
		refs := by[t]
		sort.SliceStable(refs, func(i, j int) bool {
			if refs[i].allowed != refs[j].allowed {
				return !refs[i].allowed
			}
			return len(refs[i].acc.Path) < len(refs[j].acc.Path)
		})
		g := svgGraph{Target: t}
		if len(refs) > maxDrawnPaths {
			g.Omitted = len(refs) - maxDrawnPaths
			refs = refs[:maxDrawnPaths]
		}
		cols := 1
		for _, r := range refs {
			cols = max(cols, len(r.acc.Path)+1)
		}
		rows := make([]int, cols)
		pos := map[string][2]int{}
		place := func(col int, label, class string) [2]int {
			k := fmt.Sprint(col, "|", label)
			if p, ok := pos[k]; ok {
				return p
			}
			p := [2]int{pad + col*colW, pad + rows[col]*rowH}
			rows[col]++
			pos[k] = p
			g.Nodes = append(g.Nodes, svgNode{X: p[0], Y: p[1], W: nodeW, H: nodeH, Label: shorten(label, 30), Title: label, Class: class})
			return p
		}
		for _, r := range refs {
			class := "subject"
			if r.allowed {
				class = "allowed"
			}
			prev := place(0, r.subject, class)
			for i, s := range r.acc.Path {
				col, cls := i+1, "step"
				if i == len(r.acc.Path)-1 {
					col, cls = cols-1, "target"
				}
				cur := place(col, s.To, cls)
				title := s.Reason
				if len(s.Via) > 0 {
					title += " [" + strings.Join(s.Via, "; ") + "]"
				}
				g.Edges = append(g.Edges, svgEdge{
					X1: prev[0] + nodeW, Y1: prev[1] + nodeH/2, X2: cur[0], Y2: cur[1] + nodeH/2,
					LX: (prev[0] + nodeW + cur[0]) / 2, LY: (prev[1]+cur[1])/2 + nodeH/2 - 4,
					Label: s.Kind, Title: title,
				})
				prev = cur
			}
		}
		maxRows := 1
		for _, n := range rows {
			maxRows = max(maxRows, n)
		}
		g.Width = 2*pad + (cols-1)*colW + nodeW
		g.Height = 2*pad + maxRows*rowH
		out = append(out, g)
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

var htmlFuncs = template.FuncMap{
	"pct": func(v int) string { return fmt.Sprintf("%d%%", v) },
}

var htmlReport = template.Must(template.New("report").Funcs(htmlFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>coffer posture: {{.Rep.Source}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1d2430}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
.muted{color:#667}.level{font-size:2.2em;font-weight:600}.score{font-size:1.3em}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border-bottom:1px solid #e4e6ee;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f5f9}.sev{font-weight:600;text-transform:uppercase;font-size:.8em}
.critical{color:#a10b1d}.high{color:#c4320a}.medium{color:#9a6700}.low{color:#3b6cb4}.info{color:#667}
.pass{color:#1a7f37}.fail{color:#a10b1d}.not-evaluated{color:#9a6700}
.bar{background:#eef;height:10px;border-radius:5px;width:240px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:10px;border-radius:5px;background:#4a7bd0}
ul.ev{margin:.2em 0 .2em 1.2em;padding:0;color:#445;font-size:.92em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
svg text{font:11px system-ui,sans-serif}svg .lbl{fill:#556;font-size:10px}
svg rect.subject{fill:#fde8e8;stroke:#c4320a}svg rect.allowed{fill:#eef5ee;stroke:#1a7f37}
svg rect.step{fill:#f4f5f9;stroke:#889}svg rect.target{fill:#fff4d6;stroke:#9a6700}
svg line{stroke:#889;stroke-width:1.2}
</style></head><body>
<h1>coffer posture</h1>
<div class="muted">{{.Rep.Source}} · {{.Rep.Objects}} objects · {{.Rep.Taken.Format "2006-01-02 15:04 MST"}}</div>
<p><span class="level">Level {{.Rep.Maturity.Level}}: {{.Rep.Maturity.Name}}</span> &nbsp; <span class="score">score {{.Rep.Maturity.Score}}/100</span></p>
<table><tr><th>Level</th><th>Status</th><th>Gates</th></tr>
{{range .Rep.Maturity.Levels}}<tr><td>{{.Level}} {{.Name}}</td><td class="{{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}passed{{else}}blocked{{end}}</td>
<td>{{range .Gates}}<span class="{{.Status}}">{{.Check}}{{if eq .Status "fail"}} ({{.Failed}}){{end}}{{if eq .Status "not-evaluated"}} (not evaluated){{end}}</span> {{end}}</td></tr>{{end}}
</table>
<h2>Aspects</h2>
<table>{{range .Rep.Maturity.Aspects}}<tr><td>{{.Aspect}}</td><td>{{if .Checks}}<span class="bar"><span style="width:{{pct .Score}}"></span></span> {{.Score}}{{else}}n/a{{end}}</td><td class="muted">{{.Checks}} checks, {{.Failing}} failing</td></tr>{{end}}</table>
{{if .Rep.Maturity.NextFixes}}<h2>Next fixes</h2><ol>
{{range .Rep.Maturity.NextFixes}}<li><span class="sev {{.Severity}}">{{.Severity}}</span> <b>{{.Check}}</b>: {{.Title}} ({{if eq .Status "not-evaluated"}}not evaluated{{else}}{{.Failed}} finding(s){{end}})<br>{{.Remediation}}</li>{{end}}
</ol>{{end}}
<h2>Paths to secret contents</h2>
<p class="muted">Each picture shows who reaches the Secrets named on the right, and how; hover an arrow for the reason and the bindings. Red: not in the allowlist; green: allowed.</p>
{{range .Graphs}}<details{{if .Open}} open{{end}}><summary>{{.G.Target}} ({{len .G.Edges}} steps{{if .G.Omitted}}, {{.G.Omitted}} more paths not drawn{{end}})</summary>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.G.Width}}" height="{{.G.Height}}" viewBox="0 0 {{.G.Width}} {{.G.Height}}">
<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#889"/></marker></defs>
{{range .G.Edges}}<g><title>{{.Title}}</title><line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" marker-end="url(#a)"/><text class="lbl" x="{{.LX}}" y="{{.LY}}" text-anchor="middle">{{.Label}}</text></g>
{{end}}{{range .G.Nodes}}<g><title>{{.Title}}</title><rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" rx="5"/><text x="{{.X}}" y="{{.Y}}" dx="8" dy="21">{{.Label}}</text></g>
{{end}}</svg></details>
{{else}}<p>No subject reaches secret contents.</p>{{end}}
<h2>Checks</h2>
<table><tr><th>Status</th><th>Severity</th><th>Check</th><th>CIS</th><th>Aspect</th><th>Failed</th><th>Note</th></tr>
{{range .Rep.Checks}}<tr><td class="{{.Status}}">{{.Status}}</td><td class="sev {{.Severity}}">{{.Severity}}</td><td><b>{{.ID}}</b><br><span class="muted">{{.Title}}</span></td><td>{{.CIS}}</td><td>{{.Aspect}}</td><td>{{.Failed}}/{{.Evaluated}}</td><td>{{.Note}}</td></tr>{{end}}
</table>
<h2>Findings ({{len .Rep.Findings}})</h2>
<table><tr><th>Severity</th><th>Check</th><th>Finding</th></tr>
{{range .Rep.Findings}}<tr><td class="sev {{.Severity}}">{{.Severity}}</td><td>{{.Check}}{{if .CIS}}<br><span class="muted">CIS {{.CIS}}</span>{{end}}</td><td>{{.Message}}{{if .Evidence}}<ul class="ev">{{range .Evidence}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>{{end}}
</table>
{{if or .Rep.Gaps .Rep.Problems}}<h2>Incomplete input</h2><ul>
{{range .Rep.Gaps}}<li>could not read {{.Resource}}{{if .Namespace}} in namespace {{.Namespace}}{{end}}: {{.Reason}}</li>{{end}}
{{range .Rep.Problems}}<li>{{.Source}}: {{.Reason}}</li>{{end}}
</ul>{{end}}
<p class="muted">{{.Tool}}</p>
</body></html>
`))

// WriteHTML writes a self-contained HTML report (no external assets) that
// draws the paths to each target's Secrets.
func WriteHTML(w io.Writer, rep *Report, o WriteOptions) error {
	allowed := map[string]bool{}
	for _, nr := range rep.Readers {
		for _, r := range nr.Readers {
			if r.Allowed {
				allowed[r.Subject.Key()] = true
			}
		}
	}
	type drawn struct {
		G    svgGraph
		Open bool
	}
	var gs []drawn
	for i, g := range graphs(rep, allowed) {
		gs = append(gs, drawn{G: g, Open: i < 3})
	}
	return htmlReport.Execute(w, map[string]any{
		"Rep":    rep,
		"Graphs": gs,
		"Tool":   strings.TrimSpace("coffer posture " + o.Version),
	})
}
