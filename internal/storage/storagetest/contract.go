package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

var basicContracts = []contract{
	{"GetMissing", func(t *testing.T, b storage.Backend) {
		wantMissing(t, b, "nope")
		wantMissing(t, b, "a/b/c")
	}},
	{"PutGetOverwriteDelete", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "sys/mounts", []byte("v1"))
		wantValue(t, b, "sys/mounts", []byte("v1"))
		mustPut(t, b, "sys/mounts", []byte("version two"))
		wantValue(t, b, "sys/mounts", []byte("version two"))
		mustDelete(t, b, "sys/mounts")
		wantMissing(t, b, "sys/mounts")
		mustPut(t, b, "sys/mounts", []byte("again"))
		wantValue(t, b, "sys/mounts", []byte("again"))
	}},
	{"DeleteMissing", func(t *testing.T, b storage.Backend) {
		mustDelete(t, b, "nope")
		// Deleting the name of a folder that holds no value of its own
		// touches nothing below it.
		mustPut(t, b, "a/b", []byte("x"))
		mustDelete(t, b, "a")
		wantValue(t, b, "a/b", []byte("x"))
	}},
	{"EmptyValue", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "nil", nil)
		mustPut(t, b, "empty", []byte{})
		wantValue(t, b, "nil", []byte{})
		wantValue(t, b, "empty", []byte{})
		wantList(t, b, "", []string{"empty", "nil"})
		mustTxn(t, b, storage.CheckEqual("nil", []byte{}), storage.CheckEqual("empty", nil))
		wantConflict(t, b.Txn(t.Context(), []storage.Op{storage.CheckAbsent("empty")}), "empty")
		wantConflict(t, b.Txn(t.Context(), []storage.Op{storage.CheckEqual("missing", nil)}), "missing")
	}},
	{"LargeValue", func(t *testing.T, b storage.Backend) {
		v := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		mustPut(t, b, "big", v)
		wantValue(t, b, "big", v)
	}},
	{"NotAliased", func(t *testing.T, b storage.Backend) {
		in := []byte("original")
		mustPut(t, b, "k", in)
		copy(in, "XXXXXXXX")
		wantValue(t, b, "k", []byte("original"))

		out, err := b.Get(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		copy(out, "YYYYYYYY")
		wantValue(t, b, "k", []byte("original"))

		tv := []byte("from txn")
		mustTxn(t, b, storage.Put("t", tv))
		copy(tv, "ZZZZZZZZ")
		wantValue(t, b, "t", []byte("from txn"))
	}},
}

var listContracts = []contract{
	{"List", func(t *testing.T, b storage.Backend) {
		// "a." and "a0" sort either side of "a/" ('.' < '/' < '0'): a
		// backend that skips a folder's subtree by seeking must land
		// exactly on "a0", and must not list "a/" before "a.".
		for _, k := range []string{
			"a", "a/b", "a/c/d", "a/c/e", "a/c/f/g", "a.", "a./x", "a0",
			"b/x", "b/y/z", "c", "d/e/f/g/h",
		} {
			mustPut(t, b, k, []byte(k))
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a", "a.", "a./", "a/", "a0", "b/", "c", "d/"}},
			{"a/", []string{"b", "c/"}},
			{"a/c/", []string{"d", "e", "f/"}},
			{"a/c/f/", []string{"g"}},
			{"a./", []string{"x"}},
			{"b/", []string{"x", "y/"}},
			{"d/", []string{"e/"}},
			{"d/e/f/g/", []string{"h"}},
			{"c/", []string{}},
			{"missing/", []string{}},
			{"a/b/", []string{}},
		}
		for _, tc := range tests {
			wantList(t, b, tc.prefix, tc.want)
		}
	}},
	{"ListEmpty", func(t *testing.T, b storage.Backend) {
		wantList(t, b, "", []string{})
		wantList(t, b, "missing/", []string{})
	}},
	{"ListAfterDelete", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "f/x", []byte("1"))
		mustPut(t, b, "f/y/z", []byte("2"))
		wantList(t, b, "", []string{"f/"})
		mustDelete(t, b, "f/x")
		wantList(t, b, "", []string{"f/"})
		wantList(t, b, "f/", []string{"y/"})
		mustDelete(t, b, "f/y/z")
		wantList(t, b, "", []string{})
		wantList(t, b, "f/", []string{})
	}},
	{"ListManyChildren", func(t *testing.T, b storage.Backend) {
		var want []string
		var ops []storage.Op
		for i := range 200 {
			name := fmt.Sprintf("k%03d", i)
			ops = append(ops, storage.Put("many/"+name, nil))
			want = append(want, name)
			if i%10 == 0 {
				// A subtree per tenth child, to be skipped.
				for j := range 5 {
					ops = append(ops, storage.Put(fmt.Sprintf("many/%s/sub/%d", name, j), nil))
				}
				want = append(want, name+"/")
			}
		}
		mustTxn(t, b, ops...)
		wantList(t, b, "many/", want)
		wantList(t, b, "", []string{"many/"})
	}},
}

