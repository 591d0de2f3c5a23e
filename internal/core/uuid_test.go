package core

import (
	"regexp"
	"testing"
)

// TestNewUUID: random (version 4, RFC 4122 variant) UUIDs in the
// canonical lowercase form, all different.
func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := NewUUID()
		if !re.MatchString(u) {
			t.Fatalf("NewUUID() = %q, not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("NewUUID() repeated %q", u)
		}
		seen[u] = true
	}
}

func BenchmarkNewUUID(b *testing.B) {
	for b.Loop() {
		_ = NewUUID()
	}
}
