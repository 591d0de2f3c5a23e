package barrier

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	phys := newPhys()
	b := New(phys, Options{})
	if !b.Sealed() {
		t.Fatal("a new barrier is unsealed")
	}
	if ok, err := b.Initialized(ctx); err != nil || ok {
		t.Fatalf("Initialized = %v, %v before Initialize", ok, err)
	}
	root, _ := GenerateKey()
	if err := b.Unseal(ctx, root); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Unseal before Initialize: %v, want ErrNotInitialized", err)
	}
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Initialized(ctx); err != nil || !ok {
		t.Fatalf("Initialized = %v, %v after Initialize", ok, err)
	}
	if !b.Sealed() {
		t.Fatal("Initialize unsealed the barrier")
	}
	if err := b.Initialize(ctx, root); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second Initialize: %v, want ErrAlreadyInitialized", err)
	}
	wrong, _ := GenerateKey()
	if err := b.Unseal(ctx, wrong); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unseal with a wrong key: %v, want ErrDecrypt", err)
	}
	if !b.Sealed() {
		t.Fatal("a wrong key unsealed the barrier")
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if b.Sealed() {
		t.Fatal("still sealed after Unseal")
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatalf("Unseal of an unsealed barrier with its key: %v", err)
	}
	if err := b.Unseal(ctx, wrong); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unseal of an unsealed barrier with another key: %v, want ErrDecrypt", err)
	}
	mustPut(t, b, "k", "v")
	b.Seal()
	b.Seal() // sealing twice is harmless
	if !b.Sealed() {
		t.Fatal("Seal did not seal")
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, "k"); got != "v" {
		t.Fatalf("after seal and unseal: %q", got)
	}
	checkConsistent(t, phys, root)
}

func TestRootKeyLength(t *testing.T) {
	t.Parallel()
	b := New(newPhys(), Options{})
	for _, n := range []int{0, 16, 31, 33, 64} {
		if err := b.Initialize(t.Context(), make([]byte, n)); err == nil || !strings.Contains(err.Error(), "want 32") {
			t.Errorf("Initialize with a %d-byte key: %v", n, err)
		}
		if err := b.Unseal(t.Context(), make([]byte, n)); err == nil || !strings.Contains(err.Error(), "want 32") {
			t.Errorf("Unseal with a %d-byte key: %v", n, err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	a, err := GenerateKey()
	if err != nil || len(a) != 32 {
		t.Fatalf("GenerateKey = %d bytes, %v", len(a), err)
	}
	c, _ := GenerateKey()
	if bytes.Equal(a, c) {
		t.Fatal("two keys are equal")
	}
}

func TestSealedOperations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	phys := newPhys()
	b := New(phys, Options{})
	root, _ := GenerateKey()
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := b.Get(ctx, "k"); return err }},
		{"put", func() error { return b.Put(ctx, "k", []byte("v")) }},
		{"delete", func() error { return b.Delete(ctx, "k") }},
		{"list", func() error { _, err := b.List(ctx, ""); return err }},
		{"txn", func() error { return b.Txn(ctx, []storage.Op{storage.Put("k", nil)}) }},
		{"rotate", func() error { _, err := b.Rotate(ctx); return err }},
		{"key status", func() error { _, err := b.KeyStatus(); return err }},
		{"terms", func() error { _, err := b.Terms(); return err }},
		{"reencrypt", func() error { _, err := b.Reencrypt(ctx); return err }},
	}
	check := func(when string) {
		t.Helper()
		for _, op := range ops {
			if err := op.do(); !errors.Is(err, ErrSealed) {
				t.Errorf("%s %s: error = %v, want ErrSealed", when, op.name, err)
			}
		}
		if b.NeedsReencrypt() {
			t.Errorf("%s: NeedsReencrypt is true while sealed", when)
		}
	}
	check("before unseal")
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "k", "v")
	b.Seal()
	check("after seal")
	if got, _ := phys.Get(ctx, dataPrefix+"k"); len(got) == 0 {
		t.Fatal("sealed Delete removed the record")
	}
}

