package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

// Fuzz registers a fuzz target that runs a random sequence of operations
// against a fresh backend and checks every result against a model: a plain
// map with the contract's semantics written out the slow, obvious way.
// After the sequence, every key the alphabet can spell and every prefix
// are read back and compared.
//
// The input is a byte program; see decoder for the encoding. Keys are one
// to three segments from {"a", "b", "a.", "a0"}, chosen so that keys sort
// on both sides of folder boundaries ('.' < '/' < '0').
func Fuzz(f *testing.F, newBackend NewBackend) {
	f.Helper()
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, program []byte) {
		runProgram(t, newBackend(t), program)
	})
}

// maxFuzzOps bounds one input's work, so slow (fsyncing) backends still
// fuzz at a useful rate.
const maxFuzzOps = 100

var (
	segments   = []string{"a", "b", "a.", "a0"}
	fuzzValues = [][]byte{{}, []byte("x"), []byte("y"), []byte("xy")}
	fuzzBadKey = []string{"", "a/", "/a", "a//b", "a\x00", strings.Repeat("a", storage.MaxKeyLen+1)}
)

// Opcodes; the decoder takes the opcode byte modulo 8.
const (
	opPut    = 0 // key, value
	opDelete = 2 // key
	opGet    = 3 // key
	opList   = 4 // prefix
	opTxn    = 5 // count, then per op: kind, key, [value]
	opBadKey = 6 // bad key index, method
	opPut2   = 7 // same as opPut: writes should be common
	// 1 is also a put.
)

// fuzzSeeds start the fuzzer on inputs that reach every opcode.
var fuzzSeeds = [][]byte{
	{},
	// put a=x; get a; list ""; delete a; get a
	{opPut, 0, 0, 1, opGet, 0, 0, opList, 0, opDelete, 0, 0, opGet, 0, 0},
	// put a/b, a., a0, a./a; list "" and "a/"
	{opPut, 1, 0, 1, 1, opPut, 0, 2, 2, opPut, 0, 3, 3, opPut, 1, 2, 0, 1, opList, 0, opList, 1, 0},
	// txn: checkAbsent a, put a; txn: checkEqual a=y (fails), delete a
	{opTxn, 1, 3, 0, 0, 0, 0, 0, 1, opTxn, 1, 2, 0, 0, 2, 1, 0, 0, opGet, 0, 0},
	// every bad key through every method
	{opBadKey, 0, 0, opBadKey, 1, 1, opBadKey, 2, 2, opBadKey, 3, 3, opBadKey, 4, 4, opBadKey, 5, 0},
}

// decoder reads a fuzz program. Past the end it yields zeros and sets done.
type decoder struct {
	data []byte
	done bool
}

func (d *decoder) byte() byte {
	if len(d.data) == 0 {
		d.done = true
		return 0
	}
	c := d.data[0]
	d.data = d.data[1:]
	return c
}

// key is a depth byte (1 to 3 segments) then one byte per segment.
func (d *decoder) key() string {
	n := 1 + int(d.byte())%3
	parts := make([]string, n)
	for i := range parts {
		parts[i] = segments[int(d.byte())%len(segments)]
	}
	return strings.Join(parts, "/")
}

// prefix is a depth byte (0 to 2 segments) then one byte per segment.
func (d *decoder) prefix() string {
	n := int(d.byte()) % 3
	var p strings.Builder
	for range n {
		p.WriteString(segments[int(d.byte())%len(segments)])
		p.WriteByte('/')
	}
	return p.String()
}

func (d *decoder) value() []byte { return fuzzValues[int(d.byte())%len(fuzzValues)] }

// model is the reference semantics.
type model map[string][]byte

