package scantest

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/rule"
)

// Sample is a generated true positive for a rule.
type Sample struct {
	RuleID string
	Family string
	// Text is what gets planted: the full regex match.
	Text string
	// Secret is the part of Text the rule reports.
	Secret string
	// MultiLine is set for samples that span lines (PEM and the like).
	MultiLine bool
}

// Sample generates a true positive for a content rule: a random match of
// its regex whose secret passes the rule's entropy, placeholder and
// structural checks (for validating rules the secret is built to be
// valid: a key that parses, a token whose checksum checks).
func (g *Gen) Sample(r rule.Rule, variant int) (Sample, error) {
	re, err := r.Compile()
	if err != nil {
		return Sample{}, err
	}
	group := r.Group()
	for attempt := 0; attempt < 50; attempt++ {
		text, span, err := g.Match(r.Pattern(), group)
		if err != nil {
			return Sample{}, err
		}
		if group == 0 {
			span = [2]int{0, len(text)}
		}
		if span[0] < 0 {
			continue
		}
		secret := text[span[0]:span[1]]
		if repl, ok := g.validSecret(r, secret, variant); ok {
			secret = repl
			text = text[:span[0]] + repl + text[span[1]:]
		}
		s := Sample{RuleID: r.ID, Family: r.Family, Text: text, Secret: secret, MultiLine: strings.Contains(text, "\n")}
		if g.accepts(r, re, s) {
			return s, nil
		}
	}
	return Sample{}, fmt.Errorf("rule %s: no valid sample in 50 attempts", r.ID)
}

// accepts checks a sample against the rule as the engine would, minus the
// keyword prefilter (which the corpus test exercises).
func (g *Gen) accepts(r rule.Rule, re *regexp.Regexp, s Sample) bool {
	m := re.FindStringSubmatchIndex(s.Text)
	if m == nil || m[0] != 0 {
		return false
	}
	gi := r.Group()
	if m[2*gi] < 0 || s.Text[m[2*gi]:m[2*gi+1]] != s.Secret {
		return false
	}
	if r.Entropy > 0 && detect.Entropy([]byte(s.Secret)) < r.Entropy {
		return false
	}
	if r.Validate != "pem" && detect.Placeholder([]byte(s.Secret)) {
		return false
	}
	low := strings.ToLower(s.Text)
	for _, k := range r.Keywords {
		if strings.Contains(low, strings.ToLower(k)) {
			return true
		}
	}
	return false
}

// validSecret builds a structurally valid secret for validating rules.
func (g *Gen) validSecret(r rule.Rule, generated string, variant int) (string, bool) {
	switch r.Validate {
	case "pem":
		switch r.ID {
		case "openssh-private-key":
			return strings.TrimSuffix(g.OpenSSHKey(), "\n"), true
		case "pgp-private-key":
			return strings.TrimSuffix(g.PGPKey(), "\n"), true
		case "private-key-json-escaped":
			return strings.ReplaceAll(g.PEMKey(variant), "\n", `\n`), true
		}
		return strings.TrimSuffix(g.PEMKey(variant), "\n"), true
	case "jwt":
		return g.JWT(), true
	case "crc32-base62":
		return g.CRC32Token(generated[:strings.IndexByte(generated, '_')+1]), true
	case "base64-pem":
		return base64.StdEncoding.EncodeToString([]byte(g.PEMKey(variant))), true
	case "basic-auth", "docker-auth":
		return base64.StdEncoding.EncodeToString([]byte(g.Word(8) + ":" + g.Password(16))), true
	case "assignment":
		if strings.HasPrefix(generated, "Bearer") || len(generated) > 40 {
			return generated, false
		}
		return g.Password(max(len(generated), 12)), true
	}
	return generated, false
}
