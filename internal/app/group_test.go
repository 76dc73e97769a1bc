package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/eventstore"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

const uaiB = "0751234B" // a second school

// desk is an employer, two schools and an offer, with the back office's
// client and a way to register pupils.
type desk struct {
	t        *testing.T
	a        *app.App
	bo       httpclient.Client
	employer string
	offer    string // individual: two seats in weekAhead(10)
}

func newDesk(t *testing.T, rd redistest.Redis) desk {
	t.Helper()
	a, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: rd.URL, SealEvery: -1, ExpiryEvery: -1})
	d := desk{t: t, a: a, bo: c.As(auth.Backoffice, "agent-7")}
	d.employer = str(d.bo.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	d.bo.Must(201, "POST", "/v1/schools", validSchool())
	d.bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": uaiB, "name": "Collège B", "kind": "college",
		"commune_code": "94028", "education_priority": "none", "qpv": false})
	d.offer = d.postOffer(map[string]any{"seats": 2})
	return d
}

func (d desk) postOffer(terms map[string]any) string {
	d.t.Helper()
	o := validOffer(d.employer)
	o["weeks"] = []any{weekAhead(10), weekAhead(11)}
	for k, v := range terms {
		o[k] = v
	}
	return str(d.bo.Must(201, "POST", "/v1/offers", o), "id")
}

func (d desk) pupil(school string) string {
	d.t.Helper()
	p := validPupil()
	p["school_uai"] = school
	return str(d.bo.Must(201, "POST", "/v1/pupils", p), "id")
}

func (d desk) get(c httpclient.Client, path, pos string) map[string]any {
	d.t.Helper()
	return c.Must(200, "GET", path+"?min_position="+pos, nil)
}

// A proposal goes through the ordinary answers, shows who proposed it to
// each reader and in the audit trail, and counts on the school's
// dashboard; a school proposes only its own pupils.
func TestProposals(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) {
		d := newDesk(t, rd)
		p1, p2, p3, other := d.pupil(uai), d.pupil(uai), d.pupil(uai), d.pupil(uaiB)
		school, schoolB := d.bo.As(auth.School, uai), d.bo.As(auth.School, uaiB)
		employer := d.bo.As(auth.Employer, d.employer)
		week := []any{weekAhead(10)}
		propose := func(c httpclient.Client, want int, pupil string) map[string]any {
			t.Helper()
			return c.Must(want, "POST", "/v1/offers/"+d.offer+"/proposals", map[string]any{"pupil_id": pupil, "weeks": week})
		}

		// who may propose whom
		propose(school, 403, other)
		propose(schoolB, 403, p1)
		propose(d.bo.As(auth.Pupil, p1), 403, p1)
		propose(employer, 403, p1)
		a1 := str(propose(school, 201, p1), "id")
		again := propose(school, 201, p1) // the same proposal again changes nothing
		if str(again, "id") != a1 {
			t.Fatalf("the same proposal again answered %v", again)
		}
		a2 := str(propose(d.bo, 201, p2), "id")
		res := propose(school, 201, p3)
		a3 := str(res, "id")
		d.bo.As(auth.Pupil, p1).Must(409, "POST", "/v1/offers/"+d.offer+"/applications", map[string]any{
			"pupil_id": p1, "weeks": week, "motivation": "moi aussi"}) // one application per offer

		doc := d.get(d.bo, "/v1/applications/"+a1, str(res, "position"))
		if pb, _ := doc["proposed_by"].(map[string]any); pb["id"] != uai || pb["role"] != auth.School || doc["status"] != "submitted" {
			t.Fatalf("a school's proposal reads %v", doc)
		}
		if pb, _ := d.get(d.bo, "/v1/applications/"+a2, str(res, "position"))["proposed_by"].(map[string]any); pb["id"] != "agent-7" || pb["role"] != auth.Backoffice {
			t.Fatalf("the back office's proposal: proposed_by %v", pb)
		}
		// the employer's inbox: proposed, by a school it is not told of yet
		inbox := d.get(employer, "/v1/employers/"+d.employer+"/applications", str(res, "position"))
		for _, it := range inbox["items"].([]any) {
			pb, _ := it.(map[string]any)["proposed_by"].(map[string]any)
			if pb == nil || pb["id"] == uai {
				t.Errorf("inbox item %v: proposed_by %v", it.(map[string]any)["id"], pb)
			}
		}
		dash := d.get(school, "/v1/schools/"+uai+"/dashboard", str(res, "position"))
		if num(dash, "proposals") != 3 || num(dash, "proposals_pending") != 3 {
			t.Fatalf("dashboard after three proposals: %v", dash)
		}

		// p1: accepted, confirmed; p2: accepted, declined by the pupil; p3: rejected
		employer.Must(200, "POST", "/v1/applications/"+a1+"/accept", nil)
		conf := d.bo.As(auth.Pupil, p1).Must(200, "POST", "/v1/applications/"+a1+"/confirm", nil)
		if str(conf, "convention_id") == "" {
			t.Fatalf("confirm: %v", conf)
		}
		employer.Must(200, "POST", "/v1/applications/"+a2+"/accept", nil)
		d.bo.As(auth.Pupil, p2).Must(200, "POST", "/v1/applications/"+a2+"/withdraw", map[string]any{"reason": "pas pour moi"})
		last := employer.Must(200, "POST", "/v1/applications/"+a3+"/reject", map[string]any{"reason": "complet"})
		pos := str(last, "position")
		for id, want := range map[string]string{a1: "confirmed", a2: "withdrawn", a3: "rejected"} {
			if got := d.get(d.bo, "/v1/applications/"+id, pos); got["status"] != want || got["proposed_by"] == nil {
				t.Errorf("application %s: %v, want %s and proposed_by", id, got, want)
			}
		}
		// the pupil's own list, and the employer once it accepted
		mine := d.get(d.bo.As(auth.Pupil, p1), "/v1/pupils/"+p1+"/applications", pos)
		if it := mine["items"].([]any)[0].(map[string]any); it["proposed_by"].(map[string]any)["id"] != uai {
			t.Errorf("the pupil's list: %v", it)
		}
		if pb := d.get(employer, "/v1/applications/"+a1, pos)["proposed_by"].(map[string]any); pb["id"] != uai {
			t.Errorf("the employer, having accepted, reads proposed_by %v", pb)
		}
		dash = d.get(school, "/v1/schools/"+uai+"/dashboard", pos)
		if num(dash, "proposals") != 3 || num(dash, "proposals_pending") != 0 {
			t.Errorf("dashboard after the answers: %v", dash)
		}
		// the audit trail: the submission names its proposer, made by the school
		trail := d.bo.As(auth.Auditor, "audit-1").Must(200, "GET", "/v1/audit/applications/"+a1, nil)
		first := trail["events"].([]any)[0].(map[string]any)
		data, _ := first["data"].(map[string]any)
		pb, _ := data["proposed_by"].(map[string]any)
		actor, _ := first["actor"].(map[string]any)
		if first["type"] != "ApplicationSubmitted" || pb["id"] != uai || actor["role"] != auth.School {
			t.Errorf("audit trail's first event: %v", first)
		}
	})
}

