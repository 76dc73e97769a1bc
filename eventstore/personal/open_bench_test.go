package personal

import (
	"testing"

	"github.com/google/uuid"

	"passerelle/domain"
)

// BenchmarkOpen opens sealed motivations, four for each pupil in turn
// (a pupil's applications, as loading their aggregate or rebuilding a
// read model opens them), keys packed as a seed writes them:
//
//	go test -run XXX -bench BenchmarkOpen ./eventstore/personal
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	p, err := NewPacker(dir)
	if err != nil {
		b.Fatal(err)
	}
	pupils := make([]string, 1000)
	for i := range pupils {
		pupils[i] = uuid.NewString()
		if err := p.Add(pupils[i], []byte(uuid.NewString()[:32])); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	keys, err := OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	c := NewCipher(keys)
	var sealed []*domain.ApplicationSubmitted
	for _, pupil := range pupils {
		for range 4 {
			e, err := c.Seal(&domain.ApplicationSubmitted{PupilID: pupil, Motivation: "J'aimerais découvrir le métier."})
			if err != nil {
				b.Fatal(err)
			}
			sealed = append(sealed, e.(*domain.ApplicationSubmitted))
		}
	}
	b.ResetTimer()
	for i := range b.N {
		e := *sealed[i%len(sealed)]
		if err := c.Open(&e); err != nil || e.Motivation == "" {
			b.Fatal(err)
		}
	}
}
