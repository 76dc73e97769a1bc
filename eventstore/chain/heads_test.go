package chain

import (
	"encoding/binary"
	"testing"
)

// The heads forget the streams walked longest ago, half of them at a
// time: a stream walked in the generation before the last is still known.
func TestHeadsForgetTheOldestGeneration(t *testing.T) {
	key := func(i int) streamKey {
		var k streamKey
		binary.LittleEndian.PutUint64(k[:], uint64(i)+1)
		return k
	}
	var h heads
	half := maxKnownHeads / 2
	for i := range half {
		h.put(key(i), last{revision: uint64(i)})
	}
	h.put(key(0), last{revision: 7}) // a known stream: nothing is forgotten
	if got := h.get(key(0)).revision; got != 7 || len(h.cur) != half || h.prev != nil {
		t.Fatalf("after a known stream's next event: revision %d, %d and %d heads", got, len(h.cur), len(h.prev))
	}
	for i := half; i < 2*half; i++ {
		h.put(key(i), last{revision: uint64(i)})
	}
	for _, i := range []int{1, half - 1, half, 2*half - 1} {
		if got := h.get(key(i)); got.revision != uint64(i) {
			t.Fatalf("stream %d, walked in one of the last two generations: got revision %d", i, got.revision)
		}
	}
	h.put(key(1), last{revision: 9}) // from the older generation into the newer
	h.put(key(2*half), last{revision: 1})
	if got := h.get(key(2)); got != (last{}) {
		t.Fatalf("a stream walked two generations ago is still known: %+v", got)
	}
	if got := h.get(key(1)).revision; got != 9 {
		t.Fatalf("a stream walked again in the newer generation: revision %d, want 9", got)
	}
}