// badKeys are rejected by every method with an error wrapping ErrInvalidKey.
var badKeys = []struct{ name, key string }{
	{"empty", ""},
	{"trailing slash", "a/"},
	{"leading slash", "/a"},
	{"empty segment", "a//b"},
	{"NUL", "a\x00b"},
	{"too long", strings.Repeat("k", storage.MaxKeyLen+1)},
}

var keyContracts = []contract{
	{"InvalidKeys", func(t *testing.T, b storage.Backend) {
		ctx := t.Context()
		for _, bk := range badKeys {
			calls := []struct {
				method string
				call   func() error
			}{
				{"Get", func() error { _, err := b.Get(ctx, bk.key); return err }},
				{"Put", func() error { return b.Put(ctx, bk.key, []byte("v")) }},
				{"Delete", func() error { return b.Delete(ctx, bk.key) }},
				{"Txn put", func() error { return b.Txn(ctx, []storage.Op{storage.Put(bk.key, nil)}) }},
				{"Txn delete", func() error { return b.Txn(ctx, []storage.Op{storage.Delete(bk.key)}) }},
				{"Txn check", func() error { return b.Txn(ctx, []storage.Op{storage.CheckAbsent(bk.key)}) }},
			}
			for _, c := range calls {
				if err := c.call(); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%s key): %v, want an error wrapping ErrInvalidKey", c.method, bk.name, err)
				}
			}
		}
		// A bad key anywhere in a Txn rejects the whole Txn.
		err := b.Txn(ctx, []storage.Op{storage.Put("good", nil), storage.Put("bad/", nil)})
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Txn with one bad key: %v, want ErrInvalidKey", err)
		}
		wantMissing(t, b, "good")
		wantList(t, b, "", []string{})
	}},
	{"InvalidPrefix", func(t *testing.T, b storage.Backend) {
		for _, p := range []string{"a", "/", "a//", "/a/", "a\x00/", strings.Repeat("p", storage.MaxKeyLen+1) + "/"} {
			if _, err := b.List(t.Context(), p); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("List(%q): %v, want an error wrapping ErrInvalidKey", p, err)
			}
		}
	}},
	{"LongKey", func(t *testing.T, b storage.Backend) {
		// Near MaxKeyLen, leaving room for a storage.NewView prefix
		// (which counts against the limit).
		k := strings.Repeat("k", storage.MaxKeyLen-256)
		mustPut(t, b, k, []byte("v"))
		wantValue(t, b, k, []byte("v"))
		wantList(t, b, "", []string{k})
	}},
	{"UnusualBytes", func(t *testing.T, b storage.Backend) {
		// Keys are bytes: spaces, unicode and bytes above 0x7f are fine.
		keys := []string{"with space", "ünïcødé/ключ", "\xff\xfe", "tab\tkey", "a/\x01"}
		for _, k := range keys {
			mustPut(t, b, k, []byte(k))
		}
		for _, k := range keys {
			wantValue(t, b, k, []byte(k))
		}
		wantList(t, b, "a/", []string{"\x01"})
	}},
}

