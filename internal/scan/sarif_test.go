package scan_test

import (
	"encoding/json"
	"net/url"
	"testing"
)

// checkSARIF checks a log against the constraints of the SARIF 2.1.0
// schema that apply to what coffer writes: required properties, types,
// enums, minimums, URI references, and rule indexes that resolve.
func checkSARIF(t *testing.T, data []byte, results int) {
	t.Helper()
	var log map[string]any
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	if log["version"] != "2.1.0" {
		t.Fatalf("version %v", log["version"])
	}
	if s, _ := log["$schema"].(string); s == "" {
		t.Error("no $schema")
	}
	runs, _ := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("runs %v", log["runs"])
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if name, _ := driver["name"].(string); name == "" {
		t.Error("driver.name missing")
	}
	if _, err := url.Parse(driver["informationUri"].(string)); err != nil {
		t.Error(err)
	}
	rules, _ := driver["rules"].([]any)
	for _, r := range rules {
		rm := r.(map[string]any)
		if id, _ := rm["id"].(string); id == "" {
			t.Error("rule without id")
		}
		for _, k := range []string{"shortDescription", "fullDescription", "help"} {
			if m, ok := rm[k].(map[string]any); !ok || m["text"] == "" {
				t.Errorf("rule %v: %s.text missing", rm["id"], k)
			}
		}
		lvl := rm["defaultConfiguration"].(map[string]any)["level"]
		checkLevel(t, lvl)
	}
	if ck := run["columnKind"]; ck != "utf16CodeUnits" && ck != "unicodeCodePoints" {
		t.Errorf("columnKind %v", ck)
	}
	rs, _ := run["results"].([]any)
	if len(rs) != results {
		t.Fatalf("%d results, want %d", len(rs), results)
	}
	for _, r := range rs {
		rm := r.(map[string]any)
		if msg, ok := rm["message"].(map[string]any); !ok || msg["text"] == "" {
			t.Error("result.message.text missing")
		}
		checkLevel(t, rm["level"])
		idx := int(rm["ruleIndex"].(float64))
		if idx < 0 || idx >= len(rules) || rules[idx].(map[string]any)["id"] != rm["ruleId"] {
			t.Errorf("ruleIndex %d does not resolve to %v", idx, rm["ruleId"])
		}
		locs := rm["locations"].([]any)
		if len(locs) == 0 {
			t.Fatal("no location")
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		uri := pl["artifactLocation"].(map[string]any)["uri"].(string)
		if _, err := url.Parse(uri); err != nil {
			t.Errorf("uri %q is not a URI reference: %v", uri, err)
		}
		reg := pl["region"].(map[string]any)
		for _, k := range []string{"startLine", "startColumn", "endLine"} {
			if v, ok := reg[k].(float64); !ok || v < 1 {
				t.Errorf("region.%s = %v, want >= 1", k, reg[k])
			}
		}
		fp := rm["partialFingerprints"].(map[string]any)
		if len(fp) == 0 {
			t.Error("no partialFingerprints")
		}
	}
}

func checkLevel(t *testing.T, l any) {
	t.Helper()
	switch l {
	case "none", "note", "warning", "error":
	default:
		t.Errorf("level %v not in the SARIF enum", l)
	}
}
