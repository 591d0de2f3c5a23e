package posture

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"
)

// SARIF 2.1.0, the subset GitHub code scanning reads. scan's writer is
// built around file locations; posture's results are cluster objects, so
// each gets a logical location and an artifact URI naming the object.
const (
	sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"
	// FingerprintKey names posture's fingerprint in partialFingerprints.
	FingerprintKey = "cofferPosture/v1"
)

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	Properties           map[string]any    `json:"properties"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []map[string]any  `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

// objectURI names a cluster object as a relative URI:
// "kubernetes/Deployment/ns/name".
func objectURI(object string) string {
	kind, rest, _ := strings.Cut(object, " ")
	segs := append([]string{"kubernetes", kind}, strings.Split(rest, "/")...)
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func sarifName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// WriteSARIF writes the findings as a SARIF 2.1.0 log with one rule per
// check.
func WriteSARIF(w io.Writer, rep *Report, o WriteOptions) error {
	var rules []sarifRule
	index := map[string]int{}
	for _, c := range rep.Checks {
		index[c.ID] = len(rules)
		tags := []string{"security", "kubernetes", "secrets", c.Aspect}
		if c.CIS != "" {
			tags = append(tags, "CIS-"+c.CIS)
		}
		rules = append(rules, sarifRule{
			ID: c.ID, Name: sarifName(c.ID),
			ShortDescription:     sarifText{c.Title},
			FullDescription:      sarifText{c.Title + " (coffer posture, maturity level " + LevelNames[c.Level] + ")."},
			Help:                 sarifText{c.Remediation},
			DefaultConfiguration: map[string]string{"level": c.Severity.SARIFLevel()},
			Properties:           map[string]any{"tags": tags, "security-severity": c.Severity.SecuritySeverity(), "precision": "high"},
		})
	}
	results := []sarifResult{}
	for _, f := range rep.Findings {
		msg := f.Message
		if len(f.Evidence) > 0 {
			msg += ". " + strings.Join(f.Evidence, "; ")
		}
		props := map[string]any{"severity": string(f.Severity), "object": f.Object}
		if f.CIS != "" {
			props["cis"] = f.CIS
		}
		results = append(results, sarifResult{
			RuleID: f.Check, RuleIndex: index[f.Check], Level: f.Severity.SARIFLevel(), Message: sarifText{msg},
			Locations: []map[string]any{{
				"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": objectURI(f.Object)}},
				"logicalLocations": []map[string]string{{"name": f.Object, "kind": "resource"}},
			}},
			PartialFingerprints: map[string]string{FingerprintKey: f.Fingerprint},
			Properties:          props,
		})
	}
	log := map[string]any{
		"$schema": sarifSchema,
		"version": "2.1.0",
		"runs": []map[string]any{{
			"tool": map[string]any{"driver": map[string]any{
				"name": "coffer-posture", "informationUri": "https://github.com/cofferhq/coffer",
				"version": o.Version, "rules": rules,
			}},
			"results": results,
			"properties": map[string]any{
				"source": rep.Source, "maturityLevel": rep.Maturity.Level, "maturityName": rep.Maturity.Name, "score": rep.Maturity.Score,
			},
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}