// The Go entry point of proposals (allocation rounds): idempotent under
// its command.
func TestProposeFromGo(t *testing.T) {
	d := newDesk(t, redistest.Mini(t))
	p := d.pupil(uai)
	m := commandsMeta("round-publish-1")
	id, pos, err := d.a.Service.Propose(context.Background(), m, d.offer, p, []string{weekAhead(10)}, "round:r1")
	if err != nil || id == "" || pos == "" {
		t.Fatalf("propose: %q %q %v", id, pos, err)
	}
	id2, _, err := d.a.Service.Propose(context.Background(), m, d.offer, p, []string{weekAhead(10)}, "round:r1")
	if err != nil || id2 != id {
		t.Fatalf("the same proposal again: %q %v", id2, err)
	}
	doc := d.get(d.bo, "/v1/applications/"+id, pos)
	if pb := doc["proposed_by"].(map[string]any); pb["id"] != "round:r1" || pb["role"] != auth.Backoffice {
		t.Fatalf("proposed_by %v", pb)
	}
}

// countEvents is how many events of type typ the log holds.
func countEvents(t *testing.T, a *app.App, typ string) int {
	t.Helper()
	evs, err := a.Store.ReadAll(context.Background(), eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, re := range evs {
		if re.Type == typ {
			n++
		}
	}
	return n
}

// A collective offer shows what it is, takes group bookings all or
// nothing, and its employer and school head each sign every convention
// of a booking in one command.
func TestGroupBooking(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) {
		d := newDesk(t, rd)
		// a programme hosted in turn by two employers
		atelier := str(d.bo.Must(201, "POST", "/v1/employers", with(validEmployer(), "siret", "35212345678908", "name", "Atelier du Val")), "id")
		group := d.postOffer(map[string]any{"seats": 3, "collective": true, "min_group_size": 2, "group_size": 3, "co_hosts": []string{atelier}})
		school := d.bo.As(auth.School, uai)
		week := weekAhead(10)
		pupils := []string{d.pupil(uai), d.pupil(uai), d.pupil(uai), d.pupil(uai)}
		book := func(c httpclient.Client, want int, ids ...string) httpclient.Reply {
			t.Helper()
			r := c.Do("POST", "/v1/offers/"+group+"/group-bookings", map[string]any{"school_uai": uai, "pupil_ids": ids, "weeks": []string{week}})
			if r.Status != want {
				t.Fatalf("booking %v: %d %s, want %d", ids, r.Status, r.Raw, want)
			}
			return r
		}
		head := logHead(t, d.bo)
		offer := d.get(d.bo, "/v1/offers/"+group, head)
		if offer["collective"] != true || num(offer, "min_group_size") != 2 || num(offer, "group_size") != 3 {
			t.Fatalf("the collective offer reads %v", offer)
		}
		if co, _ := offer["co_hosts"].([]any); len(co) != 1 || co[0].(map[string]any)["name"] != "Atelier du Val" {
			t.Fatalf("the programme's co-hosts read %v", offer["co_hosts"])
		}
		found := d.get(d.bo, "/v1/offers", head)
		for _, it := range found["items"].([]any) {
			o := it.(map[string]any)
			if want := o["id"] == group; o["collective"] != want {
				t.Errorf("search: offer %v collective %v", o["id"], o["collective"])
			}
		}

		// refused whole, nothing held
		r := book(school, 409, pupils...)
		checkErrorEnvelope(t, r.Raw, "conflict", "")
		book(school, 409, pupils[0]) // fewer than min_group_size
		book(school, 422, pupils[0], d.pupil(uaiB))
		book(d.bo.As(auth.School, uaiB), 403, pupils[0], pupils[1])
		if h := logHead(t, d.bo); h != head && countEvents(t, d.a, "SeatsBooked") != 0 {
			t.Fatalf("refused bookings moved the log from %s to %s", head, h)
		}
		if countEvents(t, d.a, "SeatsBooked")+countEvents(t, d.a, "ApplicationSubmitted") != 0 {
			t.Fatal("a refused booking wrote seats or applications")
		}

		ok := book(school, 201, pupils[0], pupils[1]).Body
		apps := ok["application_ids"].([]any)
		if len(apps) != 2 || str(ok, "id") == "" {
			t.Fatalf("booking answered %v", ok)
		}
		pos := str(ok, "position")
		if free := num(d.get(d.bo, "/v1/offers/"+group, pos), "seats_by_week", week, "available"); free != 1 {
			t.Fatalf("after booking two of three seats: %v available", free)
		}
		book(school, 409, pupils[2], pupils[3]) // one seat left
		d.bo.As(auth.Pupil, pupils[2]).Must(409, "POST", "/v1/offers/"+group+"/applications", map[string]any{
			"pupil_id": pupils[2], "weeks": []string{week}, "motivation": "seul"})
		var convs []string
		for _, id := range apps {
			doc := d.get(d.bo, "/v1/applications/"+id.(string), pos)
			if doc["status"] != "confirmed" || doc["booking_id"] != str(ok, "id") || str(doc, "convention_id") == "" {
				t.Fatalf("booked application %v", doc)
			}
			convs = append(convs, str(doc, "convention_id"))
		}
		// each pupil's convention names the programme's other employer
		doc := d.bo.Must(200, "GET", "/v1/conventions/"+convs[0]+"/document", nil)
		if co, _ := doc["co_hosts"].([]any); len(co) != 1 || co[0].(map[string]any)["employer_id"] != atelier {
			t.Fatalf("the convention's co-hosts read %v", doc["co_hosts"])
		}
		if page := d.bo.Do("GET", "/v1/conventions/"+convs[0]+"/document", nil, "Accept", "text/html"); !strings.Contains(page.Raw, "Programme partagé avec</dt><dd>Atelier du Val") {
			t.Fatalf("the convention page does not name the co-host: %.600s", page.Raw)
		}
		signGroup(t, d, str(ok, "id"), convs)
	})
}

