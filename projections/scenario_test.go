package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
)

// A scenario is a long random life of the platform, written as the domain
// would decide it: registrations, offers posted, amended, withdrawn and
// reopened, applications through every status, seats held and released,
// conventions drafted, completed, signed and cancelled, campaign targets.
// The generator keeps its own model of every aggregate so that each event
// is one the command handlers could have appended.

type world struct {
	rng   *rand.Rand
	now   time.Time
	store eventstore.Store
	n     int // events appended
	cmd   int

	communes  []refdata.Commune
	employers []*scEmployer
	schools   []*scSchool
	pupils    []*scPupil
	offers    []*scOffer
	apps      []*scApp
	convs     []*scConv
	byStatus  map[string][]*scApp // may hold stale entries; checked on use
}

type scEmployer struct {
	id, name, kind string
	commune        refdata.Commune
}

type scSchool struct {
	uai, name, kind, priority string
	qpv                       bool
	commune                   refdata.Commune
}

type scPupil struct {
	id       string
	school   *scSchool
	grade    domain.Grade
	reserved map[string][]string // confirmed application -> weeks
	applied  map[string]*scApp   // offer -> application
}

type scOffer struct {
	id        string
	employer  *scEmployer
	grades    []domain.Grade
	weeks     []string
	seats     int
	held      map[string]int
	holders   map[string][]string
	withdrawn bool
	reserved  domain.Reservation
	title     string
	desc      string
	sector    string
	commune   refdata.Commune
}

type scApp struct {
	id     string
	offer  *scOffer
	pupil  *scPupil
	weeks  []string
	status string
	conv   *scConv
}

type scConv struct {
	id        string
	app       *scApp
	status    string
	required  []domain.Role
	signed    map[domain.Role]bool
	employer  bool
	school    bool
	version   int
	cancelled bool
}

var (
	scTitles = []string{"Découverte du métier de boulanger", "Stage en pâtisserie", "Atelier mécanique automobile",
		"Hôpital : soins infirmiers", "Électricité du bâtiment", "Journalisme et médias", "Cuisine créative",
		"Développement informatique", "Accueil et vente en magasin", "Œnologie et viticulture", "Menuiserie ébénisterie",
		"Cabinet vétérinaire", "Mairie : service état civil", "Bibliothèque municipale", "Laboratoire de chimie",
		"Agence d'architecture", "Pharmacie d'officine", "Théâtre et régie son", "Banque de détail", "Élevage équin"}
	scWords = []string{"pétrissage", "cuisson", "vente", "clients", "moteurs", "diagnostic", "accueil", "patients",
		"câblage", "sécurité", "rédaction", "reportage", "recettes", "fourneaux", "code", "réseaux", "caisse", "vitrines",
		"vendanges", "dégustation", "bois", "rabot", "animaux", "soins", "état civil", "lecture", "expériences", "maquettes",
		"ordonnances", "répétitions", "lumières", "conseil", "épargne", "chevaux", "écurie", "équipe", "tuteur", "horaires"}
	scWeeks3e  = []string{"2026-W03", "2026-W04", "2026-W05", "2026-W10", "2026-W11", "2026-W12", "2026-W20", "2026-W21"}
	scWeeks2de = [][]string{{"2026-W25", "2026-W26"}, {"2026-W26", "2026-W27"}}
	scRoles    = []domain.Role{domain.RoleEmployer, domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian}
)

func newWorld(store eventstore.Store, seed uint64) *world {
	sc := &world{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), store: store,
		now: time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC), byStatus: map[string][]*scApp{}}
	rd := refdata.MustLoad()
	codes := make([]string, 0, len(rd.Communes))
	for c := range rd.Communes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	// a few hundred communes, so that offers share places as they do
	for range 300 {
		sc.communes = append(sc.communes, rd.Communes[codes[sc.rng.IntN(len(codes))]])
	}
	return sc
}

