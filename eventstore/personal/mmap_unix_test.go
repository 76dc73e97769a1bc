//go:build unix

package personal

import (
	"crypto/sha256"
	"testing"
)

// A cached packed key is checked in the pack's shared mapping, which
// shows another handle's destruction at once, and shows the records a
// seed appends once they are read.
func TestPackCheckedInItsMapping(t *testing.T) {
	dir := t.TempDir()
	all := subjects(600)
	packKeys(t, dir, all[:300]...)
	reader, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all[:300] {
		if _, ok, err := reader.Key(s, false); !ok || err != nil {
			t.Fatalf("%s: %v, %v", s, ok, err)
		}
	}
	packKeys(t, dir, all[300:]...) // a seed still appending
	victim := all[599]
	if _, ok, err := reader.Key(victim, false); !ok || err != nil {
		t.Fatalf("a key appended later: %v, %v", ok, err)
	}
	sum := sha256.Sum256([]byte(victim))
	p := reader.packs[sum[0]]
	c, _ := reader.cached(victim)
	at := c.at
	if p == nil || at+recordSize > int64(len(p.mem)) {
		t.Fatalf("the record at %d is not in the mapping (%d bytes)", at, len(p.mem))
	}
	other, _ := OpenDir(dir) // another process
	if err := other.Destroy(victim); err != nil {
		t.Fatal(err)
	}
	if still, err := reader.onDisk(victim, c); still || err != nil {
		t.Fatalf("the destroyed key is still on disk for the mapping: %v, %v", still, err)
	}
	if k, ok, err := reader.Key(victim, false); ok || err != nil {
		t.Fatalf("the cached handle still reads the destroyed key %x (%v)", k, err)
	}
}
