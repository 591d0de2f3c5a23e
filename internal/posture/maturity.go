package posture

import (
	"math"
	"sort"

	"github.com/cofferhq/coffer/internal/scan/rule"
)

// LevelNames names the maturity levels 0 to 4.
var LevelNames = []string{"Exposed", "Contained", "Least privilege", "Managed lifecycle", "Ephemeral"}

// Maturity rolls the check results up: the level reached (every gate of
// it and of the levels below passes), a 0-100 score of severity-weighted
// pass rates overall and per aspect, and the next fixes.
type Maturity struct {
	Level   int           `json:"level"`
	Name    string        `json:"name"`
	Score   int           `json:"score"`
	Levels  []LevelResult `json:"levels"`
	Aspects []AspectScore `json:"aspects"`
	// NextFixes are the first three things to fix: blocking gates of the
	// lowest levels first, then by severity and number of findings.
	NextFixes []Fix `json:"nextFixes"`
}

// LevelResult is one level and its gates.
type LevelResult struct {
	Level  int    `json:"level"`
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Gates  []Gate `json:"gates"`
}

// Gate is a check a level requires to pass.
type Gate struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Failed int    `json:"failed"`
	Note   string `json:"note,omitempty"`
}

// AspectScore is the score of one aspect.
type AspectScore struct {
	Aspect  string `json:"aspect"`
	Score   int    `json:"score"`
	Checks  int    `json:"checks"`
	Failing int    `json:"failing"`
}

// Fix is a recommended next step.
type Fix struct {
	Check       string        `json:"check"`
	Title       string        `json:"title"`
	Severity    rule.Severity `json:"severity"`
	Level       int           `json:"level"`
	Failed      int           `json:"failed"`
	Status      string        `json:"status"`
	Remediation string        `json:"remediation"`
}

// severityWeight is how much a check counts in the score.
func severityWeight(s rule.Severity) float64 {
	switch s {
	case rule.Critical:
		return 10
	case rule.High:
		return 6
	case rule.Medium:
		return 3
	case rule.Low:
		return 1
	}
	return 0
}

// passRate is the share of evaluated objects without a finding.
func passRate(c CheckResult) float64 {
	if c.Evaluated == 0 {
		return 1
	}
	return float64(c.Evaluated-c.Failed) / float64(c.Evaluated)
}

// score is the severity-weighted mean pass rate of the evaluated checks,
// 0-100; checks that were not evaluated do not count.
func score(checks []CheckResult) (int, int) {
	var sum, weight float64
	n := 0
	for _, c := range checks {
		if c.Status == StatusNotEvaluated {
			continue
		}
		w := severityWeight(c.Severity)
		sum += w * passRate(c)
		weight += w
		n++
	}
	if weight == 0 {
		return 100, n
	}
	return int(math.Floor(100*sum/weight + 0.5)), n
}

func maturity(checks []CheckResult) Maturity {
	m := Maturity{}
	m.Score, _ = score(checks)
	for _, asp := range Aspects {
		var in []CheckResult
		failing := 0
		for _, c := range checks {
			if c.Aspect == asp {
				in = append(in, c)
				if c.Status == StatusFail {
					failing++
				}
			}
		}
		s, n := score(in)
		m.Aspects = append(m.Aspects, AspectScore{Aspect: asp, Score: s, Checks: n, Failing: failing})
	}
	reached := true
	var blocking []CheckResult
	for lvl := 1; lvl < len(LevelNames); lvl++ {
		lr := LevelResult{Level: lvl, Name: LevelNames[lvl], Passed: true}
		for _, c := range checks {
			if c.Level != lvl {
				continue
			}
			lr.Gates = append(lr.Gates, Gate{Check: c.ID, Status: c.Status, Failed: c.Failed, Note: c.Note})
			if c.Status != StatusPass {
				lr.Passed = false
				blocking = append(blocking, c)
			}
		}
		if reached && lr.Passed {
			m.Level = lvl
		} else {
			reached = false
		}
		m.Levels = append(m.Levels, lr)
	}
	m.Name = LevelNames[m.Level]
	// Then the checks that only count towards the score.
	var rest []CheckResult
	for _, c := range checks {
		if c.Level == 0 && c.Status == StatusFail {
			rest = append(rest, c)
		}
	}
	sort.SliceStable(blocking, func(i, j int) bool { return fixLess(blocking[i], blocking[j]) })
	sort.SliceStable(rest, func(i, j int) bool { return fixLess(rest[i], rest[j]) })
	for _, c := range append(blocking, rest...) {
		if len(m.NextFixes) == 3 {
			break
		}
		m.NextFixes = append(m.NextFixes, Fix{Check: c.ID, Title: c.Title, Severity: c.Severity, Level: c.Level,
			Failed: c.Failed, Status: c.Status, Remediation: fixText(c)})
	}
	return m
}

func fixLess(a, b CheckResult) bool {
	if a.Level != b.Level {
		return a.Level < b.Level
	}
	// Failing before not evaluated: a known problem first.
	if (a.Status == StatusFail) != (b.Status == StatusFail) {
		return a.Status == StatusFail
	}
	if a.Severity.Rank() != b.Severity.Rank() {
		return a.Severity.Rank() > b.Severity.Rank()
	}
	return a.Failed > b.Failed
}

func fixText(c CheckResult) string {
	if c.Status == StatusNotEvaluated {
		return "Not evaluated (" + c.Note + "). " + c.Remediation
	}
	return c.Remediation
}
