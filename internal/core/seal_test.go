package core

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/storage/inmem"
)

func TestParseShare(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xab}, 33)
	cases := []struct {
		name, in string
		want     []byte
		err      string
	}{
		{"hex", hex.EncodeToString(raw), raw, ""},
		{"base64", base64.StdEncoding.EncodeToString(raw), raw, ""},
		{"spaces trimmed", "  " + hex.EncodeToString(raw) + "\n", raw, ""},
		{"empty", "", nil, "no key provided"},
		{"garbage", "!!not a key!!", nil, "neither hex nor base64"},
		{"short", hex.EncodeToString(raw[:8]), nil, "shorter than minimum 16 bytes"},
		{"long", hex.EncodeToString(append(raw, raw...)), nil, "longer than maximum 33 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseShare(tc.in)
			if tc.err != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Msg, tc.err) {
					t.Fatalf("err = %v, want 400 with %q", err, tc.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
}

// FuzzParseShare: a share either parses to 16..33 bytes that re-encode to
// the input (as hex or base64), or is refused with a 400; never a panic.
func FuzzParseShare(f *testing.F) {
	f.Add(hex.EncodeToString(bytes.Repeat([]byte{1}, 33)))
	f.Add(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, in string) {
		b, err := ParseShare(in)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Fatalf("non-400 error %v", err)
			}
			return
		}
		if len(b) < 16 || len(b) > 33 {
			t.Fatalf("accepted %d bytes", len(b))
		}
		s := strings.TrimSpace(in)
		if !strings.EqualFold(hex.EncodeToString(b), s) && base64.StdEncoding.EncodeToString(b) != s {
			t.Fatalf("%q decoded to %x, which does not re-encode to it", in, b)
		}
	})
}

// TestSealZeroesAndRefuses initialises and unseals an in-memory core, seals
// it and checks that requests are refused and the token store is gone.
func TestSealZeroesAndRefuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := New(Config{Physical: inmem.New()})
	if err != nil {
		t.Fatal(err)
	}
	res, key, err := c.Initialize(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, key) || len(key) != 32 {
		t.Fatalf("unseal key length %d", len(key))
	}
	for _, k := range res.Keys[:2] {
		if _, err := c.Unseal(ctx, k, false); err != nil {
			t.Fatal(err)
		}
	}
	if c.Sealed() {
		t.Fatal("sealed after threshold")
	}
	resp, err := c.Handle(ctx, &Request{Operation: OpRead, Path: "sys/key-status", Token: res.RootToken})
	if err != nil || resp == nil {
		t.Fatalf("key-status: %v", err)
	}
	c.Seal()
	if !c.Sealed() || c.tokens != nil || c.mounts.Load() != nil || !c.barrier.Sealed() {
		t.Fatal("seal left state behind")
	}
	if _, err := c.Handle(ctx, &Request{Operation: OpRead, Path: "sys/key-status", Token: res.RootToken}); !errors.Is(err, ErrSealed) {
		t.Fatalf("after seal: %v", err)
	}
	// The unseal key handed back by Initialize is the caller's to zero.
	clear(key)
}
