package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/storage"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"simple", "a", true},
		{"path", "sys/mounts/kv", true},
		{"dots", "a/./..", true}, // keys are not file paths
		{"longest", strings.Repeat("k", storage.MaxKeyLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("k", storage.MaxKeyLen+1), false},
		{"trailing slash", "a/", false},
		{"leading slash", "/a", false},
		{"slash only", "/", false},
		{"empty segment", "a//b", false},
		{"NUL", "a\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := storage.ValidateKey(tc.key)
			if tc.ok && err != nil {
				t.Errorf("ValidateKey: %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("ValidateKey: %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	for prefix, ok := range map[string]bool{
		"": true, "a/": true, "a/b/": true,
		"a": false, "/": false, "a//": false, "/a/": false, "a\x00/": false,
	} {
		err := storage.ValidatePrefix(prefix)
		if ok != (err == nil) || (!ok && !errors.Is(err, storage.ErrInvalidKey)) {
			t.Errorf("ValidatePrefix(%q) = %v", prefix, err)
		}
	}
}

func TestValidateOps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ops        []storage.Op
		ok         bool
		invalidKey bool
	}{
		{"none", nil, true, false},
		{"all kinds", []storage.Op{storage.Put("a", nil), storage.Delete("b"), storage.CheckEqual("c", nil), storage.CheckAbsent("d")}, true, false},
		{"bad key", []storage.Op{storage.Put("a", nil), storage.Delete("b/")}, false, true},
		{"zero kind", []storage.Op{{Key: "a"}}, false, false},
		{"unknown kind", []storage.Op{{Kind: 42, Key: "a"}}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := storage.ValidateOps(tc.ops)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateOps: %v, want ok=%v", err, tc.ok)
			}
			if tc.invalidKey != errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("ValidateOps: %v, want ErrInvalidKey=%v", err, tc.invalidKey)
			}
		})
	}
}

func TestConflictError(t *testing.T) {
	t.Parallel()
	var err error = &storage.ConflictError{Key: "sys/mounts"}
	if !errors.Is(err, storage.ErrConflict) {
		t.Error("ConflictError does not wrap ErrConflict")
	}
	if got := err.Error(); !strings.Contains(got, `"sys/mounts"`) {
		t.Errorf("Error() = %q, want it to name the key", got)
	}
}
