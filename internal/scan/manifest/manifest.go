// Package manifest reads Kubernetes objects from YAML or JSON (multi-document
// files, `kind: List` and other *List wrappers, Helm output, `kubectl get -o
// json` dumps) and yields the entries of every Secret: `data` values
// base64-decoded, `stringData` values as written, each with the line and
// column of its key.
//
// Parsing is defensive: the YAML decoder bounds nesting depth, aliases are
// not expanded (an alias bomb costs nothing), and the walk visits a bounded
// number of nodes.
package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Entry is one key of a Secret.
type Entry struct {
	// Namespace and Name identify the Secret; Kind is "Secret".
	Kind, Namespace, Name string
	// Field is "data" or "stringData".
	Field string
	// Key is the entry's key; Value its decoded bytes.
	Key   string
	Value []byte
	// Line and Column (1-based) locate the key in the document.
	Line, Column int
	// Decoded is false when a data value was not valid base64 and is given
	// as written.
	Decoded bool
}

// MaxSize is the largest document Parse accepts.
const MaxSize = 16 << 20

// Limits on the walk.
const (
	maxNodes = 1 << 20
	maxDepth = 32
)

// ErrTooLarge is returned for input over MaxSize.
var ErrTooLarge = errors.New("manifest: larger than 16 MiB")

// Likely reports whether data may hold a Kubernetes Secret and is worth
// parsing.
func Likely(data []byte) bool {
	return bytes.Contains(data, []byte("Secret")) && bytes.Contains(data, []byte("kind"))
}

// Parse returns the Secret entries in data. Documents that fail to parse
// are reported in the error (joined) while entries from the others are
// still returned.
func Parse(data []byte) ([]Entry, error) {
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	w := &walker{}
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A JSON dump yaml cannot read: fall back to encoding/json.
			if doc == 1 && looksJSON(data) {
				if entries, jerr := parseJSON(data); jerr == nil {
					return entries, nil
				}
			}
			errs = append(errs, fmt.Errorf("document %d: %w", doc, err))
			break // the decoder cannot resynchronise after an error
		}
		w.visit(&n, 0)
		if w.nodes > maxNodes {
			errs = append(errs, errors.New("manifest: too many nodes, rest skipped"))
			break
		}
	}
	return w.entries, errors.Join(errs...)
}

func looksJSON(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

type walker struct {
	entries []Entry
	nodes   int
}

func (w *walker) visit(n *yaml.Node, depth int) {
	w.nodes++
	if n == nil || depth > maxDepth || w.nodes > maxNodes {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.visit(c, depth+1)
		}
	case yaml.SequenceNode: // a bare JSON/YAML array of objects
		for _, c := range n.Content {
			w.visit(c, depth+1)
		}
	case yaml.MappingNode:
		kind := scalar(lookup(n, "kind"))
		if kind == "Secret" {
			w.secret(n)
			return
		}
		if items := lookup(n, "items"); items != nil && items.Kind == yaml.SequenceNode &&
			(kind == "List" || strings.HasSuffix(kind, "List")) {
			for _, c := range items.Content {
				w.visit(c, depth+1)
			}
		}
		// OpenShift templates and similar wrappers.
		if objs := lookup(n, "objects"); objs != nil && objs.Kind == yaml.SequenceNode && kind == "Template" {
			for _, c := range objs.Content {
				w.visit(c, depth+1)
			}
		}
	}
}

// lookup returns the value of key in mapping n, without following aliases
// of the mapping itself.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// deref follows one level of alias: enough for `data: *shared`, never a
// chain that could loop or multiply.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func (w *walker) secret(n *yaml.Node) {
	meta := lookup(n, "metadata")
	ns, name := scalar(lookup(meta, "namespace")), scalar(lookup(meta, "name"))
	for _, field := range []string{"data", "stringData"} {
		m := lookup(n, field)
		if m == nil || m.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			w.nodes++
			k, v := m.Content[i], deref(m.Content[i+1])
			if k.Kind != yaml.ScalarNode || v == nil || v.Kind != yaml.ScalarNode {
				continue
			}
			e := Entry{Kind: "Secret", Namespace: ns, Name: name, Field: field, Key: k.Value,
				Line: k.Line, Column: k.Column}
			if field == "data" {
				e.Value, e.Decoded = decode(v.Value)
			} else {
				e.Value, e.Decoded = []byte(v.Value), true
			}
			w.entries = append(w.entries, e)
		}
	}
}

// decode base64-decodes a data value, ignoring whitespace; invalid base64
// is returned as written.
func decode(s string) ([]byte, bool) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if d, err := base64.StdEncoding.DecodeString(clean); err == nil {
		return d, true
	}
	if d, err := base64.RawStdEncoding.DecodeString(clean); err == nil {
		return d, true
	}
	return []byte(s), false
}

// parseJSON handles JSON that the YAML decoder rejects. Positions are not
// known: entries get line 1.
func parseJSON(data []byte) ([]Entry, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out []Entry
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > maxDepth {
			return
		}
		switch t := v.(type) {
		case []any:
			for _, c := range t {
				walk(c, depth+1)
			}
		case map[string]any:
			kind, _ := t["kind"].(string)
			if kind == "Secret" {
				meta, _ := t["metadata"].(map[string]any)
				ns, _ := meta["namespace"].(string)
				name, _ := meta["name"].(string)
				for _, field := range []string{"data", "stringData"} {
					m, _ := t[field].(map[string]any)
					for k, val := range m {
						s, ok := val.(string)
						if !ok {
							continue
						}
						e := Entry{Kind: "Secret", Namespace: ns, Name: name, Field: field, Key: k, Line: 1, Column: 1}
						if field == "data" {
							e.Value, e.Decoded = decode(s)
						} else {
							e.Value, e.Decoded = []byte(s), true
						}
						out = append(out, e)
					}
				}
				return
			}
			if items, ok := t["items"].([]any); ok && strings.HasSuffix(kind, "List") {
				walk(items, depth+1)
			}
		}
	}
	walk(v, 0)
	return out, nil
}
