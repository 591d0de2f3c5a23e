package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// String returns p as canonical HCL: one path block per rule, in order,
// keys in a fixed order with aligned "=", capabilities in canonical order,
// parameter maps sorted, legacy `policy = "..."` written as capabilities.
// Comments in the source document are not kept (the "comment" key is).
// Parsing the result gives back an equal Policy; this is what
// `coffer policy fmt` prints.
func (p *Policy) String() string {
	var b strings.Builder
	for i, r := range p.Rules {
		if i > 0 {
			b.WriteByte('\n')
		}
		r.format(&b)
	}
	return b.String()
}

func (r *Rule) format(b *strings.Builder) {
	type kv struct{ key, val string }
	var lines []kv
	if r.Comment != "" {
		lines = append(lines, kv{"comment", quote(r.Comment)})
	}
	caps := make([]string, len(r.Capabilities))
	for i, c := range r.Capabilities {
		caps[i] = quote(c.String())
	}
	lines = append(lines, kv{"capabilities", "[" + strings.Join(caps, ", ") + "]"})
	if r.AllowedParameters != nil {
		lines = append(lines, kv{"allowed_parameters", formatParams(r.AllowedParameters)})
	}
	if r.DeniedParameters != nil {
		lines = append(lines, kv{"denied_parameters", formatParams(r.DeniedParameters)})
	}
	if r.RequiredParameters != nil {
		names := make([]string, len(r.RequiredParameters))
		for i, n := range r.RequiredParameters {
			names[i] = quote(n)
		}
		lines = append(lines, kv{"required_parameters", "[" + strings.Join(names, ", ") + "]"})
	}
	if r.MinWrappingTTL != 0 {
		lines = append(lines, kv{"min_wrapping_ttl", quote(formatDuration(r.MinWrappingTTL))})
	}
	if r.MaxWrappingTTL != 0 {
		lines = append(lines, kv{"max_wrapping_ttl", quote(formatDuration(r.MaxWrappingTTL))})
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l.key))
	}
	path := r.Path
	if strings.HasPrefix(path, "/") {
		path = "/" + path // Parse strips one leading "/"
	}
	fmt.Fprintf(b, "path %s {\n", quote(path))
	for _, l := range lines {
		fmt.Fprintf(b, "  %s = %s\n", pad(l.key, width), l.val)
	}
	b.WriteString("}\n")
}

func formatParams(m map[string][]any) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := slices.Sorted(maps.Keys(m))
	width := 0
	for _, k := range keys {
		width = max(width, utf8.RuneCountInString(quote(k)))
	}
	var b strings.Builder
	b.WriteString("{\n")
	for _, k := range keys {
		vals := make([]string, len(m[k]))
		for i, v := range m[k] {
			vals[i] = formatValue(v)
		}
		fmt.Fprintf(&b, "    %s = [%s]\n", pad(quote(k), width), strings.Join(vals, ", "))
	}
	b.WriteString("  }")
	return b.String()
}

// pad right-pads s with spaces to width characters.
func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0" // keep it a float when read back
		}
		return s
	}
	// Only hand-built rules get here; write something HCL can read.
	return quote(fmt.Sprint(v))
}

// formatDuration writes d in the largest whole unit, or as Go prints it.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// quote writes s as an HCL string literal that HCL reads back as s. Beyond
// the usual escapes it writes "${" as "\x24{", since HCL copies
// interpolation text without unescaping it.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '$' && strings.HasPrefix(s[i+1:], "{"):
			b.WriteString(`\x24`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
