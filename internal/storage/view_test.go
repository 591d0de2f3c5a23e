package storage_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/inmem"
	"github.com/cofferhq/coffer/internal/storage/storagetest"
)

// outside are keys around a view's prefix "v/" (and the nested "v/n/")
// that a view must never see or touch.
var outside = []string{"v", "v.x", "v0", "u/x", "w/v/x", "v/n", "v/n.", "v/n0", "v/m/x"}

// newSurroundedView returns a view with prefix "v/n/" (built as a view of
// a view) over a backend that also holds the outside keys. The contract
// suite's exact List and Get results prove the view is sealed off.
func newSurroundedView(t *testing.T) storage.Backend {
	under := inmem.New()
	for _, k := range outside {
		if err := under.Put(t.Context(), k, []byte("outside")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// Nothing the view did may have changed the outside keys.
		for _, k := range outside {
			v, err := under.Get(context.Background(), k)
			if err != nil || string(v) != "outside" {
				t.Errorf("outside key %q = %q, %v after the test", k, v, err)
			}
		}
	})
	return storage.NewView(storage.NewView(under, "v/"), "n/")
}

func TestViewContract(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, newSurroundedView)
}

func TestViewContractEmptyPrefix(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(*testing.T) storage.Backend { return storage.NewView(inmem.New(), "") })
}

func FuzzView(f *testing.F) {
	storagetest.Fuzz(f, newSurroundedView)
}

func TestViewMapsKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	under := inmem.New()
	v := storage.NewView(under, "logical/3f2a/")
	if err := v.Put(ctx, "data/app", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if got, err := under.Get(ctx, "logical/3f2a/data/app"); err != nil || string(got) != "secret" {
		t.Errorf("underlying Get = %q, %v", got, err)
	}
	if err := v.Txn(ctx, []storage.Op{storage.CheckAbsent("data/new"), storage.Put("data/new", nil), storage.Delete("data/app")}); err != nil {
		t.Fatal(err)
	}
	if names, err := under.List(ctx, "logical/3f2a/data/"); err != nil || !slices.Equal(names, []string{"new"}) {
		t.Errorf("underlying List = %q, %v", names, err)
	}
	if names, err := v.List(ctx, ""); err != nil || !slices.Equal(names, []string{"data/"}) {
		t.Errorf("view List = %q, %v", names, err)
	}
}

func TestViewConflictKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	v := storage.NewView(storage.NewView(inmem.New(), "a/"), "b/")
	if err := v.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	err := v.Txn(ctx, []storage.Op{storage.CheckEqual("k", []byte("2"))})
	ce, ok := errors.AsType[*storage.ConflictError](err)
	if !ok || ce.Key != "k" {
		t.Fatalf("Txn through a view: %v, want a conflict naming the view's key \"k\"", err)
	}
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("%v does not wrap ErrConflict", err)
	}
}

func TestNewViewBadPrefix(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"a", "/a/", "a//", "/", "a\x00/"} {
		t.Run(prefix, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewView(%q) did not panic", prefix)
				}
			}()
			storage.NewView(inmem.New(), prefix)
		})
	}
}
