package reconcile

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/testsupport/heapcost"
)

// BenchmarkViewHeap folds the placement events of a season of -apps
// applications (the national one: 3,200,000), decoded from JSON as the
// reconciler reads them, and reports what the view keeps for the
// collector to mark at each cycle (see heapcost.Report):
//
//	go test -run XXX -bench BenchmarkViewHeap -benchtime 1x ./reconcile [-args -apps 3200000]
func BenchmarkViewHeap(b *testing.B) {
	log := seasonLog(rand.New(rand.NewPCG(3, 4)), *benchApps)
	for b.Loop() {
		heapcost.Report(b, func() any {
			v := NewView()
			for i, e := range log.events {
				v.Apply(eventstore.RecordedEvent{Type: log.types[e.typ], Data: log.data[e.from:e.to], Position: eventstore.Position(i + 1)})
			}
			return v
		})
	}
}

// season is a log in one buffer: a national one held as events apart
// would add tens of millions of pointers to every collection measured.
type season struct {
	data   []byte
	types  []string
	events []struct{ typ, from, to int }
}

// seasonLog is the placement events of a season of n applications in
// the proportions of a national one: 2.3 per pupil, 48 per offer, each
// for one or two of 30 weeks; a quarter confirmed with a convention, the
// rest rejected, expired or withdrawn.
func seasonLog(r *rand.Rand, n int) season {
	var log season
	typ := map[string]int{}
	add := func(e domain.Event) {
		data, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		t, ok := typ[e.EventType()]
		if !ok {
			t = len(log.types)
			typ[e.EventType()] = t
			log.types = append(log.types, e.EventType())
		}
		from := len(log.data)
		log.data = append(log.data, data...)
		log.events = append(log.events, struct{ typ, from, to int }{t, from, len(log.data)})
	}
	ids := func(k int) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = uuid.NewString()
		}
		return out
	}
	pupils, offers := ids(max(1, n*10/23)), ids(max(1, n/48))
	for _, o := range offers {
		add(&domain.OfferPosted{OfferID: o, Seats: 1 + r.IntN(4)})
	}
	for range n {
		app, offer, pupil := uuid.NewString(), offers[r.IntN(len(offers))], pupils[r.IntN(len(pupils))]
		week := 10 + r.IntN(30)
		weeks := []string{fmt.Sprintf("2026-W%02d", week)}
		if r.IntN(3) == 0 {
			weeks = append(weeks, fmt.Sprintf("2026-W%02d", week+1))
		}
		add(&domain.ApplicationSubmitted{ApplicationID: app, OfferID: offer, PupilID: pupil, Weeks: weeks})
		add(&domain.PupilApplied{PupilID: pupil, ApplicationID: app, OfferID: offer, Weeks: weeks})
		switch r.IntN(4) {
		case 0:
			conv := uuid.NewString()
			add(&domain.ApplicationAccepted{ApplicationID: app})
			add(&domain.SeatHeld{OfferID: offer, ApplicationID: app, PupilID: pupil, Weeks: weeks})
			add(&domain.PupilWeeksReserved{PupilID: pupil, ApplicationID: app, Weeks: weeks})
			add(&domain.ApplicationConfirmed{ApplicationID: app, ConventionID: conv})
			add(&domain.ConventionDrafted{ConventionID: conv, ApplicationID: app, OfferID: offer, PupilID: pupil})
		case 1:
			add(&domain.ApplicationRejected{ApplicationID: app})
		case 2:
			add(&domain.ApplicationExpired{ApplicationID: app})
		default:
			add(&domain.ApplicationWithdrawn{ApplicationID: app, PupilID: pupil})
		}
	}
	return log
}