// signGroup: the employer and the school head each sign every
// convention of the booking in one command, on its current document.
func signGroup(t *testing.T, d desk, booking string, convs []string) {
	t.Helper()
	path := "/v1/group-bookings/" + booking + "/signatures"
	employer, school := d.bo.As(auth.Employer, d.employer), d.bo.As(auth.School, uai)
	employer.Must(409, "POST", path, map[string]any{"role": "employer", "signer_name": "Paul Martin"}) // not completed yet
	d.bo.Must(403, "POST", path, map[string]any{"role": "employer", "signer_name": "Paul Martin"})
	d.bo.As(auth.School, uaiB).Must(403, "POST", path, map[string]any{"role": "school_head", "signer_name": "X"})
	for _, c := range convs {
		employer.Must(200, "POST", "/v1/conventions/"+c+"/complete", employerPart())
		school.Must(200, "POST", "/v1/conventions/"+c+"/complete", schoolPart())
	}
	before := countEvents(t, d.a, "ConventionSignatureAdded")
	signed := employer.Must(201, "POST", path, map[string]any{"role": "employer", "signer_name": "Paul Martin"})
	if got := signed["convention_ids"].([]any); len(got) != len(convs) {
		t.Fatalf("signed %v, want %v", got, convs)
	}
	employer.Must(201, "POST", path, map[string]any{"role": "employer", "signer_name": "Paul Martin"}) // again: nothing more
	pos := str(school.Must(201, "POST", path, map[string]any{"role": "school_head", "signer_name": "Mme Proviseure"}), "position")
	if n := countEvents(t, d.a, "ConventionSignatureAdded") - before; n != 2*len(convs) {
		t.Errorf("%d signatures written for %d conventions and two roles", n, len(convs))
	}
	for _, c := range convs {
		doc := d.get(d.bo, "/v1/conventions/"+c, pos)
		sigs := doc["signatures"].([]any)
		if len(sigs) != 2 || doc["status"] != "signing" {
			t.Fatalf("convention %s: %v", c, doc)
		}
		for _, s := range sigs {
			if s.(map[string]any)["document_hash"] != doc["document_hash"] {
				t.Errorf("convention %s: a signature of another document: %v", c, s)
			}
		}
	}
}

