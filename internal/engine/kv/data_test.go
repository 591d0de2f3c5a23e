package kv

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
)

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestDataWriteAndRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)

	out := h.ok(core.OpWrite, "data/app/db", map[string]any{"data": map[string]any{"username": "svc", "password": "s3cr3t"}})
	want := map[string]any{
		"created_time": "2026-11-22T13:36:40.648750381Z", "custom_metadata": nil,
		"deletion_time": "", "destroyed": false, "version": json.Number("1"),
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("write = %v\nwant    %v", out, want)
	}

	h.clock.Advance(185e6)
	out = h.ok(core.OpWrite, "data/app/db", `{"options":{"cas":1},"data":{"username":"svc","password":"rotated","port":5432}}`)
	if num(t, out["version"]) != 2 {
		t.Fatalf("second write = %v, want version 2", out)
	}

	read := h.ok(core.OpRead, "data/app/db", nil)
	if !reflect.DeepEqual(keysOf(read), []string{"data", "metadata"}) {
		t.Fatalf("read keys = %v", keysOf(read))
	}
	wantData := map[string]any{"username": "svc", "password": "rotated", "port": json.Number("5432")}
	if !reflect.DeepEqual(read["data"], wantData) {
		t.Fatalf("read data = %v, want %v", read["data"], wantData)
	}
	meta := obj(t, read["metadata"])
	if meta["version"] != json.Number("2") || meta["created_time"] != "2026-11-22T13:36:40.833750381Z" {
		t.Fatalf("read metadata = %v", meta)
	}

	old := h.ok(core.OpRead, "data/app/db", nil, "version", "1")
	if obj(t, old["data"])["password"] != "s3cr3t" || obj(t, old["metadata"])["version"] != json.Number("1") {
		t.Fatalf("read version 1 = %v", old)
	}

	h.fails(core.OpRead, "data/app/db", nil, 404, "", "version", "9")
	h.fails(core.OpRead, "data/app/nope", nil, 404, "")
	h.fails(core.OpRead, "data/app/db", nil, 400, `error converting input for field "version": cannot parse "x" as an integer`, "version", "x")
	h.fails(core.OpList, "data/app", nil, 405, "")
	h.fails(core.OpList, "data/", nil, 405, "")
}

func TestDataWriteErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"max_value_size": "64"})
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		status int
		msg    string
	}{
		{"no body", "data/k", ``, 400, "no data provided"},
		{"no data", "data/k", `{"options":{}}`, 400, "no data provided"},
		{"null data", "data/k", `{"data":null}`, 400, "no data provided"},
		{"string data", "data/k", `{"data":"x"}`, 400, `error converting input for field "data": '' expected type 'map[string]interface {}', got unconvertible type 'string'`},
		{"number data", "data/k", `{"data":7}`, 400, `error converting input for field "data": '' expected type 'map[string]interface {}', got unconvertible type 'json.Number'`},
		{"array data", "data/k", `{"data":[1]}`, 400, `error converting input for field "data": '' expected type 'map[string]interface {}', got unconvertible type '[]interface {}'`},
		{"bool data", "data/k", `{"data":true}`, 400, `error converting input for field "data": '' expected type 'map[string]interface {}', got unconvertible type 'bool'`},
		{"options not object", "data/k", `{"data":{},"options":"x"}`, 400, `error converting input for field "options": '' expected type 'map[string]interface {}', got unconvertible type 'string'`},
		{"cas not a number", "data/k", `{"data":{},"options":{"cas":"one"}}`, 400, "error parsing check-and-set parameter"},
		{"malformed JSON", "data/k", `{"data":`, 400, "failed to decode JSON input: ..."},
		{"body not an object", "data/k", `[1]`, 400, `error converting input for field "(body)"...`},
		{"too big", "data/k", `{"data":{"v":"` + strings.Repeat("x", 64) + `"}}`, 413, "secret data is 72 bytes encoded, more than this mount's limit of 64 bytes (mount option max_value_size)"},
		{"empty path", "data/", `{"data":{}}`, 400, "missing path"},
		{"dotdot", "data/a/../b", `{"data":{}}`, 400, `path "a/../b" must not contain a ".." segment`},
		{"dot", "data/./b", `{"data":{}}`, 400, `path "./b" must not contain a "." segment`},
		{"double slash", "data/a//b", `{"data":{}}`, 400, `path "a//b" has an empty segment: remove the leading, trailing or doubled "/"`},
		{"trailing slash", "data/a/", `{"data":{}}`, 400, `path "a/" has an empty segment...`},
		{"NUL", "data/a\x00b", `{"data":{}}`, 400, `path "a\x00b" contains a NUL byte`},
		{"too long", "data/" + strings.Repeat("a", MaxPathLen+1), `{"data":{}}`, 400, "path is 3073 bytes, longer than the limit of 3072 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.fails(core.OpWrite, tc.path, tc.body, tc.status, tc.msg)
		})
	}
	// Nothing above may have created anything.
	h.fails(core.OpList, "metadata/", nil, 404, "")

	// An empty object is data.
	if v := h.write("empty", map[string]any{}); v != 1 {
		t.Fatalf("empty data: version %d", v)
	}
	out := h.ok(core.OpWrite, "data/warn", `{"data":{"a":"b"},"bogus":1}`)
	_ = out
	resp, _ := h.do(core.OpWrite, "data/warn", `{"data":{"a":"b"},"bogus":1,"extra":2}`)
	if want := []string{"Endpoint ignored these unrecognized parameters: [bogus extra]"}; !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings = %q, want %q", resp.Warnings, want)
	}
}

func TestCheckAndSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const mismatch = "check-and-set parameter did not match the current version"
	const required = "check-and-set parameter required for this call"
	steps := []struct {
		name    string
		path    string
		body    string
		status  int // 0: success
		msg     string
		version int
	}{
		{"cas 0 creates", "data/a", `{"data":{"v":1},"options":{"cas":0}}`, 0, "", 1},
		{"cas 0 on existing", "data/a", `{"data":{"v":2},"options":{"cas":0}}`, 400, mismatch, 0},
		{"cas current", "data/a", `{"data":{"v":2},"options":{"cas":1}}`, 0, "", 2},
		{"cas repeated", "data/a", `{"data":{"v":3},"options":{"cas":1}}`, 400, mismatch, 0},
		{"cas ahead", "data/a", `{"data":{"v":3},"options":{"cas":7}}`, 400, mismatch, 0},
		{"cas negative", "data/a", `{"data":{"v":3},"options":{"cas":-1}}`, 400, mismatch, 0},
		{"cas as string", "data/a", `{"data":{"v":3},"options":{"cas":"2"}}`, 0, "", 3},
		{"cas null is no cas", "data/a", `{"data":{"v":4},"options":{"cas":null}}`, 0, "", 4},
		{"key cas_required", "metadata/a", `{"cas_required":true}`, 0, "", 0},
		{"missing cas", "data/a", `{"data":{"v":5}}`, 400, required, 0},
		{"cas given", "data/a", `{"data":{"v":5},"options":{"cas":4}}`, 0, "", 5},
		{"other key free", "data/b", `{"data":{"v":1}}`, 0, "", 1},
		{"engine cas_required", "config", `{"cas_required":true}`, 0, "", 0},
		{"engine requires", "data/b", `{"data":{"v":2}}`, 400, required, 0},
		{"engine requires on new", "data/c", `{"data":{"v":1}}`, 400, required, 0},
		{"new key cas 0", "data/c", `{"data":{"v":1},"options":{"cas":0}}`, 0, "", 1},
	}
	for _, s := range steps {
		resp, err := h.do(core.OpWrite, s.path, s.body)
		if s.status != 0 {
			if err == nil {
				t.Fatalf("%s: want %d %q, got success", s.name, s.status, s.msg)
			}
			checkErr(t, err, s.status, s.msg)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.version != 0 {
			if got := num(t, wire(t, resp.Data)["version"]); got != s.version {
				t.Fatalf("%s: version %d, want %d", s.name, got, s.version)
			}
		}
	}
	// A PATCH obeys the same rules.
	h.fails(core.OpPatch, "data/a", `{"data":{"w":1}}`, 400, required)
	h.fails(core.OpPatch, "data/a", `{"data":{"w":1},"options":{"cas":4}}`, 400, mismatch)
	h.ok(core.OpPatch, "data/a", `{"data":{"w":1},"options":{"cas":5}}`)
}

func TestPatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.write("p", map[string]any{
		"user": "svc", "pass": "old", "drop": "me",
		"nested": map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}},
		"list":   []any{1, 2},
	})
	out := h.ok(core.OpPatch, "data/p", map[string]any{"data": map[string]any{
		"pass": "new", "drop": nil, "added": true,
		"nested": map[string]any{"b": map[string]any{"d": nil, "e": 4}},
		"list":   []any{3},
	}})
	if num(t, out["version"]) != 2 || out["deletion_time"] != "" {
		t.Fatalf("patch = %v", out)
	}
	got := h.ok(core.OpRead, "data/p", nil)["data"]
	want := map[string]any{
		"user": "svc", "pass": "new", "added": true,
		"nested": map[string]any{"a": json.Number("1"), "b": map[string]any{"c": json.Number("2"), "e": json.Number("4")}},
		"list":   []any{json.Number("3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after patch = %v\nwant          %v", got, want)
	}
	// Version 1 is untouched.
	if v1 := obj(t, h.ok(core.OpRead, "data/p", nil, "version", "1")["data"]); v1["pass"] != "old" || v1["drop"] != "me" {
		t.Fatalf("version 1 changed: %v", v1)
	}

	h.fails(core.OpPatch, "data/p", `{"options":{}}`, 400, "no data provided")
	h.fails(core.OpPatch, "data/p", `{"data":"x"}`, 400, `error converting input for field "data"...`)
	h.fails(core.OpPatch, "data/missing", `{"data":{"a":1}}`, 404, "")
	h.noContent(core.OpWrite, "metadata/metaonly", `{"max_versions":3}`)
	h.fails(core.OpPatch, "data/metaonly", `{"data":{"a":1}}`, 404, "")

	// A patch of a deleted current version is a 404 carrying its metadata
	// (flat, as OpenBao answers it).
	h.noContent(core.OpDelete, "data/p", nil)
	resp, err := h.do(core.OpPatch, "data/p", `{"data":{"a":1}}`)
	if err != nil || resp == nil || !resp.NotFoundWithData {
		t.Fatalf("patch of deleted: %+v, %v", resp, err)
	}
	if d := wire(t, resp.Data); d["version"] != json.Number("2") || d["deletion_time"] == "" {
		t.Fatalf("patch of deleted data = %v", d)
	}
}

func TestSubkeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.write("s", map[string]any{
		"foo": "abc", "bar": map[string]any{"baz": map[string]any{"qux": 1}, "empty": map[string]any{}},
		"list": []any{map[string]any{"x": 1}},
	})
	for _, tc := range []struct {
		depth string
		want  map[string]any
	}{
		{"", map[string]any{"foo": nil, "list": nil, "bar": map[string]any{"empty": nil, "baz": map[string]any{"qux": nil}}}},
		{"0", map[string]any{"foo": nil, "list": nil, "bar": map[string]any{"empty": nil, "baz": map[string]any{"qux": nil}}}},
		{"1", map[string]any{"foo": nil, "list": nil, "bar": nil}},
		{"2", map[string]any{"foo": nil, "list": nil, "bar": map[string]any{"empty": nil, "baz": nil}}},
	} {
		var q []string
		if tc.depth != "" {
			q = []string{"depth", tc.depth}
		}
		out := h.ok(core.OpRead, "subkeys/s", nil, q...)
		if !reflect.DeepEqual(out["subkeys"], tc.want) {
			t.Errorf("depth %q: subkeys = %v, want %v", tc.depth, out["subkeys"], tc.want)
		}
		if obj(t, out["metadata"])["version"] != json.Number("1") {
			t.Errorf("depth %q: metadata = %v", tc.depth, out["metadata"])
		}
	}
	h.fails(core.OpRead, "subkeys/s", nil, 400, "depth must not be negative (0 means no limit), got -1", "depth", "-1")
	h.fails(core.OpRead, "subkeys/none", nil, 404, "")
	h.fails(core.OpRead, "subkeys/s", nil, 404, "", "version", "2")
	h.noContent(core.OpDelete, "data/s", nil)
	out := h.gone(core.OpRead, "subkeys/s")
	if out["subkeys"] != nil || obj(t, out["metadata"])["deletion_time"] == "" {
		t.Fatalf("subkeys of deleted = %v", out)
	}
}

func TestExistsDecidesCreateOrUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	exists := func(pattern, path string) bool {
		t.Helper()
		rt, params, err := core.MatchRoute(h.routes, path)
		if err != nil || rt.Pattern != pattern {
			t.Fatalf("route %q: %v %v", path, rt, err)
		}
		ok, err := rt.Exists(t.Context(), &core.Request{Params: params})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if exists("data/{path...}", "data/x") || exists("metadata/{path...}", "metadata/x") {
		t.Fatal("exists before any write")
	}
	h.write("x", map[string]any{"a": "b"})
	if !exists("data/{path...}", "data/x") || !exists("metadata/{path...}", "metadata/x") {
		t.Fatal("not exists after write")
	}
	h.noContent(core.OpDelete, "data/x", nil)
	if exists("data/{path...}", "data/x") {
		t.Fatal("data exists after soft delete of the current version")
	}
	if !exists("metadata/{path...}", "metadata/x") {
		t.Fatal("metadata gone after soft delete")
	}
	if exists("data/{path...}", "data/a/../b") {
		t.Fatal("exists for an invalid path")
	}
}

func TestValueSizeOption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts map[string]string
		err  string
	}{
		{map[string]string{"version": "2", "max_value_size": "10"}, ""},
		{map[string]string{"version": "1"}, `kv: option version="1": this engine serves KV version 2 only`},
		{map[string]string{"max_value_size": "-1", "colour": "red"}, "kv: unknown option \"colour\" (known: version, max_value_size)\noption max_value_size=\"-1\": want a positive number of bytes"},
	} {
		_, err := New(t.Context(), core.BackendConfig{Storage: newHarness(t, nil).store, Options: tc.opts})
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.err {
				t.Errorf("New(%v) = %q, want %q", tc.opts, got, tc.err)
			}
		} else if tc.err != "" {
			t.Errorf("New(%v) succeeded, want %q", tc.opts, tc.err)
		}
	}
	h := newHarness(t, map[string]string{"max_value_size": "20"})
	h.write("k", map[string]any{"a": "0123456789"}) // {"a":"0123456789"} is 18 bytes
	h.fails(core.OpPatch, "data/k", `{"data":{"b":"x"}}`, 413, "secret data is 26 bytes encoded...")
}

// TestSharedVersionData: the decoded data of the version last read is
// kept for readers, but never outlives a change to the path: a new
// version, a destroy or a metadata delete drops it, so destroyed data
// is not held in memory and a read never sees a stale value.
func TestSharedVersionData(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cached := func() bool {
		_, ok := h.e.datas.m["app/db"]
		return ok
	}
	h.write("app/db", map[string]any{"password": "one"})
	if got := obj(t, h.ok(core.OpRead, "data/app/db", nil)["data"])["password"]; got != "one" || !cached() {
		t.Fatalf("first read: %v, cached %v", got, cached())
	}
	h.write("app/db", map[string]any{"password": "two"})
	if cached() {
		t.Fatal("a new version left the old data in the cache")
	}
	for range 2 {
		if got := obj(t, h.ok(core.OpRead, "data/app/db", nil)["data"])["password"]; got != "two" {
			t.Fatalf("read after update: %v", got)
		}
	}
	if got := obj(t, h.ok(core.OpRead, "data/app/db", nil, "version", "1")["data"])["password"]; got != "one" {
		t.Fatalf("read of version 1: %v", got)
	}
	h.noContent(core.OpWrite, "destroy/app/db", `{"versions":[1,2]}`)
	if cached() {
		t.Fatal("destroyed data is still held in the cache")
	}
	h.gone(core.OpRead, "data/app/db")
	h.write("app/db", map[string]any{"password": "three"})
	h.ok(core.OpRead, "data/app/db", nil)
	h.noContent(core.OpDelete, "metadata/app/db", nil)
	if cached() {
		t.Fatal("a deleted key's data is still held in the cache")
	}
}
