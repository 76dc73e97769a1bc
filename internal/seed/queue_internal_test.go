package seed

import (
	"math/rand/v2"
	"testing"
)

// TestQueuePopsInOrder pushes entries with many equal times over several
// days, some before the day being played, popping some as it goes, and
// checks each pop against the least entry still queued: by time, then by
// the order it was queued.
func TestQueuePopsInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	var queued []entry // what q should hold, in no order
	var seq uint64
	pop := func() {
		got := q.pop()
		least := 0
		for i, e := range queued {
			if e.at < queued[least].at || e.at == queued[least].at && e.seq < queued[least].seq {
				least = i
			}
		}
		if want := queued[least]; got != want {
			t.Fatalf("popped %+v, want %+v", got, want)
		}
		queued[least] = queued[len(queued)-1]
		queued = queued[:len(queued)-1]
	}
	for range 20_000 { // days of more entries than a block holds
		if q.len() > 0 && rng.IntN(3) == 0 {
			pop()
			continue
		}
		seq++
		e := entry{at: int64(rng.IntN(300)-100) * 1_000, seq: seq, x: int32(seq)}
		q.push(e)
		queued = append(queued, e)
	}
	for q.len() > 0 {
		pop()
	}
	if len(queued) != 0 {
		t.Fatalf("%d entries left unpopped", len(queued))
	}
}
