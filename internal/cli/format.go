package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// row is one key/value line of a table.
type row struct {
	k string
	v any
}

// print writes v in the chosen format. rows, when given, is the table
// form; otherwise a map is printed as sorted Key/Value lines.
func (e *env) print(v any, rows []row) error {
	switch e.outFormat() {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	case "yaml":
		var generic any
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		y, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(y)
		return err
	}
	if rows == nil {
		rows = rowsOf(v)
	}
	return writeTable(e.stdout, rows)
}

func rowsOf(v any) []row {
	b, err := json.Marshal(v)
	if err != nil {
		return []row{{"value", fmt.Sprint(v)}}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return []row{{"value", string(b)}}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]row, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, row{k, m[k]})
	}
	return rows
}

func writeTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.k, cell(r.v))
	}
	return tw.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "n/a"
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = cell(p)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case map[string]any, map[string]string:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}
