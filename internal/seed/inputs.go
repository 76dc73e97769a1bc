package seed

import (
	"fmt"
	"strings"
	"time"

	"passerelle/domain"
)

// inputs writes the commands' bodies from the plan: what is not in the
// plan's tables (names, texts) derives from the seed and the index, so the
// same plan always issues the same commands.
type inputs struct{ plan *Plan }

// hash mixes the seed and an index into 64 well-spread bits (splitmix64).
func (in inputs) hash(kind, i int64) uint64 {
	z := in.plan.Options.Seed ^ uint64(kind)<<56 ^ uint64(i)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func pick[T any](xs []T, h uint64) T { return xs[h%uint64(len(xs))] }

var priorities = [...]string{"none", "rep", "rep_plus"}

func (in inputs) school(i int32) domain.RegisterSchoolInput {
	s := in.plan.w.schools[i]
	kind := "college"
	if s.lycee {
		kind = "lycee"
	}
	return domain.RegisterSchoolInput{UAI: s.uai, Name: s.name, Kind: kind, CommuneCode: in.plan.w.communes[s.commune].Code,
		EducationPriority: priorities[s.priority], QPV: s.qpv}
}

// person is a pupil's name, or a guardian's (g = 1, 2).
func (in inputs) person(pupil int32, g int64) (first, last string) {
	h := in.hash(1+g, int64(pupil))
	last = pick(lastNames, in.hash(1, int64(pupil))>>20)
	return pick(firstNames, h), last
}

func (in inputs) pupil(i int32) domain.RegisterPupilInput {
	p := in.plan.w.pupils[i]
	first, last := in.person(i, 0)
	gs := []domain.Guardian{in.guardian(i, 1)}
	if in.hash(9, int64(i))%10 < 7 {
		gs = append(gs, in.guardian(i, 2))
	}
	return domain.RegisterPupilInput{SchoolUAI: in.plan.w.schools[p.school].uai, Grade: gradeNames[p.grade],
		ClassName: fmt.Sprintf("%s%c", gradeNames[p.grade], 'A'+rune(p.class)), FirstName: first, LastName: last,
		BirthDate: time.Unix(int64(p.birth)*day, 0).UTC().Format(time.DateOnly), Guardians: gs}
}

func (in inputs) guardian(pupil int32, g int64) domain.Guardian {
	first, last := in.person(pupil, g)
	h := in.hash(4+g, int64(pupil))
	return domain.Guardian{Name: first + " " + last, Email: fmt.Sprintf("%s.%s%d@example.fr", ascii(first), ascii(last), h%100),
		Phone: fmt.Sprintf("06%08d", h%100_000_000)}
}

func (in inputs) employerName(i int32) string {
	w := in.plan.w
	e := w.employers[i]
	h := sectors[sectorCodes[e.sector-1]]
	c := w.communes[e.commune]
	switch e.kind {
	case 0:
		return h.hosts[e.host] + " " + pick(lastNames, in.hash(7, int64(i)))
	case 1:
		return h.hosts[e.host] + " de " + c.Name
	}
	return h.hosts[e.host] + " de " + c.Name + " (association)"
}

func (in inputs) address(i int32) string {
	e := in.plan.w.employers[i]
	return fmt.Sprintf("%d %s", e.number, streets[e.street])
}

func (in inputs) employer(i int32) domain.RegisterEmployerInput {
	e := in.plan.w.employers[i]
	return domain.RegisterEmployerInput{Name: in.employerName(i), SIRET: e.siret, Kind: kindNames[e.kind],
		CommuneCode: in.plan.w.communes[e.commune].Code, Address: in.address(i)}
}

func (in inputs) isoWeeks(ws []int8) []string {
	out := make([]string, len(ws))
	for i, wk := range ws {
		out[i] = domain.WeekOf(in.plan.w.season.monday(int(wk)))
	}
	return out
}

func (in inputs) weeks(pupil int32) []string {
	p := &in.plan.w.pupils[pupil]
	return in.isoWeeks(p.weeks[:p.nweeks])
}

func (in inputs) offer(i int32) domain.PostOfferInput {
	w := in.plan.w
	o := w.offers[i]
	e := w.employers[o.employer]
	h := sectors[sectorCodes[o.sector-1]]
	var grades []string
	for g := range uint8(3) {
		if o.grades&(1<<g) != 0 {
			grades = append(grades, gradeNames[g])
		}
	}
	desc := fmt.Sprintf("Au sein de notre équipe (%s), vous découvrirez : %s. Un tuteur vous accompagne toute la semaine.",
		strings.ToLower(h.hosts[e.host]), strings.Join(h.work, ", "))
	out := domain.PostOfferInput{Title: o.title, Description: desc, Sector: sectorCodes[o.sector-1], Grades: grades,
		Weeks: in.isoWeeks(o.weeks), Seats: int(o.seats), CommuneCode: w.communes[o.commune].Code, Address: in.address(o.employer),
		Lat: o.lat, Lon: o.lon, Reserved: domain.Reservation{REP: o.reserved == 1, QPV: o.reserved == 2}, FamilyBusiness: o.family}
	if in.hash(8, int64(i))%3 == 0 {
		out.DailyHours = &domain.DailyHours{Start: "09:00", End: "17:00", LunchBreakMinutes: 60}
	}
	return out
}

func (in inputs) motivation(app int32) string {
	return pick(motivations, in.hash(10, int64(app)))
}

func (in inputs) tutor(app int32) domain.Person {
	first := pick(firstNames, in.hash(11, int64(app)))
	last := pick(lastNames, in.hash(12, int64(app)))
	return domain.Person{Name: first + " " + last, Email: ascii(first) + "." + ascii(last) + "@example.com"}
}

func (in inputs) teacher(app int32) domain.Person {
	first := pick(firstNames, in.hash(13, int64(app)))
	last := pick(lastNames, in.hash(14, int64(app)))
	return domain.Person{Name: "M. ou Mme " + last + " (" + first + ")", Email: ascii(first) + "." + ascii(last) + "@ac-example.fr"}
}

func (in inputs) complete(c *Command) domain.CompleteInput {
	if c.Kind == CompleteSchool {
		t := in.teacher(c.X)
		return domain.CompleteInput{Party: "school", ReferentTeacher: &t}
	}
	t := in.tutor(c.X)
	o := in.plan.w.offers[in.plan.apps[c.X].offer]
	return domain.CompleteInput{Party: "employer", Tutor: &t, Activities: strings.Join(sectors[sectorCodes[o.sector-1]].work, ", ")}
}

func (in inputs) signer(app int32, role domain.Role) string {
	a := in.plan.apps[app]
	switch role {
	case domain.RoleEmployer:
		return in.tutor(app).Name
	case domain.RoleSchoolHead:
		return "Chef d'établissement " + pick(lastNames, in.hash(15, int64(a.pupil)))
	case domain.RolePupil:
		first, last := in.person(a.pupil, 0)
		return first + " " + last
	}
	return in.guardian(a.pupil, 1).Name
}