var txnContracts = []contract{
	{"TxnAtomic", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "x", []byte("0"))
		err := b.Txn(t.Context(), []storage.Op{
			storage.Put("a", []byte("1")),
			storage.Delete("x"),
			storage.CheckEqual("x", []byte("1")), // fails: x is "0"
			storage.Put("b", []byte("2")),
		})
		wantConflict(t, err, "x")
		wantMissing(t, b, "a")
		wantMissing(t, b, "b")
		wantValue(t, b, "x", []byte("0"))
	}},
	{"TxnCheckAbsent", func(t *testing.T, b storage.Backend) {
		mustTxn(t, b, storage.CheckAbsent("k"), storage.Put("k", []byte("first")))
		wantValue(t, b, "k", []byte("first"))
		err := b.Txn(t.Context(), []storage.Op{storage.CheckAbsent("k"), storage.Put("k", []byte("second"))})
		wantConflict(t, err, "k")
		wantValue(t, b, "k", []byte("first"))
		// A folder name with no value of its own is absent.
		mustPut(t, b, "dir/child", nil)
		mustTxn(t, b, storage.CheckAbsent("dir"))
	}},
	{"TxnCheckEqual", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "k", []byte("v1"))
		mustTxn(t, b, storage.CheckEqual("k", []byte("v1")), storage.Put("k", []byte("v2")))
		wantValue(t, b, "k", []byte("v2"))
		err := b.Txn(t.Context(), []storage.Op{storage.CheckEqual("k", []byte("v1")), storage.Put("k", []byte("v3"))})
		wantConflict(t, err, "k")
		wantValue(t, b, "k", []byte("v2"))
		wantConflict(t, b.Txn(t.Context(), []storage.Op{storage.CheckEqual("k", []byte("v"))}), "k")   // prefix
		wantConflict(t, b.Txn(t.Context(), []storage.Op{storage.CheckEqual("k", []byte("v22"))}), "k") // longer
		wantConflict(t, b.Txn(t.Context(), []storage.Op{storage.CheckEqual("nope", []byte("v2"))}), "nope")
	}},
	{"TxnChecksSeePreTxnState", func(t *testing.T, b storage.Backend) {
		// The put comes first, but the check sees the state before it.
		mustTxn(t, b, storage.Put("a", []byte("1")), storage.CheckAbsent("a"))
		wantValue(t, b, "a", []byte("1"))
		mustTxn(t, b, storage.Delete("a"), storage.CheckEqual("a", []byte("1")))
		wantMissing(t, b, "a")
		err := b.Txn(t.Context(), []storage.Op{storage.Put("a", []byte("2")), storage.CheckEqual("a", []byte("2"))})
		wantConflict(t, err, "a")
		wantMissing(t, b, "a")
	}},
	{"TxnFirstFailingCheck", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "ok", []byte("v"))
		err := b.Txn(t.Context(), []storage.Op{
			storage.CheckEqual("ok", []byte("v")),
			storage.CheckAbsent("ok"),
			storage.CheckEqual("missing", []byte("v")),
		})
		wantConflict(t, err, "ok")
	}},
	{"TxnOpsInOrder", func(t *testing.T, b storage.Backend) {
		mustTxn(t, b, storage.Put("a", []byte("1")), storage.Put("a", []byte("2")))
		wantValue(t, b, "a", []byte("2"))
		mustTxn(t, b, storage.Put("b", []byte("1")), storage.Delete("b"))
		wantMissing(t, b, "b")
		mustTxn(t, b, storage.Delete("a"), storage.Put("a", []byte("3")))
		wantValue(t, b, "a", []byte("3"))
		mustTxn(t, b, storage.Put("m/1", nil), storage.Put("m/2", nil), storage.Delete("a"))
		wantList(t, b, "", []string{"m/"})
		wantList(t, b, "m/", []string{"1", "2"})
	}},
	{"TxnEmpty", func(t *testing.T, b storage.Backend) {
		mustTxn(t, b)
		if err := b.Txn(t.Context(), []storage.Op{}); err != nil {
			t.Fatalf("Txn(empty): %v", err)
		}
		wantList(t, b, "", []string{})
	}},
	{"TxnUnknownKind", func(t *testing.T, b storage.Backend) {
		for _, kind := range []storage.OpKind{0, 99} {
			err := b.Txn(t.Context(), []storage.Op{storage.Put("a", nil), {Kind: kind, Key: "b"}})
			if err == nil || errors.Is(err, storage.ErrConflict) {
				t.Errorf("Txn with op kind %v: %v, want a validation error", kind, err)
			}
		}
		wantMissing(t, b, "a")
	}},
}

