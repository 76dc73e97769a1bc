// Package idbytes holds the IDs the command layer makes, canonical UUIDs
// (lower-case hex, 8-4-4-4-12), as their 16 bytes: a table of millions
// of IDs then holds no pointer for the collector to follow at each cycle.
package idbytes

import "github.com/google/uuid"

// Parse returns the bytes of id when it is a canonical UUID, the only
// form Spell gives back unchanged; false for any other form of ID.
func Parse(id string) (u [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	for j, i := range pairs {
		hi, lo := digit[id[i]], digit[id[i+1]]
		if hi < 0 || lo < 0 {
			return [16]byte{}, false
		}
		u[j] = byte(hi)<<4 | byte(lo)
	}
	return u, true
}

// Spell is the canonical UUID of u.
func Spell(u [16]byte) string { return uuid.UUID(u).String() }

// pairs are where a canonical UUID spells each of its 16 bytes.
var pairs = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// digit is each byte's value as a lower-case hex digit, -1 for any other.
var digit = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range "0123456789abcdef" {
		t[c] = int8(i)
	}
	return t
}()
