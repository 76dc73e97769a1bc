package eventgen

import (
	"fmt"
	"slices"
	"strings"

	"passerelle/domain"
)

var (
	titles = []string{"Découverte du métier de boulanger", "Stage en pâtisserie", "Atelier mécanique automobile",
		"Hôpital : soins infirmiers", "Électricité du bâtiment", "Journalisme et médias", "Cuisine créative",
		"Développement informatique", "Accueil et vente en magasin", "Œnologie et viticulture", "Menuiserie ébénisterie",
		"Cabinet vétérinaire", "Mairie : service état civil", "Bibliothèque municipale", "Laboratoire de chimie",
		"Agence d'architecture", "Pharmacie d'officine", "Théâtre et régie son", "Banque de détail", "Élevage équin"}
	words = []string{"pétrissage", "cuisson", "vente", "clients", "moteurs", "diagnostic", "accueil", "patients",
		"câblage", "sécurité", "rédaction", "reportage", "recettes", "fourneaux", "code", "réseaux", "caisse", "vitrines",
		"vendanges", "dégustation", "bois", "rabot", "animaux", "soins", "état civil", "lecture", "expériences", "maquettes",
		"ordonnances", "répétitions", "lumières", "conseil", "épargne", "chevaux", "écurie", "équipe", "tuteur", "horaires"}
	weeksCollege = []string{"2026-W03", "2026-W04", "2026-W05", "2026-W10", "2026-W11", "2026-W12", "2026-W20", "2026-W21"}
	weeksLycee   = [][]string{{"2026-W25", "2026-W26"}, {"2026-W26", "2026-W27"}}
	guardian     = domain.Guardian{Name: "Parent", Email: "parent@example.fr", Phone: "0612345678"}
)

func (w *World) registerEmployer() {
	id, c := w.id(), w.commune()
	cmd := w.begin()
	evs, err := domain.RegisterEmployer(id, domain.RegisterEmployerInput{Name: fmt.Sprintf("Entreprise %d", len(w.employers)),
		SIRET: "73282932000074", Kind: []string{"company", "public", "association"}[w.pick(3)], CommuneCode: c.Code, Address: "1 rue du Port"}, w.places)
	if err != nil {
		return
	}
	e := &domain.Employer{}
	cmd.emit(domain.EmployerStream(id), e, evs)
	w.employers, w.byID[id] = append(w.employers, e), e
	cmd.end()
}

func (w *World) registerSchool() {
	uai := fmt.Sprintf("%07d%c", 9400000+len(w.schools), 'A'+rune(w.pick(26)))
	s := &domain.School{}
	cmd := w.begin()
	evs, err := s.Register(domain.RegisterSchoolInput{UAI: uai, Name: "Établissement " + uai, Kind: []string{"college", "lycee"}[w.pick(2)],
		CommuneCode: w.commune().Code, EducationPriority: []string{"none", "none", "rep", "rep_plus"}[w.pick(4)], QPV: w.pick(3) == 0}, w.places)
	if err != nil {
		return
	}
	cmd.emit(domain.SchoolStream(uai), s, evs)
	w.schools, w.byID[uai] = append(w.schools, s), s
	cmd.end()
}

func (w *World) registerPupil() {
	if len(w.schools) == 0 {
		return
	}
	s := w.schools[w.pick(len(w.schools))]
	g := domain.Grade2de
	if s.Registered.Kind == "college" {
		g = []domain.Grade{domain.Grade4e, domain.Grade3e}[w.pick(2)]
	}
	id := w.id()
	cmd := w.begin(domain.SchoolStream(s.Registered.UAI))
	evs, err := domain.RegisterPupil(id, domain.RegisterPupilInput{SchoolUAI: s.Registered.UAI, Grade: string(g),
		ClassName: fmt.Sprintf("%s%c", g, 'A'+rune(w.pick(4))), FirstName: "Élève", LastName: fmt.Sprint(len(w.pupils)),
		BirthDate: "2011-01-15", Guardians: []domain.Guardian{guardian}}, s, w.now)
	if err != nil {
		return
	}
	p := &domain.Pupil{}
	cmd.emit(domain.PupilStream(id), p, evs)
	w.pupils, w.byID[id] = append(w.pupils, p), p
	cmd.end()
}