func TestRoundtrip(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBarrier(t)
	ctx := t.Context()
	values := map[string][]byte{
		"a":            []byte("alpha"),
		"empty":        {},
		"dir/bin":      {0, 1, 2, 0xff},
		"dir/sub/deep": bytes.Repeat([]byte("x"), 64<<10),
	}
	for k, v := range values {
		if err := b.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range values {
		got, err := b.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, v) {
			t.Fatalf("%s: got %d bytes, want %d", k, len(got), len(v))
		}
	}
	if _, err := b.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get deleted: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
	for _, bad := range []string{"", "/a", "a/", "a//b"} {
		if err := b.Put(ctx, bad, nil); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", bad, err)
		}
		if _, err := b.Get(ctx, bad); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey", bad, err)
		}
		if err := b.Delete(ctx, bad); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestSurvivesRestart(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	mustPut(t, b, "k", "v")
	b2 := reopen(t, phys, root)
	if got := mustGet(t, b2, "k"); got != "v" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	b, _, _ := newTestBarrier(t)
	ctx := t.Context()
	for _, k := range []string{"a", "b/c", "b/d/e", "b/d/f", "c"} {
		mustPut(t, b, k, "x")
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "b/", "c"}},
		{"b/", []string{"c", "d/"}},
		{"b/d/", []string{"e", "f"}},
		{"nothing/", []string{}},
	}
	for _, tc := range tests {
		got, err := b.List(ctx, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	if _, err := b.List(ctx, "b"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("List without a trailing slash: %v, want ErrInvalidKey", err)
	}
	// The keyring, outside v/, is not a logical key.
	if got, _ := b.List(ctx, ""); strings.Contains(fmt.Sprint(got), "barrier") {
		t.Errorf("logical listing shows the keyring: %q", got)
	}
}

// TestPlaintextNeverStored writes values with a marker through every write
// path and scans every physical value: the marker, the data keys and the
// root key appear nowhere, in raw, hex or base64 form.
func TestPlaintextNeverStored(t *testing.T) {
	t.Parallel()
	b, phys, root := newTestBarrier(t)
	ctx := t.Context()
	const marker = "MARKER-c0ffee-plaintext"
	mustPut(t, b, "put", marker)
	if err := b.Txn(ctx, []storage.Op{storage.Put("txn", []byte("x"+marker+"x"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reencrypt(ctx); err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"marker": []byte(marker)}
	secrets := map[string][]byte{"root key": root}
	for id, tm := range b.k.terms {
		secrets[fmt.Sprintf("term %d key", id)] = bytes.Clone(tm.key.bytes())
	}
	for name, s := range secrets {
		needles[name] = s
		needles[name+" hex"] = []byte(hex.EncodeToString(s))
		needles[name+" base64"] = []byte(base64.StdEncoding.EncodeToString(s))
	}
	var scan func(prefix string)
	scanned := 0
	scan = func(prefix string) {
		keys, err := phys.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				scan(prefix + k)
				continue
			}
			v, err := phys.Get(ctx, prefix+k)
			if err != nil {
				t.Fatal(err)
			}
			scanned++
			for name, n := range needles {
				if bytes.Contains(v, n) {
					t.Errorf("physical %q contains the %s", prefix+k, name)
				}
			}
		}
	}
	scan("")
	if scanned != 3 {
		t.Fatalf("scanned %d physical values, want 3 (keyring and two entries)", scanned)
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	b, _, root := newTestBarrier(t)
	raw := bytes.Repeat([]byte{0xab}, 32)
	k := newSecretKey(bytes.Clone(raw))
	type holder struct {
		Key  *secretKey
		KeyV secretKey
	}
	if k.String() != redacted || k.GoString() != redacted {
		t.Error("String or GoString does not redact")
	}
	if text, err := k.MarshalText(); err != nil || string(text) != redacted {
		t.Error("MarshalText does not redact")
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k, "value", *k, "holder", holder{k, *k})
	jsonOut, err := json.Marshal(holder{k, *k})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog": logged.String(),
		"json": string(jsonOut),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, k) + fmt.Sprintf(verb, *k) + fmt.Sprintf(verb, holder{k, *k})
		// The barrier itself, with its root key and keyring inside.
		outputs["fmt barrier "+verb] = fmt.Sprintf(verb, b) + fmt.Sprintf(verb, struct{ b *Barrier }{b})
	}
	leaks := func(out string, key []byte) bool {
		// The first words of an AES-256 key schedule are the key itself,
		// so a printed cipher shows this number.
		word := fmt.Sprint(binary.BigEndian.Uint32(key))
		return strings.Contains(out, word) ||
			strings.Contains(out, hex.EncodeToString(key)) ||
			strings.Contains(strings.ToLower(out), hex.EncodeToString(key[:8])) ||
			strings.Contains(out, base64.StdEncoding.EncodeToString(key)) ||
			strings.Contains(out, strings.Trim(fmt.Sprint([]byte(key[:8])), "[]")) ||
			strings.Contains(out, string(key))
	}
	for name, out := range outputs {
		if leaks(out, raw) {
			t.Errorf("%s leaks the key: %s", name, out)
		}
		if leaks(out, root) {
			t.Errorf("%s leaks the root key", name)
		}
		for id, tm := range b.k.terms {
			if leaks(out, tm.key.bytes()) {
				t.Errorf("%s leaks the term %d key", name, id)
			}
		}
		if strings.HasPrefix(name, "fmt barrier") {
			continue
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say %s: %s", name, redacted, out)
		}
	}
}

// TestSealZeroesKeys looks inside the barrier: after Seal, every byte of
// every key it held is zero.
func TestSealZeroesKeys(t *testing.T) {
	t.Parallel()
	b, _, root := newTestBarrier(t)
	if _, err := b.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	held := [][]byte{b.k.root.bytes()}
	for _, tm := range b.k.terms {
		held = append(held, tm.key.bytes())
	}
	if len(held) != 3 {
		t.Fatalf("holding %d keys, want root and two terms", len(held))
	}
	if bytes.Equal(held[0], make([]byte, 32)) || !bytes.Equal(held[0], root) {
		t.Fatal("root key copy is not the root key before Seal")
	}
	b.Seal()
	for i, k := range held {
		if len(k) != 32 || !bytes.Equal(k, make([]byte, 32)) {
			t.Errorf("key %d after Seal: %x", i, k)
		}
	}
	if b.k != nil {
		t.Error("Seal kept references to key material")
	}
	if bytes.Equal(root, make([]byte, 32)) {
		t.Error("Seal zeroed the caller's root key")
	}
}

func TestInitializeKeepsNoKeys(t *testing.T) {
	t.Parallel()
	b := New(newPhys(), Options{})
	root, _ := GenerateKey()
	if err := b.Initialize(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if b.k != nil {
		t.Fatal("Initialize left keys in the barrier")
	}
}

func TestInitializeWriteFails(t *testing.T) {
	t.Parallel()
	phys := &hookBackend{Backend: newPhys()}
	phys.setBeforeTxn(func([]storage.Op) error { return errInjected })
	b := New(phys, Options{})
	root, _ := GenerateKey()
	if err := b.Initialize(t.Context(), root); !errors.Is(err, errInjected) {
		t.Fatalf("error = %v, want the injected failure", err)
	}
	if ok, _ := b.Initialized(t.Context()); ok {
		t.Fatal("a failed Initialize left a keyring")
	}
}

func TestCorruptKeyring(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	phys := newPhys()
	b := New(phys, Options{})
	root, _ := GenerateKey()
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	rec, _ := phys.Get(ctx, keyringPath)
	rec[len(rec)-1] ^= 1
	if err := phys.Put(ctx, keyringPath, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, root); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unseal of a damaged keyring: %v, want ErrDecrypt", err)
	}
	// A keyring sealed under the root key but holding bad JSON.
	aead, _ := newAEAD(root)
	for name, plain := range map[string]string{
		"not json":         "{",
		"wrong version":    `{"version":2,"active_term":1,"keys":[{"term":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"no keys":          `{"version":1,"active_term":1,"keys":[]}`,
		"no active key":    `{"version":1,"active_term":2,"keys":[{"term":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"short key":        `{"version":1,"active_term":1,"keys":[{"term":1,"key":"AAAA"}]}`,
		"term 0":           `{"version":1,"active_term":1,"keys":[{"term":0,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"through > active": `{"version":1,"active_term":1,"reencrypted_through":2,"keys":[{"term":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
	} {
		rec, _ := sealRecord(bytes.NewReader(make([]byte, 12)), aead, rootTerm, keyringPath, []byte(plain))
		if err := phys.Put(ctx, keyringPath, rec); err != nil {
			t.Fatal(err)
		}
		if err := b.Unseal(ctx, root); err == nil || !strings.Contains(err.Error(), "keyring") || !b.Sealed() {
			t.Errorf("%s: Unseal = %v, sealed %v", name, err, b.Sealed())
		}
	}
}
