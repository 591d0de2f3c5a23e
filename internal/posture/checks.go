package posture

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cofferhq/coffer/internal/posture/rbac"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// outcome is what a check returns.
type outcome struct {
	evaluated int
	findings  []Finding
	// skip says why the check could not be evaluated.
	skip string
	// note says what an evaluated check could not see.
	note string
}

type check struct {
	CheckInfo
	run func(*analysis) outcome
}

// Checks describes every check, in report order.
func Checks() []CheckInfo {
	all := allChecks()
	out := make([]CheckInfo, len(all))
	for i, c := range all {
		out[i] = c.CheckInfo
	}
	return out
}

func allChecks() []check {
	return []check{
		{CheckInfo{ID: "anonymous-access", Title: "Bindings grant resources to anonymous or all authenticated users", Severity: rule.Critical, Aspect: AspectAccess, Level: 1,
			Remediation: "Remove system:anonymous, system:unauthenticated and system:authenticated from bindings that grant access to resources; bind named groups or service accounts instead."}, checkAnonymous},
		{CheckInfo{ID: "literal-credentials", Title: "Credentials written literally in env values, arguments or ConfigMaps", Severity: rule.Critical, Aspect: AspectGovernance, Level: 1,
			Remediation: "Move the credential into coffer (or at least a Secret), rotate it, and reference it from the pod instead of writing its value in the spec or a ConfigMap."}, checkLiteral},
		{CheckInfo{ID: "encryption-missing", Title: "Secrets are not encrypted at rest", Severity: rule.High, CIS: "1.2.27", Aspect: AspectCompliance, Level: 1,
			Remediation: "Give kube-apiserver --encryption-provider-config with an EncryptionConfiguration whose first provider for secrets is kms (v2), e.g. coffer kms-plugin; then rewrite existing Secrets (kubectl get secrets -A -o json | kubectl replace -f -)."}, checkEncryptionMissing},
		{CheckInfo{ID: "encryption-identity-first", Title: "The identity provider is listed first for Secrets", Severity: rule.Critical, CIS: "1.2.28", Aspect: AspectCompliance, Level: 1,
			Remediation: "Put an encrypting provider (kms v2) first in the EncryptionConfiguration entry for secrets; keep identity only last, to read data written before encryption was enabled."}, checkIdentityFirst},
		{CheckInfo{ID: "secret-readers", Title: "Subjects outside the allowlist can read Secrets", Severity: rule.High, CIS: "5.1.2", Aspect: AspectAccess, Level: 2,
			Remediation: "Remove get, list and watch on secrets from roles bound to these subjects, or narrow them with resourceNames; serve workloads' secrets from coffer instead of granting Secret reads."}, checkReaders},
		{CheckInfo{ID: "secret-escalation", Title: "Subjects outside the allowlist can reach Secrets through escalation", Severity: rule.High, CIS: "5.1.4", Aspect: AspectAccess, Level: 2,
			Remediation: "Break each path at its first step: remove pod and controller creation, exec, impersonate, bind, escalate, token creation, nodes/proxy, CSR approval or webhook configuration rights that these subjects do not need."}, checkEscalation},
		{CheckInfo{ID: "cluster-admin-bindings", Title: "cluster-admin or full wildcard roles are bound", Severity: rule.High, CIS: "5.1.1", Aspect: AspectIdentity, Level: 2,
			Remediation: "Bind cluster-admin only to break-glass identities; give people and workloads narrower roles."}, checkClusterAdmin},
		{CheckInfo{ID: "wildcard-rules", Title: "Roles use wildcards", Severity: rule.Medium, CIS: "5.1.3", Aspect: AspectGovernance, Level: 2,
			Remediation: "Replace \"*\" in verbs, resources and apiGroups with the objects and operations the role needs."}, checkWildcards},
		{CheckInfo{ID: "token-automount", Title: "Service-account tokens are mounted where the account has rights", Severity: rule.Medium, CIS: "5.1.6", Aspect: AspectIdentity, Level: 2,
			Remediation: "Set automountServiceAccountToken: false on the pod (or the ServiceAccount) unless the workload calls the Kubernetes API; mount a projected token with an audience when it does."}, checkAutomount},
		{CheckInfo{ID: "default-service-account", Title: "The default service account is used or bound", Severity: rule.Low, CIS: "5.1.5", Aspect: AspectIdentity,
			Remediation: "Give each workload its own ServiceAccount, bind no roles to default, and set automountServiceAccountToken: false on it."}, checkDefaultSA},
		{CheckInfo{ID: "secrets-in-env", Title: "Secrets are passed as environment variables", Severity: rule.Medium, CIS: "5.4.1", Aspect: AspectAccess, Level: 3,
			Remediation: "Mount secrets as files (a secret volume or coffer's CSI provider) rather than env and envFrom; environment variables leak into logs, crash dumps and child processes."}, checkSecretEnv},
		{CheckInfo{ID: "legacy-token-secrets", Title: "Long-lived service-account token Secrets exist", Severity: rule.Medium, Aspect: AspectIdentity, Level: 3,
			Remediation: "Delete kubernetes.io/service-account-token Secrets and use bound tokens (projected volumes or the TokenRequest API), which expire."}, checkLegacyTokens},
		{CheckInfo{ID: "stale-secrets", Title: "Secrets have not been rotated", Severity: rule.Medium, Aspect: AspectLifecycle, Level: 3,
			Remediation: "Rotate these credentials, then move them to coffer with a rotation period or to dynamic credentials."}, checkStale},
		{CheckInfo{ID: "unused-secrets", Title: "Secrets are not used by any workload", Severity: rule.Low, Aspect: AspectLifecycle, Level: 3,
			Remediation: "Delete Secrets nothing uses (after checking nothing outside the cluster reads them) and revoke the credentials they hold."}, checkUnused},
		{CheckInfo{ID: "tls-expired", Title: "TLS certificates have expired", Severity: rule.High, Aspect: AspectLifecycle, Level: 3,
			Remediation: "Renew the certificates; let cert-manager or coffer's PKI engine issue and renew them automatically."}, checkTLSExpired},
		{CheckInfo{ID: "tls-expiring", Title: "TLS certificates expire soon", Severity: rule.Medium, Aspect: AspectLifecycle, Level: 3,
			Remediation: "Renew the certificates before they expire, and automate renewal."}, checkTLSExpiring},
		{CheckInfo{ID: "mutable-secrets", Title: "Static Secrets are mutable", Severity: rule.Low, Aspect: AspectLifecycle,
			Remediation: "Mark static Secrets immutable: true and roll out a new Secret on rotation; the apiserver then stops watching them and nobody can change them in place."}, checkMutable},
		{CheckInfo{ID: "secret-mount-unused", Title: "Secret volumes are not mounted by any container", Severity: rule.Low, Aspect: AspectAccess,
			Remediation: "Remove secret volumes that no container mounts; the kubelet still fetches them to the node."}, checkMountUnused},
		{CheckInfo{ID: "secret-shared", Title: "One Secret is shared by several workloads", Severity: rule.Low, Aspect: AspectAccess,
			Remediation: "Give each workload its own credential so one compromise does not expose the others and rotation can be done per workload."}, checkShared},
		{CheckInfo{ID: "encryption-not-kms-v2", Title: "Secrets are not encrypted with KMS v2", Severity: rule.Medium, CIS: "1.2.28", Aspect: AspectCompliance, Level: 4,
			Remediation: "Use a kms provider with apiVersion v2 (coffer kms-plugin) first for secrets: keys stay outside the control-plane disk and rotate without rewriting the configuration."}, checkKMSv2},
		{CheckInfo{ID: "external-store", Title: "Workloads read Kubernetes Secrets instead of an external store", Severity: rule.Medium, CIS: "5.4.2", Aspect: AspectGovernance, Level: 4,
			Remediation: "Serve these workloads from coffer: the CSI provider, the injector (coffer.example.com/inject) or synced secrets, so the source of truth is audited, versioned and rotated."}, checkExternalStore},
	}
}