func (w *World) description() string {
	ws := make([]string, 3+w.pick(12))
	for i := range ws {
		ws[i] = words[w.pick(len(words))]
	}
	return "Au programme : " + strings.Join(ws, ", ") + "."
}

func (w *World) reservation() domain.Reservation {
	switch k := w.pick(20); {
	case k < 2:
		return domain.Reservation{REP: true}
	case k < 3:
		return domain.Reservation{QPV: true}
	case k < 4 && len(w.schools) > 0:
		return domain.Reservation{Schools: []string{w.schools[w.pick(len(w.schools))].Registered.UAI}}
	}
	return domain.Reservation{}
}

func (w *World) postOffer() {
	if len(w.employers) == 0 {
		return
	}
	e, c := w.employers[w.pick(len(w.employers))], w.commune()
	in := domain.PostOfferInput{Title: w.titles[w.pick(len(w.titles))], Description: w.description(), Sector: fmt.Sprintf("s%d", 1+w.pick(51)),
		Seats: 1 + w.pick(3), CommuneCode: c.Code, Address: "2 avenue de la Gare", Reserved: w.reservation(),
		Lat: c.Lat + (w.rng.Float64()-0.5)/100, Lon: c.Lon + (w.rng.Float64()-0.5)/100}
	if w.pick(3) == 0 {
		in.Grades, in.Weeks = []string{"2de"}, weeksLycee[w.pick(len(weeksLycee))]
	} else {
		in.Grades = [][]string{{"3e"}, {"4e"}, {"4e", "3e"}}[w.pick(3)]
		start := w.pick(len(weeksCollege) - 2)
		in.Weeks = slices.Clone(weeksCollege[start : start+1+w.pick(3)])
	}
	id := w.id()
	cmd := w.begin(domain.EmployerStream(e.Registered.EmployerID))
	evs, err := domain.PostOffer(id, e, in, w.places, w.now)
	if err != nil {
		return
	}
	o := &domain.Offer{}
	cmd.emit(domain.OfferStream(id), o, evs)
	w.offers, w.byID[id] = append(w.offers, o), o
	cmd.end()
}

func (w *World) offer() *domain.Offer {
	if len(w.offers) == 0 {
		return nil
	}
	return w.offers[w.pick(len(w.offers))]
}

// updateOffer decides a change of a random offer, withdrawn or not as
// asked.
func (w *World) updateOffer(withdrawn bool, decide func(o *domain.Offer) ([]domain.Event, error)) {
	o := w.offer()
	for i := 0; o != nil && o.Withdrawn != withdrawn && i < 8; i++ {
		o = w.offer()
	}
	if o == nil || o.Withdrawn != withdrawn {
		return
	}
	cmd := w.begin()
	evs, err := decide(o)
	if err != nil {
		return
	}
	cmd.emit(domain.OfferStream(o.Posted.OfferID), o, evs)
	cmd.end()
}

func (w *World) amendOffer() {
	w.updateOffer(w.pick(8) == 0, func(o *domain.Offer) ([]domain.Event, error) {
		title, desc, seats := w.titles[w.pick(len(w.titles))], w.description(), 1+w.pick(4)
		in := domain.AmendOfferInput{Title: &title, Description: &desc, Seats: &seats}
		if w.pick(4) == 0 {
			r := w.reservation()
			in.Reserved = &r
		}
		if o.Posted.Grades[0] != domain.Grade2de && w.pick(3) == 0 {
			in.Weeks = append(slices.Clone(o.Posted.Weeks), weeksCollege[w.pick(len(weeksCollege))])
			slices.Sort(in.Weeks)
			in.Weeks = slices.Compact(in.Weeks)
		}
		return o.Amend(in, w.now) // refused when it would drop an accepted pupil
	})
}

