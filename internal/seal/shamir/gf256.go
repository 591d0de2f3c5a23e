package shamir

// Arithmetic in GF(2^8) with the AES reduction polynomial
// x^8 + x^4 + x^3 + x + 1 (0x11b), the field Vault and OpenBao use, so
// shares are interchangeable with theirs.
//
// Every function here runs in time independent of its operands: no table
// lookups indexed by secret values and no branches on them. Addition and
// subtraction are both XOR and need no function.

// mul returns a*b in GF(2^8), by the "Russian peasant" method: for each
// bit of b, add a in if the bit is set, then multiply a by x and reduce.
// The conditionals are masks: -(v&1) is 0x00 or 0xff.
func mul(a, b uint8) uint8 {
	var r uint8
	for range 8 {
		r ^= -(b & 1) & a
		b >>= 1
		a = (a << 1) ^ (-(a >> 7) & 0x1b)
	}
	return r
}

// inv returns the multiplicative inverse of a, computed as a^254 (the
// multiplicative group has order 255, so a^254 * a = 1). inv(0) is 0,
// which callers never rely on: Combine rejects repeated x coordinates,
// the only way a zero divisor could arise.
//
// 254 = 0b11111110; the fixed chain of squarings and multiplications
// below does not depend on a.
func inv(a uint8) uint8 {
	a2 := mul(a, a)      // a^2
	a3 := mul(a2, a)     // a^3
	a6 := mul(a3, a3)    // a^6
	a12 := mul(a6, a6)   // a^12
	a15 := mul(a12, a3)  // a^15
	a30 := mul(a15, a15) // a^30
	a60 := mul(a30, a30) // a^60
	a63 := mul(a60, a3)  // a^63
	a126 := mul(a63, a63)
	a127 := mul(a126, a)
	return mul(a127, a127) // a^254
}

// div returns a/b. b must not be zero.
func div(a, b uint8) uint8 {
	return mul(a, inv(b))
}
