package posture

import (
	"sort"
	"time"

	"github.com/cofferhq/coffer/internal/posture/rbac"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// ReportVersion is the version of the JSON report's layout.
const ReportVersion = 1

// Report is the result of Analyze; its JSON form is the --format json
// output.
type Report struct {
	Version int       `json:"version"`
	Tool    string    `json:"tool,omitempty"`
	Source  string    `json:"source"`
	Taken   time.Time `json:"taken"`
	Objects int       `json:"objects"`

	Maturity Maturity      `json:"maturity"`
	Checks   []CheckResult `json:"checks"`
	Findings []Finding     `json:"findings"`
	// Readers lists, per namespace, who can reach the contents of its
	// Secrets; namespace "" is every namespace.
	Readers []NamespaceReaders `json:"readers"`
	// Access lists each subject's paths to secret contents.
	Access []SubjectAccess `json:"access"`

	Gaps         []Gap          `json:"gaps,omitempty"`
	Problems     []Problem      `json:"problems,omitempty"`
	Skipped      map[string]int `json:"skipped,omitempty"`
	RBACProblems []string       `json:"rbacProblems,omitempty"`
	Duration     time.Duration  `json:"durationNanos"`
}

// Check statuses.
const (
	StatusPass         = "pass"
	StatusFail         = "fail"
	StatusNotEvaluated = "not-evaluated"
)

// Aspects of secrets management that checks belong to.
const (
	AspectAccess     = "distribution and access"
	AspectLifecycle  = "lifecycle"
	AspectIdentity   = "identity"
	AspectGovernance = "governance"
	AspectCompliance = "compliance"
)

// Aspects lists the aspects in report order.
var Aspects = []string{AspectAccess, AspectLifecycle, AspectIdentity, AspectGovernance, AspectCompliance}

// CheckInfo describes a check.
type CheckInfo struct {
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	Severity rule.Severity `json:"severity"`
	// CIS is the CIS Kubernetes Benchmark (v1.9) control, when one exists.
	CIS    string `json:"cis,omitempty"`
	Aspect string `json:"aspect"`
	// Level is the maturity level the check gates; 0 when it only counts
	// towards the score.
	Level       int    `json:"level"`
	Remediation string `json:"remediation"`
}

// CheckResult is a check's outcome.
type CheckResult struct {
	CheckInfo
	Status string `json:"status"`
	// Evaluated counts the objects judged; Failed those with a finding.
	Evaluated int `json:"evaluated"`
	Failed    int `json:"failed"`
	// Note says why a check was not evaluated or what it could not see.
	Note string `json:"note,omitempty"`
}

// Finding is one object that fails a check.
type Finding struct {
	Check    string        `json:"check"`
	Severity rule.Severity `json:"severity"`
	CIS      string        `json:"cis,omitempty"`
	// Object is what the finding is about: "Deployment ns/name",
	// "ClusterRoleBinding x", "ServiceAccount ns/name", ...
	Object    string   `json:"object"`
	Namespace string   `json:"namespace,omitempty"`
	Message   string   `json:"message"`
	Evidence  []string `json:"evidence,omitempty"`
	// Fingerprint identifies the finding across runs.
	Fingerprint string `json:"fingerprint"`
}

// NamespaceReaders is who can reach the Secrets of a namespace.
type NamespaceReaders struct {
	// Namespace is "" for readers of every namespace.
	Namespace string   `json:"namespace"`
	Secrets   int      `json:"secrets"`
	Readers   []Reader `json:"readers"`
}

// Reader is a subject that reaches Secrets, and how far away it is.
type Reader struct {
	Subject rbac.Subject `json:"subject"`
	// Target is "all Secrets ..." or one Secret.
	Target string `json:"target"`
	// Steps is the length of the shortest path; Direct is set when the
	// subject reads the Secrets itself; First is the kind of the first
	// step.
	Steps   int    `json:"steps"`
	Direct  bool   `json:"direct"`
	First   string `json:"first"`
	Allowed bool   `json:"allowed"`
}

// readers groups the access of every subject by namespace.
func (a *analysis) readers() []NamespaceReaders {
	counts := map[string]int{}
	for _, s := range a.snap.Secrets {
		counts[s.Namespace]++
		counts[""]++
	}
	by := map[string][]Reader{}
	for _, sa := range a.reportedAccess() {
		for _, acc := range sa.Access {
			ns := acc.Target.Namespace
			by[ns] = append(by[ns], Reader{Subject: sa.Subject, Target: acc.Target.String(), Steps: len(acc.Path),
				Direct: acc.Direct(), First: acc.Path[0].Kind, Allowed: a.allowedReader(sa.Subject)})
		}
	}
	out := []NamespaceReaders{}
	for ns, rs := range by {
		sort.SliceStable(rs, func(i, j int) bool {
			if rs[i].Steps != rs[j].Steps {
				return rs[i].Steps < rs[j].Steps
			}
			return rs[i].Subject.Key() < rs[j].Subject.Key()
		})
		out = append(out, NamespaceReaders{Namespace: ns, Secrets: counts[ns], Readers: rs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// Failing returns the findings at or above severity min.
func (r *Report) Failing(min rule.Severity) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity.Rank() >= min.Rank() {
			out = append(out, f)
		}
	}
	return out
}