func (w *World) withdrawOffer() {
	w.updateOffer(false, func(o *domain.Offer) ([]domain.Event, error) { return o.Withdraw("pourvue") })
}

func (w *World) reopenOffer() { w.updateOffer(true, (*domain.Offer).Reopen) }

func (w *World) apply() {
	if len(w.pupils) == 0 {
		return
	}
	p := w.pupils[w.pick(len(w.pupils))]
	school := get[domain.School](w, p.Registered.SchoolUAI)
	cmd := w.begin(domain.SchoolStream(p.Registered.SchoolUAI))
	for range 10 {
		o := w.offer()
		if o == nil || !o.Open() || !slices.Contains(o.Posted.Grades, p.Registered.Grade) {
			continue
		}
		weeks := o.Posted.Weeks
		if p.Registered.Grade != domain.Grade2de {
			weeks = []string{weeks[w.pick(len(weeks))]}
		}
		id := applicationID(o.Posted.OfferID, p.Registered.PupilID)
		a := w.apps[id]
		if a == nil {
			a = &domain.Application{}
		}
		evs, err := a.Submit(id, o, p, school, domain.SubmitInput{Weeks: weeks, Motivation: "J'aimerais découvrir ce métier."}, w.now)
		if err != nil || len(evs) == 0 {
			continue
		}
		cmd.c.Reads = append(cmd.c.Reads, domain.OfferStream(o.Posted.OfferID))
		cmd.emit(domain.ApplicationStream(id), a, evs)
		cmd.emit(domain.PupilStream(p.Registered.PupilID), p, p.RecordApplication(a))
		w.apps[id] = a
		w.live = append(w.live, a)
		cmd.end()
		return
	}
}

// application picks a live application in one of the statuses, or nil;
// applications found ended are forgotten.
func (w *World) application(statuses ...string) *domain.Application {
	for range 16 {
		if len(w.live) == 0 {
			return nil
		}
		i := w.pick(len(w.live))
		a := w.live[i]
		if !a.Pending() && a.Status != domain.StatusConfirmed {
			w.live[i] = w.live[len(w.live)-1]
			w.live = w.live[:len(w.live)-1]
			continue
		}
		if slices.Contains(statuses, a.Status) {
			return a
		}
	}
	return nil
}

// updateApplication decides a change of an application in one of the
// statuses; an ending change releases what the application held.
func (w *World) updateApplication(statuses []string, decide func(a *domain.Application) ([]domain.Event, error)) {
	a := w.application(statuses...)
	if a == nil {
		return
	}
	cmd := w.begin()
	evs, err := decide(a)
	if err != nil || len(evs) == 0 {
		return
	}
	cmd.emit(domain.ApplicationStream(a.Submitted.ApplicationID), a, evs)
	if !a.Pending() && a.Status != domain.StatusConfirmed {
		w.release(cmd, a, "fin de la candidature")
	}
	cmd.end()
}

// release frees what an ended application held: its seat, the pupil's
// weeks and its convention, as the command handlers do.
func (w *World) release(cmd *command, a *domain.Application, why string) {
	id := a.Submitted.ApplicationID
	o, p := get[domain.Offer](w, a.Submitted.OfferID), get[domain.Pupil](w, a.Submitted.PupilID)
	cmd.c.Reads = append(cmd.c.Reads, domain.OfferStream(o.Posted.OfferID), domain.PupilStream(p.Registered.PupilID))
	cmd.emit(domain.OfferStream(o.Posted.OfferID), o, o.ReleaseSeat(id))
	cmd.emit(domain.PupilStream(p.Registered.PupilID), p, p.ReleaseWeeks(id))
	if c := w.convs[a.ConventionID]; c != nil {
		evs, _ := c.Cancel(why) // a reason is given: cannot fail
		cmd.emit(domain.ConventionStream(a.ConventionID), c, evs)
	}
}

