package kv

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cofferhq/coffer/internal/core"
)

// versionStates summarises each version of a key as the metadata read
// shows it: "live", "deleted" or "destroyed".
func (h *harness) versionStates(path string) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for n, v := range obj(h.t, h.ok(core.OpRead, "metadata/"+path, nil)["versions"]) {
		vm := obj(h.t, v)
		switch {
		case vm["destroyed"] == true:
			out[n] = "destroyed"
		case vm["deletion_time"] != "":
			out[n] = "deleted"
		default:
			out[n] = "live"
		}
	}
	return out
}

func TestDeleteUndeleteDestroy(t *testing.T) {
	t.Parallel()
	type step struct {
		op   core.Operation
		path string
		body string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  map[string]string
		read  int // status of reading the current version
	}{
		{"soft delete latest", []step{{core.OpDelete, "data/k", ""}},
			map[string]string{"1": "live", "2": "live", "3": "deleted"}, 404},
		{"soft delete latest twice", []step{{core.OpDelete, "data/k", ""}, {core.OpDelete, "data/k", ""}},
			map[string]string{"1": "live", "2": "live", "3": "deleted"}, 404},
		{"delete versions", []step{{core.OpWrite, "delete/k", `{"versions":[1,3]}`}},
			map[string]string{"1": "deleted", "2": "live", "3": "deleted"}, 404},
		{"delete versions as strings", []step{{core.OpWrite, "delete/k", `{"versions":["1","2"]}`}},
			map[string]string{"1": "deleted", "2": "deleted", "3": "live"}, 200},
		{"delete versions comma string", []step{{core.OpWrite, "delete/k", `{"versions":"1,2"}`}},
			map[string]string{"1": "deleted", "2": "deleted", "3": "live"}, 200},
		{"delete unknown version", []step{{core.OpWrite, "delete/k", `{"versions":[9]}`}},
			map[string]string{"1": "live", "2": "live", "3": "live"}, 200},
		{"undelete", []step{{core.OpWrite, "delete/k", `{"versions":[2,3]}`}, {core.OpWrite, "undelete/k", `{"versions":[3]}`}},
			map[string]string{"1": "live", "2": "deleted", "3": "live"}, 200},
		{"destroy", []step{{core.OpWrite, "destroy/k", `{"versions":[3]}`}},
			map[string]string{"1": "live", "2": "live", "3": "destroyed"}, 404},
		{"destroy deleted", []step{{core.OpDelete, "data/k", ""}, {core.OpWrite, "destroy/k", `{"versions":[3]}`}},
			map[string]string{"1": "live", "2": "live", "3": "destroyed"}, 404},
		{"undelete destroyed stays destroyed", []step{{core.OpWrite, "destroy/k", `{"versions":[2]}`}, {core.OpWrite, "undelete/k", `{"versions":[2]}`}},
			map[string]string{"1": "live", "2": "destroyed", "3": "live"}, 200},
		{"delete destroyed is a no-op", []step{{core.OpWrite, "destroy/k", `{"versions":[1]}`}, {core.OpWrite, "delete/k", `{"versions":[1]}`}},
			map[string]string{"1": "destroyed", "2": "live", "3": "live"}, 200},
		{"write after delete", []step{{core.OpDelete, "data/k", ""}, {core.OpWrite, "data/k", `{"data":{"n":4}}`}},
			map[string]string{"1": "live", "2": "live", "3": "deleted", "4": "live"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			for i := 1; i <= 3; i++ {
				h.write("k", map[string]any{"n": i})
			}
			for _, s := range tc.steps {
				var body any
				if s.body != "" {
					body = s.body
				}
				h.noContentOrData(s.op, s.path, body)
			}
			if got := h.versionStates("k"); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("versions = %v, want %v", got, tc.want)
			}
			resp, err := h.do(core.OpRead, "data/k", nil)
			switch {
			case err != nil:
				t.Fatalf("read: %v", err)
			case tc.read == 200 && resp.NotFoundWithData, tc.read == 404 && !resp.NotFoundWithData:
				t.Fatalf("read: NotFoundWithData=%v, want status %d", resp.NotFoundWithData, tc.read)
			}
		})
	}
}

// noContentOrData runs a write that answers 204, or 200 for data writes.
func (h *harness) noContentOrData(op core.Operation, path string, body any) {
	h.t.Helper()
	if _, err := h.do(op, path, body); err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
}

