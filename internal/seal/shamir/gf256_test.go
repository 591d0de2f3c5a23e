package shamir

import "testing"

// refMul is the textbook shift-and-add multiplication with branches, used
// only to check mul.
func refMul(a, b uint8) uint8 {
	var r uint8
	for b != 0 {
		if b&1 == 1 {
			r ^= a
		}
		hi := a&0x80 != 0
		a <<= 1
		if hi {
			a ^= 0x1b
		}
		b >>= 1
	}
	return r
}

func TestMulMatchesReference(t *testing.T) {
	t.Parallel()
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(uint8(a), uint8(b)), refMul(uint8(a), uint8(b)); got != want {
				t.Fatalf("mul(%#02x, %#02x) = %#02x, want %#02x", a, b, got, want)
			}
		}
	}
}

func TestMulKnownValues(t *testing.T) {
	t.Parallel()
	// FIPS-197 section 4.2 works these examples in the AES field.
	tests := []struct {
		name    string
		a, b, p uint8
	}{
		{"fips197 57*83", 0x57, 0x83, 0xc1},
		{"fips197 57*13", 0x57, 0x13, 0xfe},
		{"identity", 0xa5, 0x01, 0xa5},
		{"zero", 0xa5, 0x00, 0x00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := mul(tc.a, tc.b); got != tc.p {
				t.Errorf("mul(%#02x, %#02x) = %#02x, want %#02x", tc.a, tc.b, got, tc.p)
			}
			if got := mul(tc.b, tc.a); got != tc.p {
				t.Errorf("mul(%#02x, %#02x) = %#02x, want %#02x (commuted)", tc.b, tc.a, got, tc.p)
			}
		})
	}
}

func TestInverse(t *testing.T) {
	t.Parallel()
	if inv(0) != 0 {
		t.Errorf("inv(0) = %#02x, want 0", inv(0))
	}
	for a := 1; a < 256; a++ {
		if p := mul(uint8(a), inv(uint8(a))); p != 1 {
			t.Fatalf("a*inv(a) = %#02x for a = %#02x, want 1", p, a)
		}
		for b := 1; b < 256; b += 17 {
			if q := div(mul(uint8(a), uint8(b)), uint8(b)); q != uint8(a) {
				t.Fatalf("(a*b)/b = %#02x for a = %#02x, b = %#02x", q, a, b)
			}
		}
	}
}

func TestDistributive(t *testing.T) {
	t.Parallel()
	for a := 0; a < 256; a += 3 {
		for b := 0; b < 256; b += 5 {
			for c := 0; c < 256; c += 7 {
				x, y, z := uint8(a), uint8(b), uint8(c)
				if mul(x, y^z) != mul(x, y)^mul(x, z) {
					t.Fatalf("a(b+c) != ab+ac for %#02x %#02x %#02x", x, y, z)
				}
				if mul(mul(x, y), z) != mul(x, mul(y, z)) {
					t.Fatalf("(ab)c != a(bc) for %#02x %#02x %#02x", x, y, z)
				}
			}
		}
	}
}
