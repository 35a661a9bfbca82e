package flags

import "testing"

// Reference values of MurmurHash3 x86_32, seed 0 (the published test vectors).
func TestMurmur3Sum32_MatchesReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"hello", 0x248bfa47},
		{"Hello, world!", 0xc0363e43},
		{"The quick brown fox jumps over the lazy dog", 0x2e4ff723},
		{"abc", 0xb3dd93fa},
		{"abcd", 0x43ed676a},
	} {
		if got := murmur3Sum32(tc.in); got != tc.want {
			t.Errorf("murmur3Sum32(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}