var concurrencyContracts = []contract{
	{"ConcurrentWriters", func(t *testing.T, b storage.Backend) {
		const writers = 64
		mustPut(t, b, "counter", []byte("0"))
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				key := fmt.Sprintf("w/%02d", i)
				if err := b.Put(t.Context(), key, []byte(key)); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", key, err)
					return
				}
				if err := increment(t.Context(), b, "counter"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var want []string
		for i := range writers {
			key := fmt.Sprintf("w/%02d", i)
			wantValue(t, b, key, []byte(key))
			want = append(want, key[2:])
		}
		wantList(t, b, "w/", want)
		// Every compare-and-set increment landed exactly once.
		wantValue(t, b, "counter", fmt.Appendf(nil, "%d", writers))
	}},
	{"ConcurrentCreateOnce", func(t *testing.T, b storage.Backend) {
		// Many writers race to create one key; exactly one wins and the
		// rest get a conflict for that key.
		const writers = 32
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins []int
		)
		for i := range writers {
			wg.Go(func() {
				err := b.Txn(t.Context(), []storage.Op{
					storage.CheckAbsent("leader"),
					storage.Put("leader", fmt.Appendf(nil, "%d", i)),
				})
				if err == nil {
					mu.Lock()
					wins = append(wins, i)
					mu.Unlock()
					return
				}
				if ce, ok := errors.AsType[*storage.ConflictError](err); !ok || ce.Key != "leader" {
					t.Errorf("writer %d: %v, want nil or a conflict at \"leader\"", i, err)
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d writers won, want exactly 1", len(wins))
		}
		wantValue(t, b, "leader", fmt.Appendf(nil, "%d", wins[0]))
	}},
	{"ConcurrentReadersAndWriters", func(t *testing.T, b storage.Backend) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					key := fmt.Sprintf("rw/%d/%02d", w, i)
					if err := b.Put(t.Context(), key, []byte(key)); err != nil {
						t.Errorf("Put(%q): %v", key, err)
						return
					}
				}
			})
		}
		for range 4 {
			wg.Go(func() {
				for range 50 {
					got, err := b.List(t.Context(), "rw/")
					if err != nil {
						t.Errorf("List: %v", err)
						return
					}
					if !slices.IsSorted(got) {
						t.Errorf("List(\"rw/\") = %q, not sorted", got)
						return
					}
					if _, err := b.Get(t.Context(), "rw/0/00"); err != nil && !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("Get: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		wantList(t, b, "rw/", []string{"0/", "1/", "2/", "3/"})
		for w := range 4 {
			got, err := b.List(t.Context(), fmt.Sprintf("rw/%d/", w))
			if err != nil || len(got) != 25 {
				t.Errorf("List(rw/%d/) = %d entries, %v; want 25", w, len(got), err)
			}
		}
	}},
	{"ContextCancelled", func(t *testing.T, b storage.Backend) {
		mustPut(t, b, "exists", []byte("v"))
		ctx := cancelled(t)
		calls := []struct {
			method string
			call   func() error
		}{
			{"Get", func() error { _, err := b.Get(ctx, "exists"); return err }},
			{"List", func() error { _, err := b.List(ctx, ""); return err }},
			{"Put", func() error { return b.Put(ctx, "new", []byte("v")) }},
			{"Delete", func() error { return b.Delete(ctx, "exists") }},
			{"Txn", func() error { return b.Txn(ctx, []storage.Op{storage.Put("new", nil), storage.Delete("exists")}) }},
		}
		for _, c := range calls {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", c.method, err)
			}
		}
		wantValue(t, b, "exists", []byte("v"))
		wantMissing(t, b, "new")
	}},
}

// increment adds one to the decimal counter at key with a compare-and-set
// loop, retrying on conflict. Each conflict means another writer's
// increment landed, so a correct backend needs far fewer than maxAttempts.
func increment(ctx context.Context, b storage.Backend, key string) error {
	const maxAttempts = 1000
	for range maxAttempts {
		cur, err := b.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("increment: get %q: %w", key, err)
		}
		var n int
		if _, err := fmt.Sscan(string(cur), &n); err != nil {
			return fmt.Errorf("increment: parse %q: %w", cur, err)
		}
		err = b.Txn(ctx, []storage.Op{
			storage.CheckEqual(key, cur),
			storage.Put(key, fmt.Appendf(nil, "%d", n+1)),
		})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("increment %q: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("increment %q: still conflicting after %d attempts", key, maxAttempts)
}