func TestDeletedAndDestroyedReadShapes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.write("k", map[string]any{"a": "1"})
	h.write("k", map[string]any{"a": "2"})
	h.noContent(core.OpWrite, "metadata/k", `{"custom_metadata":{"owner":"team-a"}}`)

	h.clock.Advance(time.Second)
	h.noContent(core.OpDelete, "data/k", nil)
	got := h.gone(core.OpRead, "data/k")
	want := map[string]any{"data": nil, "metadata": map[string]any{
		"created_time": "2026-11-22T13:36:40.648750381Z", "custom_metadata": map[string]any{"owner": "team-a"},
		"deletion_time": "2026-11-22T13:36:41.648750381Z", "destroyed": false, "version": json.Number("2"),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("deleted read = %v\nwant           %v", got, want)
	}

	h.noContent(core.OpWrite, "destroy/k", `{"versions":[1]}`)
	got = h.gone(core.OpRead, "data/k", "version", "1")
	meta := obj(t, got["metadata"])
	if got["data"] != nil || meta["destroyed"] != true || meta["deletion_time"] != "" || meta["version"] != json.Number("1") {
		t.Fatalf("destroyed read = %v", got)
	}

	for _, path := range []string{"delete/k", "undelete/k", "destroy/k"} {
		h.fails(core.OpWrite, path, `{}`, 400, "No version number provided")
		h.fails(core.OpWrite, path, `{"versions":[]}`, 400, "No version number provided")
		h.fails(core.OpWrite, path, `{"versions":["x"]}`, 400, `error converting input for field "versions": cannot parse "x" as an integer`)
		h.fails(core.OpWrite, path, `{"versions":[-1]}`, 400, `error converting input for field "versions": version -1 is negative`)
		h.noContent(core.OpWrite, path+"-missing", `{"versions":[1]}`)
	}
	h.noContent(core.OpDelete, "data/never-written", nil)
	h.fails(core.OpDelete, "data/", nil, 400, "missing path")
}

func TestMaxVersionsPruning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)

	// The default keeps 10 versions.
	for i := 1; i <= 11; i++ {
		h.write("d", map[string]any{"n": i})
	}
	meta := h.ok(core.OpRead, "metadata/d", nil)
	if num(t, meta["oldest_version"]) != 2 || len(obj(t, meta["versions"])) != 10 {
		t.Fatalf("default pruning: oldest %v, %d versions", meta["oldest_version"], len(obj(t, meta["versions"])))
	}

	// The engine config's limit.
	h.noContent(core.OpWrite, "config", `{"max_versions":"3"}`)
	for i := 1; i <= 5; i++ {
		h.write("e", map[string]any{"n": i})
		meta = h.ok(core.OpRead, "metadata/e", nil)
		// As OpenBao: oldest_version moves once the limit is reached,
		// even before anything is pruned.
		wantOldest := 0
		if i >= 3 {
			wantOldest = i - 2
		}
		if got := num(t, meta["oldest_version"]); got != wantOldest {
			t.Fatalf("after %d writes: oldest_version %d, want %d", i, got, wantOldest)
		}
	}
	if got := slices.Sorted(maps.Keys(obj(t, meta["versions"]))); !reflect.DeepEqual(got, []string{"3", "4", "5"}) {
		t.Fatalf("versions kept = %v", got)
	}
	h.fails(core.OpRead, "data/e", nil, 404, "", "version", "1")
	if obj(t, h.ok(core.OpRead, "data/e", nil, "version", "3")["data"])["n"] != json.Number("3") {
		t.Fatal("version 3 lost")
	}

	// A key's own limit overrides the engine's; lowering it prunes on the
	// next write, several versions at once.
	h.noContent(core.OpWrite, "metadata/e", `{"max_versions":1}`)
	h.write("e", map[string]any{"n": 6})
	meta = h.ok(core.OpRead, "metadata/e", nil)
	if got := slices.Sorted(maps.Keys(obj(t, meta["versions"]))); !reflect.DeepEqual(got, []string{"6"}) || num(t, meta["oldest_version"]) != 6 {
		t.Fatalf("after lowering: versions %v, oldest %v", got, meta["oldest_version"])
	}

	// Destroyed versions prune without trouble.
	h.noContent(core.OpWrite, "metadata/f", `{"max_versions":2}`)
	h.write("f", map[string]any{"n": 1})
	h.noContent(core.OpWrite, "destroy/f", `{"versions":[1]}`)
	h.write("f", map[string]any{"n": 2})
	h.write("f", map[string]any{"n": 3})

	const bad = "max_versions must be between 0 and 4294967295, got -1 (0 means the default)"
	h.fails(core.OpWrite, "metadata/e", `{"max_versions":-1}`, 400, bad)
	h.fails(core.OpWrite, "config", `{"max_versions":-1}`, 400, bad)
	h.fails(core.OpWrite, "metadata/e", `{"max_versions":"many"}`, 400, `error converting input for field "max_versions": cannot parse "many" as an integer`)
}
