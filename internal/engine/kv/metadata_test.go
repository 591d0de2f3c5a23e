package kv

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

func TestMetadataReadShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.write("app", map[string]any{"a": "1"})
	h.clock.Advance(185 * time.Millisecond)
	h.write("app", map[string]any{"a": "2"})
	h.clock.Advance(5 * time.Second)
	h.noContent(core.OpWrite, "metadata/app", `{"max_versions":5,"cas_required":false,"delete_version_after":"768h","custom_metadata":{"owner":"team-a","managed-by":"external-secrets"}}`)

	got := h.ok(core.OpRead, "metadata/app", nil)
	want := map[string]any{
		"cas_required": false, "created_time": "2026-11-22T13:36:40.648750381Z",
		"current_metadata_version": json.Number("1"), "current_version": json.Number("2"),
		"custom_metadata":      map[string]any{"managed-by": "external-secrets", "owner": "team-a"},
		"delete_version_after": "768h0m0s", "max_versions": json.Number("5"), "metadata_cas_required": false,
		"oldest_version": json.Number("0"), "updated_time": "2026-11-22T13:36:45.833750381Z",
		"versions": map[string]any{
			"1": map[string]any{"created_time": "2026-11-22T13:36:40.648750381Z", "deletion_time": "", "destroyed": false, "expires_at": "", "last_read": ""},
			"2": map[string]any{"created_time": "2026-11-22T13:36:40.833750381Z", "deletion_time": "", "destroyed": false, "expires_at": "", "last_read": ""},
		},
		"expire_after": "0s", "rotation_period": "0s", "next_rotation": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata = %v\nwant       %v", got, want)
	}

	// custom_metadata is echoed by data writes and reads from now on.
	out := h.ok(core.OpWrite, "data/app", map[string]any{"data": map[string]any{"a": "3"}})
	if !reflect.DeepEqual(out["custom_metadata"], want["custom_metadata"]) {
		t.Fatalf("write custom_metadata = %v", out["custom_metadata"])
	}
	if cm := obj(t, h.ok(core.OpRead, "data/app", nil)["metadata"])["custom_metadata"]; !reflect.DeepEqual(cm, want["custom_metadata"]) {
		t.Fatalf("read custom_metadata = %v", cm)
	}

	h.fails(core.OpRead, "metadata/none", nil, 404, "")
	h.fails(core.OpRead, "metadata/", nil, 400, "missing path")
}

// TestDeleteVersionAfterQuirk pins Vault's behaviour: a live version
// carries its future deletion_time, and is deleted once it passes.
func TestDeleteVersionAfterQuirk(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.noContent(core.OpWrite, "metadata/k", `{"delete_version_after":"768h"}`)
	out := h.ok(core.OpWrite, "data/k", map[string]any{"data": map[string]any{"a": "b"}})
	if out["deletion_time"] != "2026-12-24T13:36:40.648750381Z" {
		t.Fatalf("live version deletion_time = %v, want the future deadline", out["deletion_time"])
	}
	read := h.ok(core.OpRead, "data/k", nil)
	if obj(t, read["metadata"])["deletion_time"] != "2026-12-24T13:36:40.648750381Z" {
		t.Fatalf("read = %v", read)
	}

	h.clock.Advance(768 * time.Hour)
	if got := h.gone(core.OpRead, "data/k"); got["data"] != nil {
		t.Fatalf("after the deadline = %v", got)
	}

	// Undelete restarts the delay from now.
	h.noContent(core.OpWrite, "undelete/k", `{"versions":[1]}`)
	if dt := obj(t, h.ok(core.OpRead, "data/k", nil)["metadata"])["deletion_time"]; dt != "2027-01-25T13:36:40.648750381Z" {
		t.Fatalf("after undelete deletion_time = %v", dt)
	}

	// The smaller of engine and key wins; a negative engine value disables.
	h.noContent(core.OpWrite, "config", `{"delete_version_after":3600}`)
	if dt := h.ok(core.OpWrite, "data/k", map[string]any{"data": map[string]any{}})["deletion_time"]; dt != "2026-12-24T14:36:40.648750381Z" {
		t.Fatalf("with engine 1h: deletion_time = %v", dt)
	}
	h.noContent(core.OpWrite, "config", `{"delete_version_after":"-1s"}`)
	if dt := h.ok(core.OpWrite, "data/k", map[string]any{"data": map[string]any{}})["deletion_time"]; dt != "" {
		t.Fatalf("disabled: deletion_time = %v", dt)
	}
	if cfg := h.ok(core.OpRead, "config", nil); cfg["delete_version_after"] != "-1s" {
		t.Fatalf("config = %v", cfg)
	}
}