// Two bookings racing for the last seats of a collective offer: exactly
// one is booked whole, the other is refused whole and holds nothing.
func TestRacingGroupBookings(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) {
		d := newDesk(t, rd)
		school := d.bo.As(auth.School, uai)
		const rounds = 12
		for round := range rounds {
			// three seats: two pupils each, room for one booking only
			group := d.postOffer(map[string]any{"seats": 3, "collective": true, "min_group_size": 2})
			groups := [2][]string{{d.pupil(uai), d.pupil(uai)}, {d.pupil(uai), d.pupil(uai)}}
			replies := make([]httpclient.Reply, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range groups {
				wg.Go(func() {
					<-start
					replies[i] = school.Do("POST", "/v1/offers/"+group+"/group-bookings", map[string]any{
						"school_uai": uai, "pupil_ids": groups[i], "weeks": []string{weekAhead(10)}})
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, r := range replies {
				switch r.Status {
				case 201:
					if won >= 0 {
						t.Fatalf("round %d: both bookings won", round)
					}
					won = i
				case 409:
					checkErrorEnvelope(t, r.Raw, "conflict", "")
					if !strings.Contains(r.Raw, "no_seat_left") {
						t.Errorf("round %d: the losing booking: %s", round, r.Raw)
					}
				default:
					t.Fatalf("round %d: booking %d answered %d %s", round, i, r.Status, r.Raw)
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no booking won: %s / %s", round, replies[0].Raw, replies[1].Raw)
			}
			pos := logHead(t, d.bo)
			if free := num(d.get(d.bo, "/v1/offers/"+group, pos), "seats_by_week", weekAhead(10), "available"); free != 1 {
				t.Fatalf("round %d: %v seats available, want 1", round, free)
			}
			for i, g := range groups {
				for _, p := range g {
					list := d.get(d.bo, "/v1/pupils/"+p+"/applications", pos)
					want := map[bool]float64{true: 1, false: 0}[i == won]
					if num(list, "total") != want {
						t.Fatalf("round %d: pupil of booking %d (won: %v) has %v applications", round, i, i == won, list["total"])
					}
				}
			}
		}
		if n := countEvents(t, d.a, "SeatsBooked"); n != rounds {
			t.Fatalf("%d bookings decided in %d rounds", n, rounds)
		}
		if n := countEvents(t, d.a, "ApplicationSubmitted"); n != 2*rounds {
			t.Fatalf("%d applications for %d winning bookings of two", n, rounds)
		}
	})
}

// commandsMeta is the back office's command id as an allocation round
// would pass it.
func commandsMeta(id string) commands.Meta {
	return commands.Meta{CommandID: id, Actor: eventstore.Actor{Role: auth.Backoffice, Subject: "agent-7"}, Now: time.Now().UTC()}
}
