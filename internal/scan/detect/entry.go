package detect

import (
	"bytes"
	"unicode/utf8"
)

// maxEntry bounds the decoded value ScanEntry looks at.
const maxEntry = 8 << 20

// ScanEntry checks one decoded Kubernetes Secret entry (key name and
// value). Content rules run on the value; a single-line value is presented
// as "key: value" so that generic rules see the key name. When no content
// rule fires, secret-entry rules match the key name and judge the value
// itself: a placeholder is not a finding, a credential-shaped value or a
// binary keystore is. Offsets, lines and columns in the returned matches
// are relative to the value.
func (e *Engine) ScanEntry(key string, value []byte) []Match {
	if len(value) > maxEntry {
		value = value[:maxEntry]
	}
	text := utf8.Valid(value) && bytes.IndexByte(value, 0) < 0
	var out []Match
	if text {
		if bytes.IndexByte(value, '\n') < 0 {
			doc := make([]byte, 0, len(key)+2+len(value))
			doc = append(append(append(doc, key...), ": "...), value...)
			skip := int64(len(key) + 2)
			for _, m := range e.ScanBytes(doc, key) {
				m.Offset = max(0, m.Offset-skip)
				m.Column = max(1, m.Column-int(skip))
				out = append(out, m)
			}
		} else {
			out = e.ScanBytes(value, key)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, r := range e.entryRules {
		if !r.re.MatchString(key) || matchAny(r.allowPath, key) {
			continue
		}
		if !e.entryValue(r, key, value, text) {
			continue
		}
		return []Match{{Rule: r, Secret: NewSecret(value), Line: 1, Column: 1, EndLine: 1}}
	}
	return nil
}

func (e *Engine) entryValue(r *Rule, key string, value []byte, text bool) bool {
	v := bytes.TrimSpace(value)
	if len(v) == 0 {
		return false
	}
	if !text {
		if r.validate != nil && r.Validate == "pkcs12" {
			return ValidPKCS12(v)
		}
		return len(v) >= 16 // keystores, DER keys, random bytes
	}
	if bytes.IndexByte(v, '\n') >= 0 {
		return false // a file: content rules have judged it
	}
	if Placeholder(v) || allowlisted(v, r.allowRE, r.stopwords) || allowlisted(v, e.globalRE, e.globalWords) {
		return false
	}
	if r.Entropy > 0 && Entropy(v) < r.Entropy {
		return false
	}
	if r.validate != nil && !r.validate(v, []byte(key+": ")) {
		return false
	}
	return true
}
