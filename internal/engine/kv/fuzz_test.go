package kv

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// FuzzValidatePath checks that validatePath accepts exactly the paths an
// independent reading of the rules accepts, and that every accepted path
// makes valid, unambiguous storage keys.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a", "app/db", "", "a//b", "..", "a/../b", "a\x00", "/a", "a/", ".", "ünï/ключ", "a/.b/c.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs := strings.Split(p, "/")
		want := p != "" && len(p) <= MaxPathLen && len(segs) <= MaxPathSegments &&
			!strings.ContainsRune(p, 0) &&
			!slices.ContainsFunc(segs, func(s string) bool { return s == "" || s == "." || s == ".." })
		err := validatePath(p)
		if (err == nil) != want {
			t.Fatalf("validatePath(%q) = %v, want valid=%v", p, err, want)
		}
		if err != nil {
			var ce *core.Error
			if !errors.As(err, &ce) || ce.Status != 400 || ce.Msg == "" {
				t.Fatalf("validatePath(%q) = %#v, want a 400 with a message", p, err)
			}
			return
		}
		for _, n := range []uint64{1, math.MaxUint64} {
			vk := versionKey(p, n)
			if err := storage.ValidateKey(vk); err != nil {
				t.Fatalf("versionKey(%q, %d): %v", p, n, err)
			}
			rest := strings.TrimPrefix(vk, verPrefix)
			i := strings.LastIndexByte(rest, '/')
			if rest[:i] != p || rest[i+1:] != strconv.FormatUint(n, 10) {
				t.Fatalf("versionKey(%q, %d) = %q does not split back", p, n, vk)
			}
		}
		if err := storage.ValidateKey(metaKey(p)); err != nil {
			t.Fatalf("metaKey(%q): %v", p, err)
		}
		prefix, err := folderPath(p + "/")
		if err != nil || prefix != metaPrefix+p+"/" || storage.ValidatePrefix(prefix) != nil {
			t.Fatalf("folderPath(%q/) = %q, %v", p, prefix, err)
		}
	})
}

// FuzzMergePatch checks RFC 7386 merge patch properties on arbitrary JSON
// objects: {} is the identity, every patched member is set, removed or
// merged as the patch says, untouched members stay, patching twice is
// patching once, and the inputs are not modified.
func FuzzMergePatch(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2}}`, `{"a":null,"b":{"d":3},"e":[1]}`)
	f.Add(`{}`, `{"x":{"y":{"z":null}}}`)
	f.Add(`{"a":{"b":1}}`, `{"a":"flat"}`)
	f.Add(`{"a":"s"}`, `{"a":{"b":null,"c":1}}`)
	f.Fuzz(func(t *testing.T, target, patch string) {
		tm, err1 := field.DecodeObject([]byte(target))
		pm, err2 := field.DecodeObject([]byte(patch))
		if err1 != nil || err2 != nil {
			return
		}
		tCopy, pCopy := clone(t, tm), clone(t, pm)

		if got := mergeObjects(tm, map[string]any{}); !reflect.DeepEqual(got, tm) {
			t.Fatalf("patch {} changed %v to %v", tm, got)
		}
		r := mergeObjects(tm, pm)
		for k, pv := range pm {
			rv, present := r[k]
			switch pv := pv.(type) {
			case nil:
				if present {
					t.Fatalf("member %q patched with null is still there: %v", k, rv)
				}
			case map[string]any:
				if want := mergePatch(tm[k], pv); !reflect.DeepEqual(rv, want) {
					t.Fatalf("member %q = %v, want the merge %v", k, rv, want)
				}
				if _, ok := rv.(map[string]any); !ok {
					t.Fatalf("member %q patched with an object is %T", k, rv)
				}
			default:
				if !reflect.DeepEqual(rv, pv) {
					t.Fatalf("member %q = %v, want %v", k, rv, pv)
				}
			}
		}
		for k, tv := range tm {
			if _, patched := pm[k]; !patched && !reflect.DeepEqual(r[k], tv) {
				t.Fatalf("unpatched member %q changed from %v to %v", k, tv, r[k])
			}
		}
		if again := mergeObjects(r, pm); !reflect.DeepEqual(again, r) {
			t.Fatalf("not idempotent: %v then %v", r, again)
		}
		if !reflect.DeepEqual(tm, tCopy) || !reflect.DeepEqual(pm, pCopy) {
			t.Fatal("mergePatch modified its inputs")
		}
	})
}

func clone(t *testing.T, m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := field.DecodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