func TestMetadataWriteInputs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name   string
		body   string
		field  string
		want   any
		status int
		msg    string
	}{
		{"int as string", `{"max_versions":"7"}`, "max_versions", json.Number("7"), 0, ""},
		{"bool as string", `{"cas_required":"true"}`, "cas_required", true, 0, ""},
		{"seconds as number", `{"delete_version_after":3600}`, "delete_version_after", "1h0m0s", 0, ""},
		{"seconds as string", `{"delete_version_after":"90"}`, "delete_version_after", "1m30s", 0, ""},
		{"days", `{"delete_version_after":"30d"}`, "delete_version_after", "720h0m0s", 0, ""},
		{"zero clears", `{"delete_version_after":"0s"}`, "delete_version_after", "0s", 0, ""},
		{"expire_after", `{"expire_after":"24h"}`, "expire_after", "24h0m0s", 0, ""},
		{"rotation_period", `{"rotation_period":86400}`, "rotation_period", "24h0m0s", 0, ""},
		{"bad duration", `{"delete_version_after":"soon"}`, "", nil, 400, `error converting input for field "delete_version_after": cannot parse "soon" as a duration: use seconds or a string such as "768h"`},
		{"negative duration", `{"delete_version_after":"-5m"}`, "", nil, 400, "delete_version_after must not be negative, got -5m0s (0 clears it)"},
		{"negative expiry", `{"expire_after":-1}`, "", nil, 400, "expire_after must not be negative, got -1s (0 clears it)"},
		{"bad bool", `{"cas_required":"maybe"}`, "", nil, 400, `error converting input for field "cas_required": cannot parse "maybe" as a boolean`},
		{"custom not object", `{"custom_metadata":"x"}`, "", nil, 400, `error converting input for field "custom_metadata": '' expected type 'map[string]interface {}', got unconvertible type 'string'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status != 0 {
				h.fails(core.OpWrite, "metadata/m", tc.body, tc.status, tc.msg)
				return
			}
			h.noContent(core.OpWrite, "metadata/m", tc.body)
			if got := h.ok(core.OpRead, "metadata/m", nil)[tc.field]; got != tc.want {
				t.Fatalf("%s = %v, want %v", tc.field, got, tc.want)
			}
		})
	}

	// A write that sets nothing changes nothing and creates nothing.
	h.noContent(core.OpWrite, "metadata/nothing", `{}`)
	h.fails(core.OpRead, "metadata/nothing", nil, 404, "")

	// Vault's warnings.
	h.noContent(core.OpWrite, "config", `{"cas_required":true}`)
	resp, err := h.do(core.OpWrite, "metadata/m", `{"cas_required":false,"colour":"red"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Endpoint ignored these unrecognized parameters: [colour]",
		`"cas_required" set to false, but is mandated by backend config. This value will be ignored.`,
	}
	if resp == nil || !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings = %+v, want %q", resp, want)
	}
}

func TestCustomMetadataValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	many := map[string]any{}
	for i := range 65 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tc := range []struct {
		name string
		cm   any
		msg  string
	}{
		{"too many keys", many, "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n"},
		{"empty value", map[string]any{"a": ""}, "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \"a\" is 0 but must be 0 < len(value) <= 512\n\n"},
		{"two problems", map[string]any{strings.Repeat("k", 129): "v\x01"},
			"2 errors occurred:\n\t* custom_metadata validation failed: length of key \"" + strings.Repeat("k", 129) + "\" is 129 but must be 0 < len(key) <= 128\n" +
				"\t* custom_metadata validation failed: value for key \"" + strings.Repeat("k", 129) + "\" contains unprintable characters\n\n"},
		{"nested value", map[string]any{"a": []any{1}}, "custom_metadata validation failed: '' expected type 'string', got unconvertible type '[]interface {}' for key \"a\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.fails(core.OpWrite, "metadata/c", map[string]any{"custom_metadata": tc.cm}, 400, tc.msg)
		})
	}
	h.noContent(core.OpWrite, "metadata/c", `{"custom_metadata":{"n":5,"b":true,"s":"x"}}`)
	want := map[string]any{"n": "5", "b": "1", "s": "x"}
	if got := h.ok(core.OpRead, "metadata/c", nil)["custom_metadata"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("custom_metadata = %v, want %v", got, want)
	}
	// Writing an empty map clears it: reads show null again.
	h.noContent(core.OpWrite, "metadata/c", `{"custom_metadata":{}}`)
	if got := h.ok(core.OpRead, "metadata/c", nil)["custom_metadata"]; got != nil {
		t.Fatalf("cleared custom_metadata = %v", got)
	}
}

func TestMetadataPatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fails(core.OpPatch, "metadata/p", `{"max_versions":3}`, 404, "")
	h.noContent(core.OpWrite, "metadata/p", `{"max_versions":3,"cas_required":true,"custom_metadata":{"a":"1","b":"2"}}`)
	h.noContent(core.OpPatch, "metadata/p", `{"custom_metadata":{"a":null,"c":"3"},"max_versions":null}`)
	got := h.ok(core.OpRead, "metadata/p", nil)
	if !reflect.DeepEqual(got["custom_metadata"], map[string]any{"b": "2", "c": "3"}) ||
		got["max_versions"] != json.Number("0") || got["cas_required"] != true || got["current_metadata_version"] != json.Number("2") {
		t.Fatalf("after patch = %v", got)
	}
	h.noContent(core.OpPatch, "metadata/p", `{"custom_metadata":null}`)
	if got := h.ok(core.OpRead, "metadata/p", nil)["custom_metadata"]; got != nil {
		t.Fatalf("custom_metadata after null patch = %v", got)
	}
}

func TestMetadataCheckAndSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const mismatch = "check-and-set parameter did not match the current version"
	const required = "check-and-set parameter required for this call"
	h.noContent(core.OpWrite, "metadata/m", `{"max_versions":2,"cas":0}`)
	h.fails(core.OpWrite, "metadata/m", `{"max_versions":3,"cas":0}`, 400, mismatch)
	h.noContent(core.OpWrite, "metadata/m", `{"max_versions":3,"cas":"1"}`)
	h.noContent(core.OpWrite, "metadata/m", `{"metadata_cas_required":true}`)
	h.fails(core.OpWrite, "metadata/m", `{"max_versions":4}`, 400, required)
	h.noContent(core.OpWrite, "metadata/m", `{"max_versions":4,"cas":3}`)
	h.fails(core.OpPatch, "metadata/m", `{"max_versions":5}`, 400, required)
	if got := h.ok(core.OpRead, "metadata/m", nil); got["current_metadata_version"] != json.Number("4") || got["metadata_cas_required"] != true {
		t.Fatalf("metadata = %v", got)
	}
	// Data writes do not count as metadata writes.
	h.write("m", map[string]any{"a": "b"})
	h.noContent(core.OpPatch, "metadata/m", `{"max_versions":5,"cas":4}`)

	h.noContent(core.OpWrite, "config", `{"metadata_cas_required":true}`)
	h.fails(core.OpWrite, "metadata/other", `{"max_versions":1}`, 400, required)
	h.noContent(core.OpWrite, "metadata/other", `{"max_versions":1,"cas":0}`)
}

func TestMetadataDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for i := range 3 {
		h.write("gone/k", map[string]any{"i": i})
	}
	h.write("gone/keep", map[string]any{"x": "y"})
	h.noContent(core.OpWrite, "destroy/gone/k", `{"versions":[2]}`)
	h.noContent(core.OpDelete, "metadata/gone/k", nil)
	h.fails(core.OpRead, "data/gone/k", nil, 404, "")
	h.fails(core.OpRead, "data/gone/k", nil, 404, "", "version", "1")
	h.fails(core.OpRead, "metadata/gone/k", nil, 404, "")
	if got := h.ok(core.OpList, "metadata/gone", nil)["keys"]; !reflect.DeepEqual(got, []any{"keep"}) {
		t.Fatalf("list after delete = %v", got)
	}
	if v := h.write("gone/k", map[string]any{"i": "again"}); v != 1 {
		t.Fatalf("rewrite after metadata delete: version %d, want 1", v)
	}
	h.noContent(core.OpDelete, "metadata/never", nil)
}

func TestList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, p := range []string{"app/config", "app/db", "app/sub/x", "app", "top"} {
		h.write(p, map[string]any{"v": p})
	}
	h.noContent(core.OpWrite, "metadata/app/metaonly", `{"max_versions":1}`)
	for _, tc := range []struct {
		name  string
		path  string
		query []string
		want  []any
	}{
		{"root", "metadata/", nil, []any{"app", "app/", "top"}},
		{"root without slash", "metadata", nil, []any{"app", "app/", "top"}},
		{"folder", "metadata/app", nil, []any{"config", "db", "metaonly", "sub/"}},
		{"folder slash", "metadata/app/", nil, []any{"config", "db", "metaonly", "sub/"}},
		{"nested", "metadata/app/sub/", nil, []any{"x"}},
		{"after", "metadata/app", []string{"after", "config"}, []any{"db", "metaonly", "sub/"}},
		{"after missing key", "metadata/app", []string{"after", "d"}, []any{"db", "metaonly", "sub/"}},
		{"after and limit", "metadata/app", []string{"after", "config", "limit", "1"}, []any{"db"}},
		{"limit", "metadata/app", []string{"limit", "2"}, []any{"config", "db"}},
		{"limit zero is all", "metadata/app", []string{"limit", "0"}, []any{"config", "db", "metaonly", "sub/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.ok(core.OpList, tc.path, nil, tc.query...)
			if !reflect.DeepEqual(got, map[string]any{"keys": tc.want}) {
				t.Fatalf("list = %v, want keys %v", got, tc.want)
			}
		})
	}
	h.fails(core.OpList, "metadata/nope", nil, 404, "")
	h.fails(core.OpList, "metadata/app/config", nil, 404, "")
	h.fails(core.OpList, "metadata/app", nil, 404, "", "after", "zzz")
	h.fails(core.OpList, "metadata/a/../b", nil, 400, `path "a/../b" must not contain a ".." segment`)
	h.fails(core.OpList, "metadata/app", nil, 400, `error converting input for field "limit"...`, "limit", "x")

	empty := newHarness(t, nil)
	empty.fails(core.OpList, "metadata/", nil, 404, "")
}

func TestConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	want := map[string]any{"cas_required": false, "delete_version_after": "0s", "max_versions": json.Number("0"), "metadata_cas_required": false}
	if got := h.ok(core.OpRead, "config", nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("default config = %v, want %v", got, want)
	}
	h.noContent(core.OpWrite, "config", `{"max_versions":4,"cas_required":true,"delete_version_after":"1h","metadata_cas_required":"true"}`)
	want = map[string]any{"cas_required": true, "delete_version_after": "1h0m0s", "max_versions": json.Number("4"), "metadata_cas_required": true}
	if got := h.ok(core.OpRead, "config", nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("config = %v, want %v", got, want)
	}
	// Partial writes keep the rest; a new engine on the same store reads it.
	h.noContent(core.OpWrite, "config", `{"cas_required":false}`)
	want["cas_required"] = false
	h2 := newHarnessOn(t, h.store, nil)
	if got := h2.ok(core.OpRead, "config", nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("reloaded config = %v, want %v", got, want)
	}
	h.noContent(core.OpWrite, "config", `{}`)
	h.fails(core.OpWrite, "config", `{"delete_version_after":"x"}`, 400, `error converting input for field "delete_version_after"...`)
}