// isDefault reports whether an RBAC object is one of Kubernetes' bootstrap
// defaults.
func isDefault(labels map[string]string) bool {
	return labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
}

var broadSubjects = map[string]bool{
	"User:" + rbac.Anonymous:        true,
	"Group:" + rbac.Unauthenticated: true,
	"Group:" + rbac.Authenticated:   true,
}

func ruleString(r rbacv1.PolicyRule) string {
	if len(r.NonResourceURLs) > 0 {
		return fmt.Sprintf("%s on %s", strings.Join(r.Verbs, ","), strings.Join(r.NonResourceURLs, ","))
	}
	res := make([]string, 0, len(r.Resources))
	for _, x := range r.Resources {
		for _, g := range r.APIGroups {
			if g == "" {
				res = append(res, x)
			} else {
				res = append(res, x+"."+g)
			}
		}
	}
	s := fmt.Sprintf("%s on %s", strings.Join(r.Verbs, ","), strings.Join(res, ","))
	if len(r.ResourceNames) > 0 {
		s += " named " + strings.Join(r.ResourceNames, ",")
	}
	return s
}

func rulesEvidence(rules []rbac.Rule, max int) []string {
	var out []string
	for _, r := range rules {
		if len(out) == max {
			out = append(out, fmt.Sprintf("and %d more rule(s)", len(rules)-max))
			break
		}
		out = append(out, ruleString(r.PolicyRule))
	}
	return out
}

