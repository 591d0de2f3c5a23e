package posture

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// secretClass sorts Secrets by who manages them.
type secretClass int

const (
	classStatic  secretClass = iota // written by people or pipelines
	classToken                      // legacy service-account token
	classSystem                     // Helm releases, bootstrap tokens
	classManaged                    // owned by a controller or external store
)

func classify(s *corev1.Secret) secretClass {
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		return classToken
	case "helm.sh/release.v1", corev1.SecretTypeBootstrapToken:
		return classSystem
	}
	if len(s.OwnerReferences) > 0 || externallyManaged(s) {
		return classManaged
	}
	return classStatic
}

func secretRef(s *corev1.Secret) string { return "Secret " + s.Namespace + "/" + s.Name }

func (a *analysis) secretSkip() string {
	if len(a.snap.Secrets) == 0 && a.snap.MissingAny("secrets") {
		return "could not read secrets"
	}
	return ""
}

func (a *analysis) secretNote() string {
	if a.snap.MissingAny("secrets") {
		return "could not read secrets in every namespace"
	}
	return ""
}

func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < 48*time.Hour {
		return fmt.Sprintf("%.0f hours", d.Hours())
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// created is the evidence of a Secret's age, when it is known.
func created(now time.Time, s *corev1.Secret) []string {
	if s.CreationTimestamp.IsZero() {
		return nil
	}
	return []string{"created " + age(now, s.CreationTimestamp.Time) + " ago"}
}

func checkLegacyTokens(a *analysis) outcome {
	if s := a.secretSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{note: a.secretNote()}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		o.evaluated++
		if classify(s) != classToken {
			continue
		}
		f := Finding{Object: secretRef(s), Namespace: s.Namespace,
			Message: fmt.Sprintf("%s holds a non-expiring token of ServiceAccount %s/%s", secretRef(s), s.Namespace, s.Annotations[TokenSecretSAAnnotation])}
		f.Evidence = append(f.Evidence, created(a.now, s)...)
		if v := s.Labels["kubernetes.io/legacy-token-invalid-since"]; v != "" {
			f.Evidence = append(f.Evidence, "invalidated since "+v+" (the token cleaner will delete it)")
		}
		o.findings = append(o.findings, f)
	}
	return o
}

// lastWrite is when a Secret's data was last written, from its creation
// time and the times of managedFields entries that wrote data.
func lastWrite(s *corev1.Secret) (time.Time, string) {
	t, how := s.CreationTimestamp.Time, "created"
	for _, f := range s.ManagedFields {
		if f.Time != nil && f.Time.After(t) {
			t, how = f.Time.Time, "data written by "+f.Manager
		}
	}
	return t, how
}

func checkStale(a *analysis) outcome {
	if s := a.secretSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{note: a.secretNote()}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		if classify(s) != classStatic {
			continue
		}
		o.evaluated++
		t, how := lastWrite(s)
		if t.IsZero() || a.now.Sub(t) <= a.cfg.StaleAfter {
			continue
		}
		o.findings = append(o.findings, Finding{Object: secretRef(s), Namespace: s.Namespace,
			Message:  fmt.Sprintf("%s was last changed %s ago", secretRef(s), age(a.now, t)),
			Evidence: []string{fmt.Sprintf("%s %s", how, t.UTC().Format(time.DateOnly)), fmt.Sprintf("threshold %d days", int(a.cfg.StaleAfter.Hours()/24))}})
	}
	return o
}

func checkMutable(a *analysis) outcome {
	if s := a.secretSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{note: a.secretNote()}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		if classify(s) != classStatic {
			continue
		}
		o.evaluated++
		if s.Immutable == nil || !*s.Immutable {
			o.findings = append(o.findings, Finding{Object: secretRef(s), Namespace: s.Namespace,
				Message: secretRef(s) + " is not immutable"})
		}
	}
	return o
}

// usedSecrets collects every Secret something in the snapshot refers to.
func (a *analysis) usedSecrets() map[string]string {
	used := map[string]string{}
	mark := func(ns, name, by string) {
		if _, ok := used[ns+"/"+name]; !ok {
			used[ns+"/"+name] = by
		}
	}
	for _, w := range a.workloads {
		for _, u := range secretUses(w.Spec) {
			mark(w.Namespace, u.Secret, w.Ref())
		}
	}
	for i := range a.snap.ServiceAccounts {
		sa := &a.snap.ServiceAccounts[i]
		for _, r := range sa.Secrets {
			mark(sa.Namespace, r.Name, "ServiceAccount "+sa.Name)
		}
		for _, r := range sa.ImagePullSecrets {
			mark(sa.Namespace, r.Name, "ServiceAccount "+sa.Name)
		}
	}
	for i := range a.snap.Ingresses {
		in := &a.snap.Ingresses[i]
		for _, t := range in.Spec.TLS {
			mark(in.Namespace, t.SecretName, "Ingress "+in.Name)
		}
	}
	return used
}

func checkUnused(a *analysis) outcome {
	if s := a.secretSkip(); s != "" {
		return outcome{skip: s}
	}
	if g := a.workloadGaps(); g != "" && len(a.workloads) == 0 {
		return outcome{skip: g}
	}
	o := outcome{note: strings.TrimPrefix(strings.TrimPrefix(a.secretNote()+"; "+a.workloadGaps(), "; "), "; ")}
	used := a.usedSecrets()
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		if classify(s) != classStatic {
			continue
		}
		if a.snap.Missing("pods", s.Namespace) {
			continue // cannot tell
		}
		o.evaluated++
		if _, ok := used[s.Namespace+"/"+s.Name]; ok {
			continue
		}
		o.findings = append(o.findings, Finding{Object: secretRef(s), Namespace: s.Namespace,
			Message:  secretRef(s) + " is not used by any workload, service account or ingress",
			Evidence: created(a.now, s)})
	}
	return o
}