func (sc *world) id() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(sc.rng.UintN(256))
	}
	u, _ := uuid.FromBytes(b[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u.String()
}

func (sc *world) pick(n int) int { return sc.rng.IntN(n) }

// write appends one command's events, stream by stream, in order.
func (sc *world) write(t testing.TB, parts ...any) {
	t.Helper()
	sc.cmd++
	sc.now = sc.now.Add(time.Duration(1+sc.rng.IntN(120)) * time.Second)
	md := eventstore.Metadata{CommandID: fmt.Sprintf("cmd-%d", sc.cmd), CorrelationID: fmt.Sprintf("cmd-%d", sc.cmd),
		Actor: eventstore.Actor{Role: "backoffice"}, OccurredAt: sc.now}.Encode()
	for i := 0; i < len(parts); i += 2 {
		stream := parts[i].(string)
		evs := parts[i+1].([]domain.Event)
		data := make([]eventstore.EventData, len(evs))
		for j, e := range evs {
			b, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			data[j] = eventstore.EventData{ID: eventstore.EventID(fmt.Sprintf("cmd-%d/%s", sc.cmd, stream), j), Type: e.EventType(), Data: b, Metadata: md}
		}
		if _, err := sc.store.Append(context.Background(), stream, eventstore.Any, data...); err != nil {
			t.Fatal(err)
		}
		sc.n += len(evs)
	}
}

func evs(e ...domain.Event) []domain.Event { return e }

// run appends commands until at least n events are in the log.
func (sc *world) run(t testing.TB, n int) {
	t.Helper()
	if len(sc.employers) == 0 {
		for range 40 {
			sc.registerEmployer(t)
		}
		for range 30 {
			sc.registerSchool(t)
		}
		for range 400 {
			sc.registerPupil(t)
		}
		for range 200 {
			sc.postOffer(t)
		}
	}
	steps := []struct {
		weight int
		do     func(testing.TB)
	}{
		{1, sc.registerEmployer}, {3, sc.registerPupil}, {10, sc.postOffer}, {3, sc.amendOffer}, {2, sc.withdrawOffer},
		{1, sc.reopenOffer}, {24, sc.apply}, {5, sc.read}, {12, sc.accept}, {5, sc.reject}, {4, sc.withdraw},
		{2, sc.cancel}, {3, sc.expire}, {8, sc.confirm}, {6, sc.complete}, {14, sc.sign}, {1, sc.cancelConvention},
		{1, sc.setTarget},
	}
	total := 0
	for _, s := range steps {
		total += s.weight
	}
	for sc.n < n {
		k := sc.pick(total)
		for _, s := range steps {
			if k < s.weight {
				s.do(t)
				break
			}
			k -= s.weight
		}
	}
}

func (sc *world) commune() refdata.Commune { return sc.communes[sc.pick(len(sc.communes))] }

func (sc *world) registerEmployer(t testing.TB) {
	e := &scEmployer{id: sc.id(), name: fmt.Sprintf("Entreprise %d", len(sc.employers)), kind: []string{"company", "public", "association"}[sc.pick(3)], commune: sc.commune()}
	sc.employers = append(sc.employers, e)
	sc.write(t, domain.EmployerStream(e.id), evs(&domain.EmployerRegistered{EmployerID: e.id, Name: e.name, SIRET: "73282932000074",
		Kind: e.kind, CommuneCode: e.commune.Code, Department: e.commune.Department, Address: "1 rue du Port"}))
}

func (sc *world) registerSchool(t testing.TB) {
	s := &scSchool{uai: fmt.Sprintf("%07d%c", 9400000+len(sc.schools), 'A'+rune(sc.pick(26))), kind: []string{"college", "lycee"}[sc.pick(2)],
		priority: []string{"none", "none", "rep", "rep_plus"}[sc.pick(4)], qpv: sc.pick(3) == 0, commune: sc.commune()}
	s.name = "Établissement " + s.uai
	sc.schools = append(sc.schools, s)
	sc.write(t, domain.SchoolStream(s.uai), evs(&domain.SchoolRegistered{UAI: s.uai, Name: s.name, Kind: s.kind, CommuneCode: s.commune.Code,
		Department: s.commune.Department, EducationPriority: s.priority, QPV: s.qpv}))
}

func (sc *world) registerPupil(t testing.TB) {
	s := sc.schools[sc.pick(len(sc.schools))]
	g := domain.Grade2de
	if s.kind == "college" {
		g = []domain.Grade{domain.Grade4e, domain.Grade3e}[sc.pick(2)]
	}
	p := &scPupil{id: sc.id(), school: s, grade: g, reserved: map[string][]string{}, applied: map[string]*scApp{}}
	sc.pupils = append(sc.pupils, p)
	guardians := []domain.Guardian{{Name: "Parent", Email: "parent@example.fr", Phone: "0612345678"}}
	sc.write(t, domain.PupilStream(p.id), evs(&domain.PupilRegistered{PupilID: p.id, SchoolUAI: s.uai, Department: s.commune.Department,
		Grade: g, ClassName: fmt.Sprintf("%s%c", g, 'A'+rune(sc.pick(4))), FirstName: "Élève", LastName: fmt.Sprint(len(sc.pupils)),
		BirthDate: "2011-01-15", Guardians: guardians}))
}

func (sc *world) description() string {
	n := 3 + sc.pick(12)
	words := make([]string, n)
	for i := range words {
		words[i] = scWords[sc.pick(len(scWords))]
	}
	return fmt.Sprintf("Au programme : %v.", words)
}

func (sc *world) reservation() domain.Reservation {
	switch k := sc.pick(20); {
	case k < 2:
		return domain.Reservation{REP: true}
	case k < 3:
		return domain.Reservation{QPV: true}
	case k < 4 && len(sc.schools) > 0:
		return domain.Reservation{Schools: []string{sc.schools[sc.pick(len(sc.schools))].uai}}
	}
	return domain.Reservation{}
}

func (sc *world) postOffer(t testing.TB) {
	e := sc.employers[sc.pick(len(sc.employers))]
	o := &scOffer{id: sc.id(), employer: e, seats: 1 + sc.pick(3), held: map[string]int{}, holders: map[string][]string{},
		title: scTitles[sc.pick(len(scTitles))], desc: sc.description(), sector: fmt.Sprintf("s%d", 1+sc.pick(51)),
		commune: sc.commune(), reserved: sc.reservation()}
	if sc.pick(3) == 0 {
		o.grades, o.weeks = []domain.Grade{domain.Grade2de}, scWeeks2de[sc.pick(len(scWeeks2de))]
	} else {
		o.grades = [][]domain.Grade{{domain.Grade3e}, {domain.Grade4e}, {domain.Grade4e, domain.Grade3e}}[sc.pick(3)]
		start := sc.pick(len(scWeeks3e) - 2)
		o.weeks = slices.Clone(scWeeks3e[start : start+1+sc.pick(3)])
	}
	sc.offers = append(sc.offers, o)
	sc.write(t, domain.OfferStream(o.id), evs(&domain.OfferPosted{OfferID: o.id, EmployerID: e.id, EmployerName: e.name, EmployerKind: e.kind,
		Title: o.title, Description: o.desc, Sector: o.sector, Grades: o.grades, Weeks: o.weeks, Seats: o.seats,
		CommuneCode: o.commune.Code, Department: o.commune.Department, Address: "2 avenue de la Gare",
		Lat: o.commune.Lat + (sc.rng.Float64()-0.5)/100, Lon: o.commune.Lon + (sc.rng.Float64()-0.5)/100, Reserved: o.reserved}))
}

func (sc *world) offer() *scOffer { return sc.offers[sc.pick(len(sc.offers))] }

func (sc *world) amendOffer(t testing.TB) {
	o := sc.offer()
	seats := o.seats
	for _, h := range o.held {
		seats = max(seats, h)
	}
	o.seats = max(seats, 1+sc.pick(4))
	if sc.pick(2) == 0 {
		o.title = scTitles[sc.pick(len(scTitles))]
	}
	o.desc = sc.description()
	if sc.pick(4) == 0 {
		o.reserved = sc.reservation()
	}
	if o.grades[0] != domain.Grade2de && sc.pick(3) == 0 {
		// add a week, keep the held ones
		w := scWeeks3e[sc.pick(len(scWeeks3e))]
		if !slices.Contains(o.weeks, w) {
			o.weeks = append(slices.Clone(o.weeks), w)
			slices.Sort(o.weeks)
		}
	}
	sc.write(t, domain.OfferStream(o.id), evs(&domain.OfferAmended{OfferID: o.id, Title: o.title, Description: o.desc, Weeks: o.weeks,
		Seats: o.seats, Reserved: o.reserved}))
}

func (sc *world) withdrawOffer(t testing.TB) {
	if o := sc.offer(); !o.withdrawn {
		o.withdrawn = true
		sc.write(t, domain.OfferStream(o.id), evs(&domain.OfferWithdrawn{OfferID: o.id, Reason: "pourvue"}))
	}
}

func (sc *world) reopenOffer(t testing.TB) {
	if o := sc.offer(); o.withdrawn {
		o.withdrawn = false
		sc.write(t, domain.OfferStream(o.id), evs(&domain.OfferReopened{OfferID: o.id}))
	}
}

func eligible(o *scOffer, s *scSchool) bool {
	r := o.reserved
	if !r.Any() {
		return true
	}
	return (r.REP && s.kind == "college" && (s.priority == "rep" || s.priority == "rep_plus")) ||
		(r.QPV && s.kind == "lycee" && s.qpv) || slices.Contains(r.Schools, s.uai)
}

func overlaps(a, b []string) bool {
	for _, w := range a {
		if slices.Contains(b, w) {
			return true
		}
	}
	return false
}

func (p *scPupil) busy(weeks []string) bool {
	for _, r := range p.reserved {
		if overlaps(r, weeks) {
			return true
		}
	}
	return false
}

func (sc *world) setStatus(a *scApp, status string) {
	a.status = status
	sc.byStatus[status] = append(sc.byStatus[status], a)
}

// withStatus picks an application in one of the statuses, or nil.
func (sc *world) withStatus(statuses ...string) *scApp {
	for range 16 {
		s := statuses[sc.pick(len(statuses))]
		list := sc.byStatus[s]
		if len(list) == 0 {
			continue
		}
		i := sc.pick(len(list))
		if a := list[i]; a.status == s {
			return a
		}
		// it moved on since: forget it here
		list[i] = list[len(list)-1]
		sc.byStatus[s] = list[:len(list)-1]
	}
	return nil
}

func (sc *world) apply(t testing.TB) {
	p := sc.pupils[sc.pick(len(sc.pupils))]
	for range 10 {
		o := sc.offer()
		if o.withdrawn || !slices.Contains(o.grades, p.grade) || !eligible(o, p.school) || p.applied[o.id] != nil {
			continue
		}
		weeks := o.weeks
		if p.grade != domain.Grade2de {
			weeks = []string{o.weeks[sc.pick(len(o.weeks))]}
		}
		if p.busy(weeks) {
			continue
		}
		a := &scApp{id: commands.ApplicationID(o.id, p.id), offer: o, pupil: p, weeks: weeks}
		p.applied[o.id] = a
		sc.apps = append(sc.apps, a)
		sc.setStatus(a, domain.StatusSubmitted)
		sc.write(t,
			domain.ApplicationStream(a.id), evs(&domain.ApplicationSubmitted{ApplicationID: a.id, OfferID: o.id, EmployerID: o.employer.id,
				PupilID: p.id, SchoolUAI: p.school.uai, Grade: p.grade, Weeks: weeks, Motivation: "J'aimerais découvrir ce métier.", SubmittedAt: sc.now}),
			domain.PupilStream(p.id), evs(&domain.PupilApplied{PupilID: p.id, ApplicationID: a.id, OfferID: o.id, Weeks: weeks}))
		return
	}
}

func (sc *world) read(t testing.TB) {
	if a := sc.withStatus(domain.StatusSubmitted); a != nil {
		sc.setStatus(a, domain.StatusRead)
		sc.write(t, domain.ApplicationStream(a.id), evs(&domain.ApplicationRead{ApplicationID: a.id}))
	}
}

func (sc *world) accept(t testing.TB) {
	a := sc.withStatus(domain.StatusSubmitted, domain.StatusRead)
	if a == nil || a.offer.withdrawn {
		return
	}
	o := a.offer
	for _, w := range a.weeks {
		if !slices.Contains(o.weeks, w) || o.held[w] >= o.seats {
			return
		}
	}
	for _, w := range a.weeks {
		o.held[w]++
	}
	o.holders[a.id] = a.weeks
	sc.setStatus(a, domain.StatusAccepted)
	sc.write(t,
		domain.OfferStream(o.id), evs(&domain.SeatHeld{OfferID: o.id, ApplicationID: a.id, PupilID: a.pupil.id, Weeks: a.weeks}),
		domain.ApplicationStream(a.id), evs(&domain.ApplicationAccepted{ApplicationID: a.id, AcceptedAt: sc.now}))
}

// release frees the seats an application holds: the offer's event.
func (sc *world) release(a *scApp) []any {
	o := a.offer
	weeks, ok := o.holders[a.id]
	if !ok {
		return nil
	}
	for _, w := range weeks {
		o.held[w]--
	}
	delete(o.holders, a.id)
	return []any{domain.OfferStream(o.id), evs(&domain.SeatReleased{OfferID: o.id, ApplicationID: a.id, Weeks: weeks})}
}

func (sc *world) reject(t testing.TB) {
	if a := sc.withStatus(domain.StatusSubmitted, domain.StatusRead); a != nil {
		sc.setStatus(a, domain.StatusRejected)
		sc.write(t, domain.ApplicationStream(a.id), evs(&domain.ApplicationRejected{ApplicationID: a.id, Reason: "complet"}))
	}
}

func (sc *world) withdraw(t testing.TB) {
	if a := sc.withStatus(domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted); a != nil {
		held := a.status == domain.StatusAccepted
		sc.setStatus(a, domain.StatusWithdrawn)
		parts := []any{domain.ApplicationStream(a.id), evs(&domain.ApplicationWithdrawn{ApplicationID: a.id, SeatReleased: held})}
		sc.write(t, append(parts, sc.release(a)...)...)
	}
}

func (sc *world) expire(t testing.TB) {
	if a := sc.withStatus(domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted); a != nil {
		held := a.status == domain.StatusAccepted
		sc.setStatus(a, domain.StatusExpired)
		parts := []any{domain.ApplicationStream(a.id), evs(&domain.ApplicationExpired{ApplicationID: a.id, SeatReleased: held, Rule: "answer_within"})}
		sc.write(t, append(parts, sc.release(a)...)...)
	}
}

// endPlacement cancels a confirmed application's convention and frees the
// pupil's weeks.
func (sc *world) endPlacement(a *scApp, reason string) []any {
	var parts []any
	if c := a.conv; c != nil && !c.cancelled {
		c.cancelled, c.status = true, domain.ConvCancelled
		parts = append(parts, domain.ConventionStream(c.id), evs(&domain.ConventionCancelled{ConventionID: c.id, Reason: reason}))
	}
	if _, ok := a.pupil.reserved[a.id]; ok {
		delete(a.pupil.reserved, a.id)
		parts = append(parts, domain.PupilStream(a.pupil.id), evs(&domain.PupilWeeksReleased{PupilID: a.pupil.id, ApplicationID: a.id}))
	}
	return parts
}

func (sc *world) cancel(t testing.TB) {
	if a := sc.withStatus(domain.StatusAccepted, domain.StatusConfirmed); a != nil {
		if a.conv != nil && a.conv.status == domain.ConvSigned {
			return
		}
		sc.setStatus(a, domain.StatusCancelled)
		parts := []any{domain.ApplicationStream(a.id), evs(&domain.ApplicationCancelled{ApplicationID: a.id, Reason: "fermeture"})}
		parts = append(parts, sc.release(a)...)
		sc.write(t, append(parts, sc.endPlacement(a, "fermeture")...)...)
	}
}

func (sc *world) confirm(t testing.TB) {
	a := sc.withStatus(domain.StatusAccepted)
	if a == nil || a.pupil.busy(a.weeks) {
		return
	}
	p, o := a.pupil, a.offer
	c := &scConv{id: commands.ConventionID(a.id), app: a, status: domain.ConvDraft, required: scRoles, signed: map[domain.Role]bool{}}
	a.conv = c
	sc.convs = append(sc.convs, c)
	p.reserved[a.id] = a.weeks
	sc.setStatus(a, domain.StatusConfirmed)
	parts := []any{
		domain.PupilStream(p.id), evs(&domain.PupilWeeksReserved{PupilID: p.id, ApplicationID: a.id, Weeks: a.weeks}),
		domain.ApplicationStream(a.id), evs(&domain.ApplicationConfirmed{ApplicationID: a.id, ConventionID: c.id}),
		domain.ConventionStream(c.id), evs(&domain.ConventionDrafted{ConventionID: c.id, ApplicationID: a.id, OfferID: o.id,
			EmployerID: o.employer.id, EmployerName: o.employer.name, EmployerSIRET: "73282932000074", PupilID: p.id,
			SchoolUAI: p.school.uai, SchoolName: p.school.name, GuardianCount: 1, Weeks: a.weeks, StartDate: "2026-01-12",
			EndDate: "2026-01-16", OfferTitle: o.title, Description: o.desc, Address: "2 avenue de la Gare",
			CommuneCode: o.commune.Code, RequiredRoles: c.required, DocumentHash: fmt.Sprintf("%064x", sc.cmd)}),
	}
	// the pupil's other applications on the same weeks are withdrawn
	for _, other := range p.applied {
		if other == a || !overlaps(other.weeks, a.weeks) {
			continue
		}
		switch other.status {
		case domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted:
			held := other.status == domain.StatusAccepted
			sc.setStatus(other, domain.StatusWithdrawn)
			parts = append(parts, domain.ApplicationStream(other.id), evs(&domain.ApplicationWithdrawn{ApplicationID: other.id, SeatReleased: held, Reason: "placement confirmé"}))
			parts = append(parts, sc.release(other)...)
		}
	}
	sc.write(t, parts...)
}

func (sc *world) conv(statuses ...string) *scConv {
	for range 8 {
		if len(sc.convs) == 0 {
			return nil
		}
		c := sc.convs[sc.pick(len(sc.convs))]
		if slices.Contains(statuses, c.status) {
			return c
		}
	}
	return nil
}

func (sc *world) complete(t testing.TB) {
	c := sc.conv(domain.ConvDraft, domain.ConvReady, domain.ConvSigning)
	if c == nil {
		return
	}
	c.version++
	c.signed = map[domain.Role]bool{}
	e := &domain.ConventionCompleted{ConventionID: c.id, RequiredRoles: c.required, DocumentHash: fmt.Sprintf("%064x", sc.cmd)}
	if sc.pick(2) == 0 {
		e.Party, e.Tutor, e.Activities = "employer", &domain.Person{Name: "Tutrice", Email: "tutrice@example.fr"}, "Observation"
		c.employer = true
	} else {
		e.Party, e.ReferentTeacher = "school", &domain.Person{Name: "Professeur", Email: "prof@example.fr"}
		c.school = true
	}
	c.status = domain.ConvDraft
	if c.employer && c.school {
		c.status = domain.ConvReady
	}
	sc.write(t, domain.ConventionStream(c.id), evs(e))
}

func (sc *world) sign(t testing.TB) {
	c := sc.conv(domain.ConvReady, domain.ConvSigning)
	if c == nil {
		return
	}
	var missing []domain.Role
	for _, r := range c.required {
		if !c.signed[r] {
			missing = append(missing, r)
		}
	}
	r := missing[sc.pick(len(missing))]
	c.signed[r] = true
	hash := fmt.Sprintf("%064x", c.version)
	list := evs(&domain.ConventionSignatureAdded{ConventionID: c.id, Role: r, SignerName: "Signataire " + string(r), DocumentHash: hash, SignedAt: sc.now})
	c.status = domain.ConvSigning
	if len(missing) == 1 {
		c.status = domain.ConvSigned
		list = append(list, &domain.ConventionSigned{ConventionID: c.id, DocumentHash: hash})
	}
	sc.write(t, domain.ConventionStream(c.id), list)
}

func (sc *world) cancelConvention(t testing.TB) {
	c := sc.conv(domain.ConvDraft, domain.ConvReady, domain.ConvSigning)
	if c == nil {
		return
	}
	a := c.app
	sc.setStatus(a, domain.StatusCancelled)
	parts := sc.endPlacement(a, "annulation")
	parts = append(parts, domain.ApplicationStream(a.id), evs(&domain.ApplicationCancelled{ApplicationID: a.id, Reason: "annulation"}))
	sc.write(t, append(parts, sc.release(a)...)...)
}

func (sc *world) setTarget(t testing.TB) {
	o := sc.offer()
	scope, code := []string{"all", "department", "region", "sector"}[sc.pick(4)], ""
	switch scope {
	case "all":
		code = "all"
	case "department":
		code = o.commune.Department
	case "region":
		code = o.commune.Region
	case "sector":
		code = o.sector
	}
	metric := domain.TargetMetrics[sc.pick(len(domain.TargetMetrics))]
	if strings.HasPrefix(metric, "applications") || strings.HasPrefix(metric, "conventions") {
		scope, code = "all", "all"
	}
	e := &domain.TargetSet{Scope: scope, Code: code, Metric: metric, Target: int64(sc.pick(500)), SetAt: sc.now}
	sc.write(t, domain.TargetStream(scope, code, metric), evs(e))
}