func (a *analysis) rbacSkip() string {
	if g := a.rbacGaps(); g != "" && len(a.snap.ClusterRoleBindings)+len(a.snap.RoleBindings) == 0 {
		return g
	}
	return ""
}

// dangerous reports whether rules reach secrets directly or by escalation.
func dangerous(rules []rbac.Rule) bool {
	for _, p := range roleAtoms(rules) {
		switch p.kind {
		case atGetSecrets, atListSecrets, atCreatePods, atWorkloads, atExec, atImpersonateUsers, atImpersonateGroups,
			atImpersonateSAs, atBindClusterRoles, atEscalateClusterRoles, atTokenRequest, atNodesProxy:
			return true
		}
	}
	return false
}

func checkAnonymous(a *analysis) outcome {
	if s := a.rbacSkip(); s != "" {
		return outcome{skip: s}
	}
	var o outcome
	for _, b := range a.eng.Bindings() {
		var who []string
		for _, s := range b.Subjects {
			if broadSubjects[s.Key()] {
				who = append(who, s.String())
			}
		}
		if len(who) == 0 {
			continue
		}
		o.evaluated++
		if isDefault(b.Labels) {
			continue
		}
		var res []rbac.Rule
		for _, r := range b.Rules {
			if len(r.Resources) > 0 {
				res = append(res, r)
			}
		}
		if len(res) == 0 {
			continue
		}
		sev := rule.High
		if dangerous(res) {
			sev = rule.Critical
		}
		o.findings = append(o.findings, Finding{Severity: sev, Object: b.Ref.String(), Namespace: b.Namespace,
			Message:  fmt.Sprintf("%s grants %s to %s", b.Ref, b.Role, strings.Join(who, ", ")),
			Evidence: rulesEvidence(res, 6)})
	}
	o.note = a.rbacGaps()
	return o
}

func fullWildcard(rules []rbac.Rule) bool {
	for _, r := range rules {
		if slices.Contains(r.Verbs, "*") && slices.Contains(r.APIGroups, "*") && slices.Contains(r.Resources, "*") {
			return true
		}
	}
	return false
}

func checkClusterAdmin(a *analysis) outcome {
	if s := a.rbacSkip(); s != "" {
		return outcome{skip: s}
	}
	var o outcome
	for _, b := range a.eng.Bindings() {
		if !(b.Role.Kind == rbac.ClusterRoleKind && b.Role.Name == "cluster-admin") && !fullWildcard(b.Rules) {
			continue
		}
		o.evaluated++
		if isDefault(b.Labels) {
			continue
		}
		var who []string
		for _, s := range b.Subjects {
			if !(s.Kind == rbac.GroupKind && s.Name == rbac.Masters) {
				who = append(who, s.String())
			}
		}
		if len(who) == 0 {
			continue
		}
		sev, scope := rule.High, "the whole cluster"
		if b.Namespace != "" {
			sev, scope = rule.Medium, "namespace "+b.Namespace
		}
		o.findings = append(o.findings, Finding{Severity: sev, Object: b.Ref.String(), Namespace: b.Namespace,
			Message:  fmt.Sprintf("%s gives every permission in %s to %s", b.Ref, scope, strings.Join(who, ", ")),
			Evidence: []string{"role " + b.Role.String()}})
	}
	o.note = a.rbacGaps()
	return o
}