// certificate parses the first certificate of a Secret's tls.crt.
func certificate(s *corev1.Secret) (*x509.Certificate, bool) {
	data, ok := s.Data[corev1.TLSCertKey]
	if !ok || len(data) == 0 {
		return nil, false
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		return c, err == nil
	}
}

func (a *analysis) tlsCheck(expired bool) outcome {
	if s := a.secretSkip(); s != "" {
		return outcome{skip: s}
	}
	o := outcome{note: a.secretNote()}
	for i := range a.snap.Secrets {
		s := &a.snap.Secrets[i]
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			continue
		}
		o.evaluated++
		c, ok := certificate(s)
		if !ok {
			continue
		}
		left := c.NotAfter.Sub(a.now)
		ev := []string{"subject " + c.Subject.String(), "not after " + c.NotAfter.UTC().Format(time.RFC3339)}
		if n := s.Annotations["cert-manager.io/certificate-name"]; n != "" {
			ev = append(ev, "issued by cert-manager Certificate "+n)
		}
		switch {
		case expired && left <= 0:
			o.findings = append(o.findings, Finding{Object: secretRef(s), Namespace: s.Namespace,
				Message: fmt.Sprintf("the certificate in %s expired %s ago", secretRef(s), age(a.now, c.NotAfter)), Evidence: ev})
		case !expired && left > 0 && left <= a.cfg.ExpiryWindow:
			o.findings = append(o.findings, Finding{Object: secretRef(s), Namespace: s.Namespace,
				Message: fmt.Sprintf("the certificate in %s expires in %d days", secretRef(s), int(left.Hours()/24)), Evidence: ev})
		}
	}
	return o
}

func checkTLSExpired(a *analysis) outcome  { return a.tlsCheck(true) }
func checkTLSExpiring(a *analysis) outcome { return a.tlsCheck(false) }

const encryptionHelp = "needs --encryption-config or --apiserver-manifest (managed clusters: check the provider's envelope-encryption setting)"

func apiServerRef(a *analysis) string {
	return "kube-apiserver (" + a.snap.APIServer.Source + ")"
}

func checkEncryptionMissing(a *analysis) outcome {
	if e := a.snap.Encryption; e != nil {
		o := outcome{evaluated: 1}
		if _, ok := e.ForSecrets(); !ok {
			o.findings = append(o.findings, Finding{Object: "EncryptionConfiguration " + e.Source,
				Message: "the EncryptionConfiguration has no entry for secrets: they are stored unencrypted"})
		}
		return o
	}
	if c := a.snap.APIServer; c != nil {
		o := outcome{evaluated: 1}
		if c.Flags[EncryptionFlag] == "" {
			o.findings = append(o.findings, Finding{Object: apiServerRef(a),
				Message: "kube-apiserver runs without --encryption-provider-config: Secrets are stored in etcd as plaintext"})
		} else {
			o.note = "the flag is set; pass --encryption-config to check its contents"
		}
		return o
	}
	return outcome{skip: encryptionHelp}
}

// secretProviders returns the providers for secrets, or why they are not
// known.
func (a *analysis) secretProviders() ([]Provider, string) {
	if e := a.snap.Encryption; e != nil {
		p, ok := e.ForSecrets()
		if !ok || len(p) == 0 {
			return nil, "no provider applies to secrets (see encryption-missing)"
		}
		return p, ""
	}
	if c := a.snap.APIServer; c != nil && c.Flags[EncryptionFlag] == "" {
		return nil, "encryption at rest is not configured (see encryption-missing)"
	}
	return nil, encryptionHelp
}

func checkIdentityFirst(a *analysis) outcome {
	p, why := a.secretProviders()
	if why != "" {
		return outcome{skip: why}
	}
	o := outcome{evaluated: 1}
	if p[0].Kind == ProviderIdentity {
		o.findings = append(o.findings, Finding{Object: "EncryptionConfiguration " + a.snap.Encryption.Source,
			Message:  "identity is the first provider for secrets: new Secrets are written unencrypted",
			Evidence: []string{"providers: " + providerList(p)}})
	}
	return o
}

func providerList(p []Provider) string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

func checkKMSv2(a *analysis) outcome {
	p, why := a.secretProviders()
	if why != "" && a.snap.Encryption == nil && (a.snap.APIServer == nil || a.snap.APIServer.Flags[EncryptionFlag] != "") {
		return outcome{skip: why}
	}
	o := outcome{evaluated: 1}
	obj := "EncryptionConfiguration"
	if a.snap.Encryption != nil {
		obj += " " + a.snap.Encryption.Source
	} else {
		obj = apiServerRef(a)
	}
	switch {
	case len(p) == 0:
		o.findings = append(o.findings, Finding{Object: obj, Message: "Secrets are not encrypted at rest at all"})
	case p[0].Kind == ProviderKMS && p[0].APIVersion == "v2":
	case p[0].Kind == ProviderKMS:
		o.findings = append(o.findings, Finding{Object: obj, Message: "the kms provider for secrets uses the deprecated KMS v1 API",
			Evidence: []string{"providers: " + providerList(p)}})
	default:
		msg := fmt.Sprintf("Secrets are encrypted with %s, whose key sits in a file on the control-plane nodes", p[0].Kind)
		if p[0].Kind == ProviderIdentity {
			msg = "Secrets are written unencrypted (identity first)"
		}
		o.findings = append(o.findings, Finding{Object: obj, Message: msg, Evidence: []string{"providers: " + providerList(p)}})
	}
	return o
}
