package posture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/posture/rbac"
	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// Defaults of Config.
const (
	DefaultStaleAfter   = 90 * 24 * time.Hour
	DefaultExpiryWindow = 30 * 24 * time.Hour
)

// DefaultAllowReaders are the subjects expected to read Secrets: the
// control plane, nodes (the Node authorizer limits them to their pods'
// Secrets) and kube-system's controllers.
var DefaultAllowReaders = []string{
	"group:system:masters",
	"user:system:kube-controller-manager",
	"user:system:kube-scheduler",
	"user:system:apiserver",
	"group:system:nodes",
	"user:system:node:*",
	"serviceaccount:kube-system/*",
	"group:system:serviceaccounts:kube-system",
}

// Config tunes the analysis. The zero value uses the defaults.
type Config struct {
	// AllowReaders are subject patterns ("user:NAME", "group:NAME",
	// "serviceaccount:NS/NAME", with path.Match wildcards in the name)
	// that may read Secrets without a finding. DefaultAllowReaders when
	// nil; an empty non-nil list allows nobody.
	AllowReaders []string
	// StaleAfter is the age of a Secret's data after which it is stale.
	StaleAfter time.Duration
	// ExpiryWindow is how soon a certificate's expiry is reported.
	ExpiryWindow time.Duration
	// Detector finds literal credentials; the scan's default rules when
	// nil.
	Detector *detect.Engine
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []string
	for _, p := range c.AllowReaders {
		if _, err := parsePattern(p); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.StaleAfter < 0 {
		errs = append(errs, "stale-after must not be negative")
	}
	if c.ExpiryWindow < 0 {
		errs = append(errs, "expiry window must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("posture: config: %s", strings.Join(errs, "; "))
	}
	return nil
}

type pattern struct{ kind, name string }

func parsePattern(p string) (pattern, error) {
	kind, name, ok := strings.Cut(p, ":")
	if !ok || name == "" {
		return pattern{}, fmt.Errorf("allowed reader %q: want user:NAME, group:NAME or serviceaccount:NS/NAME", p)
	}
	switch strings.ToLower(kind) {
	case "user", "u":
		kind = rbac.UserKind
	case "group", "g":
		kind = rbac.GroupKind
	case "serviceaccount", "sa":
		kind = rbac.ServiceAccountKind
		if !strings.Contains(name, "/") {
			return pattern{}, fmt.Errorf("allowed reader %q: a service account is serviceaccount:NS/NAME", p)
		}
	default:
		return pattern{}, fmt.Errorf("allowed reader %q: unknown kind %q", p, kind)
	}
	if _, err := path.Match(name, ""); err != nil {
		return pattern{}, fmt.Errorf("allowed reader %q: %v", p, err)
	}
	return pattern{kind, name}, nil
}

func (p pattern) match(s rbac.Subject) bool {
	if p.kind != s.Kind {
		return false
	}
	name := s.Name
	if s.Kind == rbac.ServiceAccountKind {
		name = s.Namespace + "/" + s.Name
	}
	ok, _ := path.Match(p.name, name)
	return ok
}

// analysis is the state shared by the checks.
type analysis struct {
	snap      *Snapshot
	cfg       Config
	eng       *rbac.Engine
	graph     *graph
	workloads []*Workload
	access    []SubjectAccess
	allowed   []pattern
	detector  *detect.Engine
	now       time.Time
}

func (a *analysis) allowedReader(s rbac.Subject) bool {
	for _, p := range a.allowed {
		if p.match(s) {
			return true
		}
	}
	return false
}

// rbacReadable reports why RBAC analysis is incomplete, or "".
func (a *analysis) rbacGaps() string {
	var missing []string
	for _, r := range []string{"clusterroles", "clusterrolebindings", "roles", "rolebindings"} {
		if a.snap.MissingAny(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "could not read " + strings.Join(missing, ", ")
}

// Analyze runs every check over s and rolls the results into a report.
func Analyze(ctx context.Context, s *Snapshot, cfg Config) (*Report, error) {
	begin := time.Now()
	if cfg.AllowReaders == nil {
		cfg.AllowReaders = DefaultAllowReaders
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.ExpiryWindow == 0 {
		cfg.ExpiryWindow = DefaultExpiryWindow
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &analysis{snap: s, cfg: cfg, now: s.Taken, detector: cfg.Detector}
	if a.now.IsZero() {
		a.now = time.Now()
	}
	for _, p := range cfg.AllowReaders {
		pt, _ := parsePattern(p)
		a.allowed = append(a.allowed, pt)
	}
	if a.detector == nil {
		f, err := rule.Default()
		if err != nil {
			return nil, fmt.Errorf("posture: detection rules: %w", err)
		}
		if a.detector, err = detect.New(f); err != nil {
			return nil, fmt.Errorf("posture: detection rules: %w", err)
		}
	}
	a.eng = rbac.New(s.Roles, s.ClusterRoles, s.RoleBindings, s.ClusterRoleBindings)
	a.workloads = workloads(s)
	a.graph = newGraph(s, a.eng, a.workloads)
	a.access = a.graph.accessAll()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rep := &Report{
		Version: ReportVersion, Source: s.Source, Taken: s.Taken, Objects: s.Objects(),
		Gaps: s.Gaps, Problems: s.Problems, Skipped: s.Skipped, RBACProblems: a.eng.Problems(),
		Findings: []Finding{},
	}
	for _, c := range allChecks() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o := c.run(a)
		res := CheckResult{CheckInfo: c.CheckInfo, Evaluated: o.evaluated, Failed: len(o.findings), Note: o.note}
		switch {
		case o.skip != "":
			res.Status, res.Note = StatusNotEvaluated, o.skip
			res.Failed = 0
		case len(o.findings) > 0:
			res.Status = StatusFail
		default:
			res.Status = StatusPass
		}
		if res.Failed > res.Evaluated {
			res.Evaluated = res.Failed
		}
		rep.Checks = append(rep.Checks, res)
		if o.skip == "" {
			for _, f := range o.findings {
				f.Check = c.ID
				if f.Severity == "" {
					f.Severity = c.Severity
				}
				if f.CIS == "" {
					f.CIS = c.CIS
				}
				f.Fingerprint = fingerprint(f)
				rep.Findings = append(rep.Findings, f)
			}
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		return rep.Findings[i].Severity.Rank() > rep.Findings[j].Severity.Rank()
	})
	rep.Access = a.reportedAccess()
	rep.Readers = a.readers()
	rep.Maturity = maturity(rep.Checks)
	rep.Duration = time.Since(begin)
	return rep, nil
}

// reportedAccess drops paths a subject only has through a group (the
// group is listed with them) and subjects left with none.
func (a *analysis) reportedAccess() []SubjectAccess {
	out := []SubjectAccess{}
	for _, sa := range a.access {
		var own []Access
		for _, acc := range sa.Access {
			if !acc.Inherited {
				own = append(own, acc)
			}
		}
		if len(own) > 0 {
			out = append(out, SubjectAccess{Subject: sa.Subject, Access: own})
		}
	}
	return out
}

func fingerprint(f Finding) string {
	h := sha256.Sum256([]byte(f.Check + "\x00" + f.Object + "\x00" + f.Message))
	return hex.EncodeToString(h[:12])
}
