package posture

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cofferhq/coffer/internal/posture/rbac"
	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// workloadGaps says which workload kinds could not be read.
func (a *analysis) workloadGaps() string {
	var missing []string
	for _, r := range []string{"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs", "replicationcontrollers"} {
		if a.snap.MissingAny(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "could not read " + strings.Join(missing, ", ")
}

// mirror reports whether w is the mirror of a static pod.
func mirror(w *Workload) bool {
	_, ok := w.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

func maxSeverity(a, b rule.Severity) rule.Severity {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

func matchText(m detect.Match) string {
	return fmt.Sprintf("%s (%s)", m.Rule.ID(), m.Secret.Redacted())
}

func checkLiteral(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	for _, w := range a.workloads {
		o.evaluated++
		var ev []string
		sev := rule.Severity("")
		for _, c := range allContainers(w.Spec) {
			for _, e := range c.Env {
				if e.Value == "" {
					continue
				}
				for _, m := range a.detector.ScanEntry(e.Name, []byte(e.Value)) {
					ev = append(ev, fmt.Sprintf("container %s env %s: %s", c.Name, e.Name, matchText(m)))
					sev = maxSeverity(sev, m.Rule.Severity)
				}
			}
			if argv := append(slices.Clone(c.Command), c.Args...); len(argv) > 0 {
				for _, m := range a.detector.ScanBytes([]byte(strings.Join(argv, "\n")), w.Ref()) {
					ev = append(ev, fmt.Sprintf("container %s command line, argument %d: %s", c.Name, m.Line, matchText(m)))
					sev = maxSeverity(sev, m.Rule.Severity)
				}
			}
		}
		if len(ev) > 0 {
			o.findings = append(o.findings, Finding{Severity: literalSeverity(sev), Object: w.Ref(), Namespace: w.Namespace,
				Message: fmt.Sprintf("%s has %d literal credential(s) in its pod spec", w.Ref(), len(ev)), Evidence: ev})
		}
	}
	if a.snap.MissingAny("configmaps") {
		o.note = strings.TrimPrefix(o.note+", configmaps", ", ")
	}
	for i := range a.snap.ConfigMaps {
		cm := &a.snap.ConfigMaps[i]
		o.evaluated++
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ev []string
		sev := rule.Severity("")
		for _, k := range keys {
			for _, m := range a.detector.ScanEntry(k, []byte(cm.Data[k])) {
				where := k
				if m.Line > 1 {
					where = fmt.Sprintf("%s line %d", k, m.Line)
				}
				ev = append(ev, fmt.Sprintf("key %s: %s", where, matchText(m)))
				sev = maxSeverity(sev, m.Rule.Severity)
			}
		}
		if len(ev) > 0 {
			ref := "ConfigMap " + cm.Namespace + "/" + cm.Name
			o.findings = append(o.findings, Finding{Severity: literalSeverity(sev), Object: ref, Namespace: cm.Namespace,
				Message: fmt.Sprintf("%s holds %d literal credential(s)", ref, len(ev)), Evidence: ev})
		}
	}
	return o
}

// literalSeverity is at least high: a credential in plain sight.
func literalSeverity(s rule.Severity) rule.Severity {
	return maxSeverity(s, rule.High)
}

func checkSecretEnv(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	for _, w := range a.workloads {
		o.evaluated++
		var ev []string
		for _, u := range secretUses(w.Spec) {
			if u.How == "envFrom" || strings.HasPrefix(u.How, "env ") {
				ev = append(ev, fmt.Sprintf("container %s: %s from Secret %s", u.Container, u.How, u.Secret))
			}
		}
		if len(ev) > 0 {
			o.findings = append(o.findings, Finding{Object: w.Ref(), Namespace: w.Namespace,
				Message: fmt.Sprintf("%s reads %d Secret value(s) through environment variables", w.Ref(), len(ev)), Evidence: ev})
		}
	}
	return o
}

// accountRights returns the bindings that give a service account rights
// of its own: naming it, its namespace's service accounts or all service
// accounts, with rules, and not a Kubernetes default.
func (a *analysis) accountRights(ns, name string) []string {
	sub := rbac.Subject{Kind: rbac.ServiceAccountKind, Namespace: ns, Name: name}
	var out []string
	for _, b := range a.eng.BindingsFor(sub.Identity()) {
		if isDefault(b.Labels) || len(b.Rules) == 0 || broadSubjects[b.Subject.Key()] {
			continue
		}
		out = append(out, b.Ref.String()+" -> "+b.Role.String())
	}
	return out
}

func checkAutomount(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	if g := a.rbacGaps(); g != "" {
		o.note = strings.TrimPrefix(o.note+"; "+g, "; ")
	}
	cache := map[string][]string{}
	for _, w := range a.workloads {
		if mirror(w) {
			continue
		}
		o.evaluated++
		if !a.graph.mountsToken(w) {
			continue
		}
		sa := w.ServiceAccount()
		k := w.Namespace + "/" + sa
		rights, ok := cache[k]
		if !ok {
			rights = a.accountRights(w.Namespace, sa)
			cache[k] = rights
		}
		if len(rights) == 0 {
			continue
		}
		o.findings = append(o.findings, Finding{Object: w.Ref(), Namespace: w.Namespace,
			Message:  fmt.Sprintf("%s mounts the token of ServiceAccount %s, which is bound to %d role(s)", w.Ref(), k, len(rights)),
			Evidence: rights})
	}
	return o
}

func checkDefaultSA(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	for _, w := range a.workloads {
		if mirror(w) {
			continue
		}
		o.evaluated++
		if w.ServiceAccount() == "default" {
			o.findings = append(o.findings, Finding{Object: w.Ref(), Namespace: w.Namespace,
				Message: fmt.Sprintf("%s runs as the default ServiceAccount of %s", w.Ref(), w.Namespace)})
		}
	}
	for i := range a.snap.ServiceAccounts {
		sa := &a.snap.ServiceAccounts[i]
		if sa.Name != "default" {
			continue
		}
		o.evaluated++
		if rights := a.accountRights(sa.Namespace, sa.Name); len(rights) > 0 {
			o.findings = append(o.findings, Finding{Object: "ServiceAccount " + sa.Namespace + "/default", Namespace: sa.Namespace,
				Message:  fmt.Sprintf("the default ServiceAccount of %s is bound to %d role(s)", sa.Namespace, len(rights)),
				Evidence: rights})
		}
	}
	return o
}

func checkMountUnused(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	for _, w := range a.workloads {
		mounted := map[string]bool{}
		for _, c := range allContainers(w.Spec) {
			for _, m := range c.Mounts {
				mounted[m.Name] = true
			}
		}
		var ev []string
		has := false
		for _, v := range w.Spec.Volumes {
			name := ""
			switch {
			case v.Secret != nil:
				name = v.Secret.SecretName
			case v.Projected != nil:
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						name = s.Secret.Name
					}
				}
			}
			if name == "" {
				continue
			}
			has = true
			if !mounted[v.Name] {
				ev = append(ev, fmt.Sprintf("volume %s (Secret %s) is mounted by no container", v.Name, name))
			}
		}
		if has {
			o.evaluated++
		}
		if len(ev) > 0 {
			o.findings = append(o.findings, Finding{Object: w.Ref(), Namespace: w.Namespace,
				Message: fmt.Sprintf("%s declares %d secret volume(s) no container uses", w.Ref(), len(ev)), Evidence: ev})
		}
	}
	return o
}

func checkShared(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	types := map[string]corev1.SecretType{}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		types[s.Namespace+"/"+s.Name] = s.Type
	}
	users := map[string][]string{}
	for _, w := range a.workloads {
		seen := map[string]bool{}
		for _, u := range secretUses(w.Spec) {
			if u.How == "imagePullSecrets" || seen[u.Secret] {
				continue
			}
			seen[u.Secret] = true
			k := w.Namespace + "/" + u.Secret
			switch types[k] {
			case corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg, corev1.SecretTypeServiceAccountToken:
				continue
			}
			users[k] = append(users[k], w.Ref())
		}
	}
	keys := make([]string, 0, len(users))
	for k := range users {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.evaluated++
		if ws := users[k]; len(ws) > 1 {
			ns, _, _ := strings.Cut(k, "/")
			o.findings = append(o.findings, Finding{Object: "Secret " + k, Namespace: ns,
				Message: fmt.Sprintf("Secret %s is used by %d workloads", k, len(ws)), Evidence: ws})
		}
	}
	return o
}

// External-store markers: annotations of injectors and the CSI driver of
// the Secrets Store CSI driver.
var (
	injectorAnnotations = []string{"coffer.example.com/inject", "vault.hashicorp.com/agent-inject"}
	secretsStoreDriver  = "secrets-store.csi.k8s.io"
	externalOwnerKinds  = []string{"ExternalSecret", "SecretProviderClassPodStatus", "VaultStaticSecret", "VaultDynamicSecret", "CofferSecret", "SecretSync"}
	externalLabels      = []string{"secrets-store.csi.k8s.io/managed", "reconcile.external-secrets.io/managed", "coffer.example.com/managed"}
)

// externallyManaged reports whether an external store writes the Secret.
func externallyManaged(s *corev1.Secret) bool {
	for _, o := range s.OwnerReferences {
		if slices.Contains(externalOwnerKinds, o.Kind) {
			return true
		}
	}
	for _, l := range externalLabels {
		if _, ok := s.Labels[l]; ok {
			return true
		}
	}
	return false
}

func checkExternalStore(a *analysis) outcome {
	o := outcome{note: a.workloadGaps()}
	secrets := map[string]*corev1.Secret{}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		secrets[s.Namespace+"/"+s.Name] = s
	}
	for _, w := range a.workloads {
		if mirror(w) {
			continue
		}
		injected := false
		for _, k := range injectorAnnotations {
			injected = injected || w.Annotations[k] == "true"
		}
		csi := false
		for _, v := range w.Spec.Volumes {
			csi = csi || (v.CSI != nil && v.CSI.Driver == secretsStoreDriver)
		}
		var plain []string
		uses := injected || csi
		for _, u := range secretUses(w.Spec) {
			if u.How == "imagePullSecrets" || strings.HasPrefix(u.How, "csi volume") {
				continue
			}
			uses = true
			s := secrets[w.Namespace+"/"+u.Secret]
			if s != nil && (externallyManaged(s) || s.Type == corev1.SecretTypeServiceAccountToken) {
				continue
			}
			if !slices.Contains(plain, u.Secret) {
				plain = append(plain, u.Secret)
			}
		}
		if !uses {
			continue // uses no secrets at all
		}
		o.evaluated++
		if len(plain) == 0 {
			continue
		}
		o.findings = append(o.findings, Finding{Object: w.Ref(), Namespace: w.Namespace,
			Message:  fmt.Sprintf("%s reads %d Secret(s) that no external store manages", w.Ref(), len(plain)),
			Evidence: []string{"Secrets: " + names(plain)}})
	}
	return o
}