func checkWildcards(a *analysis) outcome {
	if s := a.rbacSkip(); s != "" {
		return outcome{skip: s}
	}
	var o outcome
	judge := func(ref rbac.Ref, labels map[string]string, rules []rbacv1.PolicyRule, aggregated bool) {
		if isDefault(labels) || aggregated || (ref.Kind == rbac.ClusterRoleKind && ref.Name == "cluster-admin") {
			return
		}
		o.evaluated++
		var ev []string
		for _, r := range rules {
			if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || (len(r.Resources) > 0 && slices.Contains(r.APIGroups, "*")) {
				ev = append(ev, ruleString(r))
			}
		}
		if len(ev) > 0 {
			o.findings = append(o.findings, Finding{Object: ref.String(), Namespace: ref.Namespace,
				Message: fmt.Sprintf("%s has %d rule(s) with wildcards", ref, len(ev)), Evidence: ev})
		}
	}
	for _, r := range a.snap.ClusterRoles {
		judge(rbac.Ref{Kind: rbac.ClusterRoleKind, Name: r.Name}, r.Labels, r.Rules, r.AggregationRule != nil)
	}
	for _, r := range a.snap.Roles {
		judge(rbac.Ref{Kind: rbac.RoleKind, Namespace: r.Namespace, Name: r.Name}, r.Labels, r.Rules, false)
	}
	return o
}

// renderPath renders a path on one line.
func renderPath(acc Access) string {
	var b strings.Builder
	b.WriteString(acc.Target.String())
	b.WriteString(": ")
	for i, s := range acc.Path {
		if i > 0 {
			b.WriteString("; then ")
		}
		if s.Reason != "" {
			b.WriteString(s.Reason)
		} else {
			b.WriteString(s.Kind + " " + s.To)
		}
		if len(s.Via) > 0 {
			b.WriteString(" [" + strings.Join(s.Via, "; ") + "]")
		}
	}
	return b.String()
}

func targetsText(acc []Access) string {
	var t []string
	for _, x := range acc {
		t = append(t, x.Target.String())
	}
	return names(t)
}

func checkReaders(a *analysis) outcome {
	if s := a.rbacSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{evaluated: len(a.eng.Subjects()), note: a.rbacGaps()}
	for _, sa := range a.reportedAccess() {
		if a.allowedReader(sa.Subject) {
			continue
		}
		var direct []Access
		for _, acc := range sa.Access {
			if acc.Direct() {
				direct = append(direct, acc)
			}
		}
		if len(direct) == 0 {
			continue
		}
		f := Finding{Object: sa.Subject.String(), Namespace: sa.Subject.Namespace,
			Message: fmt.Sprintf("%s can read %s", sa.Subject, targetsText(direct))}
		for i, acc := range direct {
			if i == 8 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("and %d more", len(direct)-8))
				break
			}
			f.Evidence = append(f.Evidence, renderPath(acc))
		}
		o.findings = append(o.findings, f)
	}
	return o
}

func checkEscalation(a *analysis) outcome {
	if s := a.rbacSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{evaluated: len(a.eng.Subjects()), note: a.rbacGaps()}
	for _, sa := range a.reportedAccess() {
		if a.allowedReader(sa.Subject) {
			continue
		}
		var indirect []Access
		for _, acc := range sa.Access {
			if !acc.Direct() {
				indirect = append(indirect, acc)
			}
		}
		if len(indirect) == 0 {
			continue
		}
		f := Finding{Object: sa.Subject.String(), Namespace: sa.Subject.Namespace,
			CIS:     edgeCIS[indirect[0].Path[0].Kind],
			Message: fmt.Sprintf("%s can reach %s through %s", sa.Subject, targetsText(indirect), indirect[0].Path[0].Kind)}
		for i, acc := range indirect {
			if i == 8 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("and %d more", len(indirect)-8))
				break
			}
			f.Evidence = append(f.Evidence, renderPath(acc))
		}
		o.findings = append(o.findings, f)
	}
	return o
}
