package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// SARIF 2.1.0 output, the subset GitHub code scanning reads.
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	// FingerprintKey names coffer's fingerprint in partialFingerprints.
	FingerprintKey = "cofferSecret/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool     `json:"tool"`
	ColumnKind string        `json:"columnKind"`
	Results    []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
}

// sarifURI turns a path into a URI reference: relative paths stay relative
// (GitHub resolves them against the checkout), absolute ones become file
// URIs, and every segment is percent-encoded.
func sarifURI(p string) string {
	if p == "<stdin>" {
		return "stdin"
	}
	slash := filepath.ToSlash(p)
	abs := strings.HasPrefix(slash, "/")
	segs := strings.Split(strings.TrimPrefix(slash, "./"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := strings.Join(segs, "/")
	if abs {
		return "file://" + u
	}
	return u
}

func writeSARIF(w io.Writer, res *Result, show bool, version string) error {
	driver := sarifDriver{Name: "coffer-scan", InformationURI: "https://github.com/cofferhq/coffer", Version: version, Rules: []sarifRule{}}
	index := map[string]int{}
	run := sarifRun{ColumnKind: "unicodeCodePoints", Results: []sarifResult{}}
	for _, f := range res.Findings {
		i, ok := index[f.RuleID]
		if !ok {
			i = len(driver.Rules)
			index[f.RuleID] = i
			desc := f.Description
			if desc == "" {
				desc = f.RuleID
			}
			driver.Rules = append(driver.Rules, sarifRule{
				ID: f.RuleID, Name: ruleName(f.RuleID),
				ShortDescription:     sarifText{Text: desc},
				FullDescription:      sarifText{Text: desc + " found by coffer scan."},
				Help:                 sarifText{Text: "Move the credential into coffer, rotate it, and remove it from the file and from git history. If it is not a secret, add an inline coffer:ignore comment or put its fingerprint in the baseline."},
				DefaultConfiguration: sarifConfig{Level: f.Severity.SARIFLevel()},
				Properties: map[string]any{
					"tags":              []string{"security", "secret", f.Family},
					"security-severity": f.Severity.SecuritySeverity(),
					"precision":         "high",
				},
			})
		}
		msg := fmt.Sprintf("%s (%s)", f.Description, f.RuleID)
		if show {
			msg += ": " + f.Secret.Reveal()
		} else {
			msg += ": " + f.Secret.Redacted()
		}
		r := sarifResult{
			RuleID: f.RuleID, RuleIndex: i, Level: f.Severity.SARIFLevel(), Message: sarifText{Text: msg},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: sarifURI(f.File)},
				Region:           sarifRegion{StartLine: max(1, f.Line), StartColumn: max(1, f.Column), EndLine: max(1, f.Line, f.EndLine)},
			}}},
			PartialFingerprints: map[string]string{FingerprintKey: f.Fingerprint},
		}
		props := map[string]any{"severity": string(f.Severity)}
		if f.Commit != nil {
			props["commit"] = f.Commit.Hash
			props["author"] = f.Commit.Author
			props["date"] = f.Commit.Date
		}
		if f.Kubernetes != nil {
			props["kubernetes"] = f.Kubernetes
		}
		r.Properties = props
		run.Results = append(run.Results, r)
	}
	run.Tool = sarifTool{Driver: driver}
	log := sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// ruleName turns "github-pat" into "GithubPat" (SARIF rule names are
// identifiers).
func ruleName(id string) string {
	var b strings.Builder
	up := true
	for _, c := range id {
		if c == '-' || c == '.' {
			up = true
			continue
		}
		if up && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteRune(c)
	}
	return b.String()
}
