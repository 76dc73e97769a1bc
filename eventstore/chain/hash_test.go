package chain

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// documented is the hash's format as first written, with fmt: every hash
// already stored in a log was made this way.
func documented(stream string, revision uint64, id uuid.UUID, eventType string, data, metadata []byte) digest {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%s\n%s\n%x\n", stream, revision, id, eventType, sha256.Sum256(data))
	h.Write(metadata)
	var d digest
	h.Sum(d[:0])
	return d
}

func TestHashIsTheDocumentedFormat(t *testing.T) {
	type input struct {
		stream    string
		revision  uint64
		id        uuid.UUID
		eventType string
		data, md  []byte
	}
	cases := []input{
		{}, // all empty
		{stream: "offer-1", revision: 0, id: uuid.Max, eventType: "OfferPosted", data: []byte(`{}`), md: []byte(`{"prev_hash":""}`)},
		{stream: "pupil-é\n", revision: math.MaxUint64, id: uuid.MustParse("0123abcd-ef01-4567-89ab-cdef01234567"), eventType: "X"},
		// longer than the stack buffer, where the hash goes on in a heap one
		{stream: strings.Repeat("s", 600), revision: 10, id: uuid.New(), eventType: strings.Repeat("T", 100), md: []byte(strings.Repeat("m", 5000))},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		bytes := func(max int) []byte {
			b := make([]byte, r.IntN(max))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			return b
		}
		var id uuid.UUID
		copy(id[:], bytes(17))
		cases = append(cases, input{string(bytes(700)), r.Uint64() >> r.UintN(64), id, string(bytes(40)), bytes(300), bytes(600)})
	}
	for i, c := range cases {
		got := sum(c.stream, c.revision, c.id, c.eventType, c.data, c.md)
		if want := documented(c.stream, c.revision, c.id, c.eventType, c.data, c.md); got != want {
			t.Fatalf("case %d (%q rev %d): hash %x, the documented format gives %x", i, c.stream, c.revision, got, want)
		}
	}
}

// BenchmarkHash hashes an event of an offer's stream as commands do, and
// the same with fmt (the format's first writing) as a baseline.
//
//	go test -run XXX -bench BenchmarkHash -benchmem ./eventstore/chain
func BenchmarkHash(b *testing.B) {
	id := uuid.New()
	stream := "offer-" + id.String()
	data := []byte(strings.Repeat(`{"title":"Découverte du métier de boulanger","seats":3}`, 8))
	md := []byte(`{"prev_hash":"` + strings.Repeat("ab", 32) + `","correlation_id":"` + uuid.NewString() + `"}`)
	b.Run("built", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sum(stream, 4242, id, "OfferAmended", data, md)
		}
	})
	b.Run("fmt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			documented(stream, 4242, id, "OfferAmended", data, md)
		}
	})
}