func (m model) list(prefix string) []string {
	seen := map[string]bool{}
	for k := range m {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// txn returns the key of the first failing check, or applies ops.
func (m model) txn(ops []storage.Op) (conflict string, ok bool) {
	for _, op := range ops {
		if op.Kind != storage.OpCheck {
			continue
		}
		v, exists := m[op.Key]
		if op.Absent == exists || (!op.Absent && !bytes.Equal(v, op.Value)) {
			return op.Key, false
		}
	}
	for _, op := range ops {
		switch op.Kind {
		case storage.OpPut:
			m[op.Key] = op.Value
		case storage.OpDelete:
			delete(m, op.Key)
		}
	}
	return "", true
}

func runProgram(t *testing.T, b storage.Backend, program []byte) {
	ctx := t.Context()
	d := &decoder{data: program}
	m := model{}
	for step := 0; step < maxFuzzOps; step++ {
		code := d.byte()
		if d.done {
			break
		}
		switch code % 8 {
		case opPut, 1, opPut2:
			k, v := d.key(), d.value()
			if err := b.Put(ctx, k, v); err != nil {
				t.Fatalf("step %d: Put(%q, %q): %v", step, k, v, err)
			}
			m[k] = v
		case opDelete:
			k := d.key()
			if err := b.Delete(ctx, k); err != nil {
				t.Fatalf("step %d: Delete(%q): %v", step, k, err)
			}
			delete(m, k)
		case opGet:
			k := d.key()
			if err := compareGet(t, b, m, k); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		case opList:
			p := d.prefix()
			if err := compareList(t, b, m, p); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		case opTxn:
			ops := decodeTxn(d)
			err := b.Txn(ctx, ops)
			conflict, ok := m.txn(ops)
			switch {
			case ok && err != nil:
				t.Fatalf("step %d: Txn(%s): %v, want success", step, fmtOps(ops), err)
			case !ok:
				ce, isConflict := errors.AsType[*storage.ConflictError](err)
				if !isConflict || ce.Key != conflict || !errors.Is(err, storage.ErrConflict) {
					t.Fatalf("step %d: Txn(%s): %v, want a conflict at %q", step, fmtOps(ops), err, conflict)
				}
			}
		case opBadKey:
			k := fuzzBadKey[int(d.byte())%len(fuzzBadKey)]
			method := d.byte() % 5
			var err error
			switch method {
			case 0:
				_, err = b.Get(ctx, k)
			case 1:
				err = b.Put(ctx, k, []byte("v"))
			case 2:
				err = b.Delete(ctx, k)
			case 3:
				err = b.Txn(ctx, []storage.Op{storage.Put("a", nil), storage.Put(k, nil)})
			case 4:
				_, err = b.List(ctx, k+"/")
			}
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("step %d: method %d with bad key %q: %v, want ErrInvalidKey", step, method, k, err)
			}
		}
	}

	// Read the whole key space back.
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		if err := compareList(t, b, m, prefix); err != nil {
			t.Fatalf("final: %v", err)
		}
		for _, s := range segments {
			if err := compareGet(t, b, m, prefix+s); err != nil {
				t.Fatalf("final: %v", err)
			}
			if depth < 2 {
				walk(prefix+s+"/", depth+1)
			}
		}
	}
	walk("", 0)
}

func decodeTxn(d *decoder) []storage.Op {
	n := 1 + int(d.byte())%4
	ops := make([]storage.Op, 0, n)
	for range n {
		switch d.byte() % 4 {
		case 0:
			ops = append(ops, storage.Put(d.key(), d.value()))
		case 1:
			ops = append(ops, storage.Delete(d.key()))
		case 2:
			ops = append(ops, storage.CheckEqual(d.key(), d.value()))
		case 3:
			ops = append(ops, storage.CheckAbsent(d.key()))
		}
	}
	return ops
}

func compareGet(t *testing.T, b storage.Backend, m model, k string) error {
	got, err := b.Get(t.Context(), k)
	want, ok := m[k]
	switch {
	case !ok && !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("Get(%q) = %q, %v; want ErrNotFound", k, got, err)
	case ok && err != nil:
		return fmt.Errorf("Get(%q): %v, want %q", k, err, want)
	case ok && !bytes.Equal(got, want):
		return fmt.Errorf("Get(%q) = %q, want %q", k, got, want)
	}
	return nil
}

func compareList(t *testing.T, b storage.Backend, m model, p string) error {
	got, err := b.List(t.Context(), p)
	if err != nil {
		return fmt.Errorf("List(%q): %v", p, err)
	}
	if want := m.list(p); got == nil || !slices.Equal(got, want) {
		return fmt.Errorf("List(%q) = %q, want %q", p, got, want)
	}
	return nil
}

func fmtOps(ops []storage.Op) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		switch {
		case op.Kind == storage.OpCheck && op.Absent:
			parts[i] = fmt.Sprintf("check %q absent", op.Key)
		case op.Kind == storage.OpDelete:
			parts[i] = fmt.Sprintf("delete %q", op.Key)
		default:
			parts[i] = fmt.Sprintf("%v %q=%q", op.Kind, op.Key, op.Value)
		}
	}
	return strings.Join(parts, ", ")
}