func (w *World) read() {
	w.updateApplication([]string{domain.StatusSubmitted}, (*domain.Application).MarkRead)
}

func (w *World) reject() {
	w.updateApplication([]string{domain.StatusSubmitted, domain.StatusRead}, func(a *domain.Application) ([]domain.Event, error) {
		return a.Reject("complet")
	})
}

func (w *World) withdraw() {
	w.updateApplication([]string{domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted}, func(a *domain.Application) ([]domain.Event, error) {
		return a.Withdraw("autre projet", w.now)
	})
}

func (w *World) cancel() {
	w.updateApplication([]string{domain.StatusAccepted, domain.StatusConfirmed}, func(a *domain.Application) ([]domain.Event, error) {
		return a.Cancel("fermeture")
	})
}

// expire lets an application's deadline pass.
func (w *World) expire() {
	w.updateApplication([]string{domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted}, func(a *domain.Application) ([]domain.Event, error) {
		d, _ := a.Deadline()
		return a.Expire(d), nil
	})
}

func (w *World) accept() {
	a := w.application(domain.StatusSubmitted, domain.StatusRead)
	if a == nil || a.CanAccept() != nil {
		return
	}
	o := get[domain.Offer](w, a.Submitted.OfferID)
	cmd := w.begin()
	held, err := o.HoldSeat(a)
	if err != nil {
		return
	}
	cmd.emit(domain.OfferStream(o.Posted.OfferID), o, held)
	evs, _ := a.Accept(w.now) // CanAccept said yes
	cmd.emit(domain.ApplicationStream(a.Submitted.ApplicationID), a, evs)
	cmd.end()
}

// confirm reserves the pupil's weeks, confirms, drafts the convention and
// withdraws the pupil's other applications for those weeks.
func (w *World) confirm() {
	a := w.application(domain.StatusAccepted)
	if a == nil {
		return
	}
	appID, p, o := a.Submitted.ApplicationID, get[domain.Pupil](w, a.Submitted.PupilID), get[domain.Offer](w, a.Submitted.OfferID)
	cmd := w.begin(domain.OfferStream(o.Posted.OfferID), domain.EmployerStream(o.Posted.EmployerID), domain.SchoolStream(p.Registered.SchoolUAI))
	reserved, err := p.ReserveWeeks(a)
	if err != nil {
		return
	}
	cmd.emit(domain.PupilStream(p.Registered.PupilID), p, reserved)
	convID := conventionID(appID)
	evs, _ := a.Confirm(convID) // accepted: confirmable
	cmd.emit(domain.ApplicationStream(appID), a, evs)
	c := &domain.Convention{}
	cmd.emit(domain.ConventionStream(convID), c, domain.DraftConvention(convID, domain.DraftInput{Application: a, Offer: o,
		Employer: get[domain.Employer](w, o.Posted.EmployerID), School: get[domain.School](w, p.Registered.SchoolUAI), Pupil: p}))
	w.convs[convID] = c
	w.open = append(w.open, c)
	for _, other := range p.OverlappingApplications(appID, a.Submitted.Weeks) {
		b := w.apps[other]
		if !b.Pending() {
			continue
		}
		evs, err := b.Withdraw("the pupil confirmed another placement for these weeks", w.now)
		if err == nil {
			cmd.emit(domain.ApplicationStream(other), b, evs)
			w.release(cmd, b, "the pupil confirmed another placement")
		}
	}
	cmd.end()
}

// convention picks an open convention, or nil; conventions found signed or
// cancelled are forgotten.
func (w *World) convention() *domain.Convention {
	for range 8 {
		if len(w.open) == 0 {
			return nil
		}
		i := w.pick(len(w.open))
		if c := w.open[i]; !c.Signed && !c.Cancelled {
			return c
		}
		w.open[i] = w.open[len(w.open)-1]
		w.open = w.open[:len(w.open)-1]
	}
	return nil
}

