package authz

import (
	"passerelle/domain"
	"passerelle/internal/auth"
)

// Rule decides who may call a route; each route declares its own. The zero
// Rule refuses everyone, so a route nobody thought about is closed.
type Rule struct {
	open   bool   // no token needed
	public bool   // open to the public: each client address is rate-limited
	unless string // a query parameter that makes an open request need a token and allow
	allow  func(r *request) (bool, error)
}

// Open is the rule of the operations routes: anyone, without a token.
var Open = Rule{open: true}

// Public is the rule of what families browse before they have an account
// (offer search, an offer's page): anyone, without a token, each client
// address rate-limited (see IsPublic).
var Public = Rule{open: true, public: true}

// Unless makes a request carrying the query parameter param need a token,
// and lets it in when rl does: a search narrowed to one pupil is about
// that pupil.
func (p Rule) Unless(param string, rl Rule) Rule {
	p.unless, p.allow = param, rl.allow
	return p
}

// IsPublic reports whether the rule opens a route to the public, which the
// service then rate-limits per client address.
func (p Rule) IsPublic() bool { return p.public }

// Roles lets in every principal of the given roles.
func Roles(roles ...string) Rule {
	return Rule{allow: func(r *request) (bool, error) {
		for _, x := range roles {
			if r.p.Role == x {
				return true, nil
			}
		}
		return false, nil
	}}
}

// Backoffice is the back office, which may do anything but sign.
var Backoffice = Roles(auth.Backoffice)

// Users lets in the roles that use the platform (everyone but the auditor,
// who reads only history, and the statistician, who reads only
// aggregates), and the extra roles given.
func Users(extra ...string) Rule {
	return Roles(append([]string{auth.Pupil, auth.Guardian, auth.School, auth.Employer, auth.Operator, auth.Backoffice}, extra...)...)
}

