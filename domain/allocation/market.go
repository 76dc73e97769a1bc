// Package allocation matches pupils to offers' seats for an allocation
// round: pupil-proposing deferred acceptance (Gale–Shapley), and the
// first-come rule it is compared with. It is pure: the market is built by
// the caller from the read side and the result is recorded in an event.
package allocation

// Market is what a round allocates: the free seats and each pupil's ranked
// choices among them.
//
// A slot is one placement's worth of an offer: one week of a 4e or 3e offer,
// or the two-week seconde period of a seconde offer. Slots of one offer never
// share a week, so each slot's seats are independent of the others.
type Market struct {
	Slots  []Slot
	Pupils []Pupil
	// Seed draws the lottery that breaks ties between pupils of equal
	// priority; it is recorded with the round so the result can be redrawn.
	Seed int64
}

// Slot is an offer's free seats for one set of weeks.
type Slot struct {
	OfferID string
	Weeks   []string
	Seats   int
}

// Pupil is one pupil without a placement and what they would take, best
// first. A pupil is matched to at most one slot.
type Pupil struct {
	ID string
	// Group is the pupil's school's education priority for the figures:
	// "rep_plus", "rep", "qpv" (a school in a priority neighbourhood outside
	// éducation prioritaire) or "none".
	Group string
	// Priority orders pupils at every offer after reserved eligibility:
	// higher first (2 rep_plus, 1 rep or qpv, 0 none).
	Priority int
	Choices  []Choice
}

// Choice is one slot a pupil may take, with what the offer's priority order
// needs to know about the pair.
type Choice struct {
	Slot int // index in Market.Slots
	// Reserved: the offer is reserved (REP, QPV or named schools) and the
	// pupil is eligible through that reservation; such pupils come first.
	Reserved   bool
	DistanceKM float64 // from the pupil's school to the offer
}