func (w *World) complete() {
	c := w.convention()
	if c == nil {
		return
	}
	employer := w.pick(2) == 0
	switch {
	case c.Terms.Tutor == nil || c.Terms.ReferentTeacher == nil:
		employer = c.Terms.Tutor == nil
	case w.pick(4) != 0:
		return // both parts are in; now and then one changes
	}
	in := domain.CompleteInput{Party: "school", ReferentTeacher: &domain.Person{Name: "Professeur", Email: "prof@example.fr"}, BothGuardians: w.pick(4) == 0}
	if employer {
		in = domain.CompleteInput{Party: "employer", Tutor: &domain.Person{Name: fmt.Sprintf("Tutrice %d", w.pick(3)), Email: "tutrice@example.fr"}, Activities: "Observation"}
	}
	cmd := w.begin()
	evs, err := c.CompleteParty(in)
	if err != nil {
		return
	}
	cmd.emit(domain.ConventionStream(c.Drafted().ConventionID), c, evs)
	cmd.end()
}

func (w *World) sign() {
	c := w.convention()
	if c == nil || !c.Complete() {
		return
	}
	missing := c.MissingRoles()
	if len(missing) == 0 {
		return
	}
	r := missing[w.pick(len(missing))]
	cmd := w.begin()
	evs, err := c.Sign(domain.SignInput{Role: string(r), SignerName: "Signataire " + string(r), DocumentHash: c.Hash}, w.now)
	if err != nil {
		return
	}
	cmd.emit(domain.ConventionStream(c.Drafted().ConventionID), c, evs)
	cmd.end()
}

// cancelConvention cancels the placement behind a convention: the
// convention, then the application and what it held.
func (w *World) cancelConvention() {
	c := w.convention()
	if c == nil {
		return
	}
	cmd := w.begin()
	evs, err := c.Cancel("annulation")
	if err != nil {
		return
	}
	cmd.emit(domain.ConventionStream(c.Drafted().ConventionID), c, evs)
	if a := w.apps[c.Drafted().ApplicationID]; a != nil {
		if evs, err := a.Cancel("annulation"); err == nil && len(evs) > 0 {
			cmd.emit(domain.ApplicationStream(a.Submitted.ApplicationID), a, evs)
			w.release(cmd, a, "annulation")
		}
	}
	cmd.end()
}

func (w *World) setTarget() {
	o := w.offer()
	if o == nil {
		return
	}
	in := domain.TargetInput{Scope: domain.TargetScopes[w.pick(len(domain.TargetScopes))], Metric: domain.TargetMetrics[w.pick(len(domain.TargetMetrics))],
		Target: int64(w.pick(500))}
	switch in.Scope {
	case "department":
		in.Code = o.Posted.Department
	case "region":
		d, _ := w.places.Department(o.Posted.Department)
		in.Code = d.Region
	case "sector":
		in.Code = o.Posted.Sector
	}
	if in.Check(w.places) != nil {
		return // applications and conventions are counted for the scope all only
	}
	stream := domain.TargetStream(in.Scope, in.Code, in.Metric)
	t := w.targets[stream]
	if t == nil {
		t = &domain.Target{}
		w.targets[stream] = t
	}
	cmd := w.begin()
	cmd.emit(stream, t, t.Set(in, w.now))
	cmd.end()
}

func (w *World) forgetPupil() {
	if len(w.pupils) == 0 {
		return
	}
	p := w.pupils[w.pick(len(w.pupils))]
	cmd := w.begin()
	evs, err := p.Forget()
	if err != nil {
		return
	}
	cmd.emit(domain.PupilStream(p.Registered.PupilID), p, evs)
	cmd.end()
}
