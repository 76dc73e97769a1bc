package personal

import (
	"crypto/rand"
	"flag"
	"testing"

	"github.com/google/uuid"

	"passerelle/internal/testsupport/heapcost"
)

var benchKeys = flag.Int("keys", 100_000, "pupils' keys in BenchmarkKeysHeap")

// BenchmarkKeysHeap reads -keys pupils' keys (1,400,000 for a national
// season) packed as a seed writes them, as a service does once it has
// opened every pupil's personal data, and reports what the directory
// keeps for the collector to mark at each cycle (see heapcost.Report):
//
//	go test -run XXX -bench BenchmarkKeysHeap -benchtime 1x ./eventstore/personal [-args -keys 1400000]
func BenchmarkKeysHeap(b *testing.B) {
	dir := b.TempDir()
	p, err := NewPacker(dir)
	if err != nil {
		b.Fatal(err)
	}
	pupils := make([]string, *benchKeys)
	key := make([]byte, 32)
	for i := range pupils {
		pupils[i] = uuid.NewString()
		_, _ = rand.Read(key)
		if err := p.Add(pupils[i], key); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		heapcost.Report(b, func() any {
			keys, err := OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range pupils {
				// the subject as an event brings it, a string of its own
				if _, ok, err := keys.Key(string([]byte(s)), false); !ok || err != nil {
					b.Fatalf("%s: %v, %v", s, ok, err)
				}
			}
			return keys
		})
	}
}