// AnyOf lets in whoever one of the rules lets in.
func AnyOf(rules ...Rule) Rule {
	return Rule{allow: func(r *request) (bool, error) {
		for _, rl := range rules {
			if rl.allow == nil {
				continue
			}
			ok, err := rl.allow(r)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}}
}

// Owner finds the id a principal must hold to own the resource a request
// names; "" means nobody owns it (an unknown resource), so a missing
// resource is refused exactly like another's.
type Owner struct {
	find func(r *request) (string, error)
}

// Param is the owner named by the path parameter itself ({uai}, a pupil's
// {id}).
func Param(name string) Owner {
	return Owner{find: func(r *request) (string, error) { return r.params[name], nil }}
}

// Query is the owner named by a query parameter.
func Query(name string) Owner {
	return Owner{find: func(r *request) (string, error) { return r.query.Get(name), nil }}
}

// SchoolOf is the school of the pupil o names, read from the pupil's
// registration.
func SchoolOf(o Owner) Owner {
	return Owner{find: func(r *request) (string, error) {
		id, err := o.find(r)
		if err != nil || id == "" {
			return "", err
		}
		e, _, found, err := firstOf[*domain.PupilRegistered](r, domain.PupilStream, id)
		if err != nil || !found {
			return "", err
		}
		return e.SchoolUAI, nil
	}}
}

// Field is the owner named by a string field of the JSON body.
func Field(name string) Owner {
	return Owner{find: func(r *request) (string, error) { return r.field(name), nil }}
}

// The owners recorded in the first event of the stream of the resource
// {id}: who an application, a convention or a pupil belongs to.
var (
	ApplicationEmployer = fromLog(domain.ApplicationStream, func(e *domain.ApplicationSubmitted) string { return e.EmployerID })
	ApplicationPupil    = fromLog(domain.ApplicationStream, func(e *domain.ApplicationSubmitted) string { return e.PupilID })
	ApplicationSchool   = fromLog(domain.ApplicationStream, func(e *domain.ApplicationSubmitted) string { return e.SchoolUAI })
	ConventionEmployer  = fromLog(domain.ConventionStream, func(e *domain.ConventionDrafted) string { return e.EmployerID })
	ConventionSchool    = fromLog(domain.ConventionStream, func(e *domain.ConventionDrafted) string { return e.SchoolUAI })
	ConventionPupil     = fromLog(domain.ConventionStream, func(e *domain.ConventionDrafted) string { return e.PupilID })
	PupilSchool         = fromLog(domain.PupilStream, func(e *domain.PupilRegistered) string { return e.SchoolUAI })
)

// fromLog reads the owner from the log, the authoritative record, rather
// than from the read models, which may lag behind a command just written.
func fromLog[E domain.Event](stream func(id string) string, owner func(E) string) Owner {
	return Owner{find: func(r *request) (string, error) {
		e, _, found, err := first[E](r, stream)
		if err != nil || !found {
			return "", err
		}
		return owner(e), nil
	}}
}

func owns(role string, o Owner) Rule {
	return Rule{allow: func(r *request) (bool, error) {
		if r.p.Role != role || r.p.Subject == "" {
			return false, nil
		}
		id, err := o.find(r)
		return err == nil && id != "" && id == r.p.Subject, err
	}}
}

// Pupil lets in the pupil o names.
func Pupil(o Owner) Rule { return owns(auth.Pupil, o) }

// Guardian lets in a guardian of the pupil o names: a guardian's subject
// names the child and the guardian's rank (auth.GuardianSubject), a rank
// the pupil's registration has.
func Guardian(o Owner) Rule {
	return Rule{allow: func(r *request) (bool, error) {
		if r.p.Role != auth.Guardian {
			return false, nil
		}
		pupil, rank, ok := auth.ParseGuardian(r.p.Subject)
		if !ok {
			return false, nil
		}
		id, err := o.find(r)
		if err != nil || id == "" || id != pupil {
			return false, err
		}
		reg, _, found, err := firstOf[*domain.PupilRegistered](r, domain.PupilStream, pupil)
		return found && rank <= reg.GuardianCount, err
	}}
}

// School lets in the school o names.
func School(o Owner) Rule { return owns(auth.School, o) }

// Employer lets in the employer o names.
func Employer(o Owner) Rule { return owns(auth.Employer, o) }

// Operator lets in an operator acting for the employer o names: one the
// operator registered, or one the back office linked it to
// (POST /v1/operators/{id}/employers).
func Operator(o Owner) Rule {
	return Rule{allow: func(r *request) (bool, error) {
		if r.p.Role != auth.Operator {
			return false, nil
		}
		id, err := o.find(r)
		if err != nil || id == "" {
			return false, err
		}
		return actsFor(r, id)
	}}
}

// OfferOwner lets in the employer of the offer {id}, or an operator acting
// for that employer.
var OfferOwner = Rule{allow: func(r *request) (bool, error) {
	o, _, found, err := first[*domain.OfferPosted](r, domain.OfferStream)
	if err != nil || !found || o.OfferID == "" || r.p.Subject == "" {
		return false, err
	}
	switch r.p.Role {
	case auth.Employer:
		return o.EmployerID == r.p.Subject, nil
	case auth.Operator:
		return actsFor(r, o.EmployerID)
	}
	return false, nil
}}

// CompletingParty lets in the party completing its part of the convention
// {id}: the employer completes the employer's part, the school the school's.
var CompletingParty = Rule{allow: func(r *request) (bool, error) {
	employer, school := Employer(ConventionEmployer), School(ConventionSchool)
	switch r.field("party") {
	case "employer":
		return employer.allow(r)
	case "school":
		return school.allow(r)
	}
	// an unknown party is refused by validation for whoever may complete
	return AnyOf(employer, school).allow(r)
}}

// Signer lets in the party a signature of the convention {id} names: the
// employer for its conventions, the school (head) for its pupils, the
// pupil for themself, a guardian for their child. The back office signs
// for nobody.
var Signer = Rule{allow: func(r *request) (bool, error) {
	employer, school := Employer(ConventionEmployer), School(ConventionSchool)
	pupil, guardian := Pupil(ConventionPupil), Guardian(ConventionPupil)
	switch domain.Role(r.field("role")) {
	case domain.RoleEmployer:
		return employer.allow(r)
	case domain.RoleSchoolHead:
		return school.allow(r)
	case domain.RolePupil:
		return pupil.allow(r)
	case domain.RoleGuardian, domain.RoleSecondGuardian:
		return guardian.allow(r)
	}
	// an unknown role: any party of the convention gets the validation error
	return AnyOf(employer, school, pupil, guardian).allow(r)
}}

// The owners a group booking's record names.
var (
	BookingEmployer = fromLog(domain.BookingStream, func(e *domain.GroupBooked) string { return e.EmployerID })
	BookingSchool   = fromLog(domain.BookingStream, func(e *domain.GroupBooked) string { return e.SchoolUAI })
)

// BookingSigner lets in the party a group signature of the booking {id}
// names: its employer signs as employer, its school as school_head.
var BookingSigner = Rule{allow: func(r *request) (bool, error) {
	employer, school := Employer(BookingEmployer), School(BookingSchool)
	switch domain.Role(r.field("role")) {
	case domain.RoleEmployer:
		return employer.allow(r)
	case domain.RoleSchoolHead:
		return school.allow(r)
	}
	// another role: either party gets the validation error
	return AnyOf(employer, school).allow(r)
}}
