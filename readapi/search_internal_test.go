package readapi

import "testing"

// A search around a point reads a small index set whole when a walk would
// read more offers than it holds, and walks otherwise: a rare word, a
// common one, a set too large to read whole, and a page asking more.
func TestReadWhole(t *testing.T) {
	const open = 56_000
	for _, c := range []struct {
		smallest, open int64
		want           int
		whole          bool
	}{
		{8, open, 21, true},               // a walk finds one offer in 7,000
		{500, open, 21, true},             // 2,350 offers walked against 500 read
		{1500, open, 21, false},           // 784 walked against 1,500 read
		{1500, open, 101, true},           // a page of 100: 3,771 walked
		{smallSet + 1, open, 1000, false}, // never more than smallSet read
		{0, 0, 21, false},
	} {
		if got := readWhole(c.smallest, c.open, c.want); got != c.whole {
			t.Errorf("readWhole(%d, %d, %d) = %v, want %v", c.smallest, c.open, c.want, got, c.whole)
		}
	}
}
