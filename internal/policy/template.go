package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Identity is what templates in rule paths are rendered from: the caller an
// ACL is built for.
type Identity struct {
	EntityID   string
	EntityName string
	// Metadata is the caller's metadata: what {{identity.metadata.<key>}}
	// and {{identity.entity.metadata.<key>}} read.
	Metadata map[string]string
	// Aliases maps an auth mount accessor to the metadata of the caller's
	// alias on that mount: what
	// {{identity.entity.aliases.<accessor>.metadata.<key>}} reads.
	Aliases map[string]map[string]string
}

var errUnbalanced = errors.New("failed to validate policy templating: unbalanced templating characters")

// templateRef is one parsed {{...}} expression.
type templateRef struct {
	field    string // "id", "name", "metadata" or "alias"
	accessor string // for "alias"
	key      string // for "metadata" and "alias"
}

// splitTemplates cuts p into literal text and template expressions using
// Vault's rules: "{{" opens, the next "}}" closes, and any other "}}" is
// unbalanced. It calls lit for literal pieces and tmpl for the trimmed text
// of each expression.
func splitTemplates(p string, lit func(string), tmpl func(string) error) error {
	pieces := strings.Split(p, "{{")
	if strings.Contains(pieces[0], "}}") {
		return errUnbalanced
	}
	lit(pieces[0])
	for _, piece := range pieces[1:] {
		expr, rest, ok := strings.Cut(piece, "}}")
		if !ok || strings.Contains(rest, "}}") {
			return errUnbalanced
		}
		if err := tmpl(strings.TrimSpace(expr)); err != nil {
			return err
		}
		lit(rest)
	}
	return nil
}

// parseTemplate parses the trimmed text of a {{...}} expression.
func parseTemplate(expr string) (templateRef, error) {
	switch expr {
	case "identity.entity.id":
		return templateRef{field: "id"}, nil
	case "identity.entity.name":
		return templateRef{field: "name"}, nil
	}
	for _, prefix := range []string{"identity.metadata.", "identity.entity.metadata."} {
		if key, ok := strings.CutPrefix(expr, prefix); ok && key != "" {
			return templateRef{field: "metadata", key: key}, nil
		}
	}
	if rest, ok := strings.CutPrefix(expr, "identity.entity.aliases."); ok {
		accessor, sel, _ := strings.Cut(rest, ".")
		if key, ok := strings.CutPrefix(sel, "metadata."); ok && accessor != "" && key != "" {
			return templateRef{field: "alias", accessor: accessor, key: key}, nil
		}
	}
	return templateRef{}, fmt.Errorf("unsupported identity template \"{{%s}}\": coffer supports "+
		"{{identity.entity.id}}, {{identity.entity.name}}, {{identity.metadata.<key>}}, "+
		"{{identity.entity.metadata.<key>}} and {{identity.entity.aliases.<mount accessor>.metadata.<key>}}", expr)
}

// checkTemplates validates every template in p and returns p with each
// template replaced by a placeholder, for the glob checks.
func checkTemplates(p string) (string, error) {
	if !strings.Contains(p, "{{") && !strings.Contains(p, "}}") {
		return p, nil
	}
	var b strings.Builder
	err := splitTemplates(p, func(s string) { b.WriteString(s) }, func(expr string) error {
		if _, err := parseTemplate(expr); err != nil {
			return err
		}
		b.WriteString("t")
		return nil
	})
	return b.String(), err
}

// render fills in the templates of p for id. It reports false when a value
// is missing, empty or unsafe, in which case the rule does not apply to
// this caller.
func render(p string, id *Identity) (string, bool) {
	if !strings.Contains(p, "{{") {
		return p, true
	}
	var b strings.Builder
	err := splitTemplates(p, func(s string) { b.WriteString(s) }, func(expr string) error {
		ref, err := parseTemplate(expr)
		if err != nil {
			return err
		}
		v, ok := ref.value(id)
		if !ok || !safeValue(v) {
			return errDropRule
		}
		b.WriteString(v)
		return nil
	})
	if err != nil {
		return "", false
	}
	return b.String(), true
}

var errDropRule = errors.New("template value missing or unsafe")

func (r templateRef) value(id *Identity) (string, bool) {
	switch r.field {
	case "id":
		return id.EntityID, true
	case "name":
		return id.EntityName, true
	case "metadata":
		v, ok := id.Metadata[r.key]
		return v, ok
	case "alias":
		md, ok := id.Aliases[r.accessor]
		if !ok {
			return "", false
		}
		v, ok := md[r.key]
		return v, ok
	}
	return "", false
}

// safeValue reports whether a rendered template value can be put into a
// path without widening it: not empty, no path separators, no globs, no
// dot segments, no NUL, valid UTF-8.
func safeValue(v string) bool {
	return v != "" && v != "." &&
		!strings.ContainsAny(v, "/*+\x00") &&
		!strings.Contains(v, "..") &&
		utf8.ValidString(v)
}
