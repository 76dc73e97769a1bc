package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Role is a party that signs a convention.
type Role string

// The signatories of a convention.
const (
	RoleEmployer       Role = "employer"
	RoleSchoolHead     Role = "school_head"
	RolePupil          Role = "pupil"
	RoleGuardian       Role = "guardian"
	RoleSecondGuardian Role = "second_guardian" // when the school asks both parents to sign
)

// Personal reports whether the role signs for the pupil's side: the signer's
// name is then the pupil's or a guardian's, sealed with the pupil's key.
func (r Role) Personal() bool {
	return r == RolePupil || r == RoleGuardian || r == RoleSecondGuardian
}

// ErasedName stands for the name of a signer whose personal data was
// erased.
const ErasedName = "[erased]"

// RequiredRoles are the signatories of every convention.
var RequiredRoles = []Role{RoleEmployer, RoleSchoolHead, RolePupil, RoleGuardian}

// Convention statuses.
const (
	ConvDraft     = "draft"   // waiting for the employer's and the school's parts
	ConvReady     = "ready"   // complete, no signature on this version yet
	ConvSigning   = "signing" // at least one signature on the current version
	ConvSigned    = "signed"
	ConvCancelled = "cancelled"
)

// Signature is one party's signature of one version of the document.
type Signature struct {
	Role         Role      `json:"role"`
	SignerName   string    `json:"signer_name"` // ErasedName once erased
	DocumentHash string    `json:"document_hash"`
	SignedAt     time.Time `json:"signed_at"`
	Guardian     int       `json:"guardian,omitempty"` // which guardian signed, when known
	Erased       bool      `json:"personal_data_erased,omitempty"`
}

// SignatureOf is the signature an event records; an erased name shows as
// ErasedName.
func SignatureOf(e *ConventionSignatureAdded) Signature {
	s := Signature{Role: e.Role, SignerName: e.SignerName, DocumentHash: e.DocumentHash, SignedAt: e.SignedAt, Guardian: e.Guardian, Erased: e.Erased}
	if e.Erased {
		s.SignerName = ErasedName
	}
	return s
}

// Erase replaces the name of a signer of the pupil's side.
func (s *Signature) Erase() {
	if s.Role.Personal() {
		s.SignerName, s.Erased = ErasedName, true
	}
}

// ConventionTerms are the parties and terms of the convention, as the
// official model lists them.
type ConventionTerms struct {
	Drafted         ConventionDrafted `json:"drafted"`
	Tutor           *Person           `json:"tutor,omitempty"`
	Activities      string            `json:"activities,omitempty"`
	ReferentTeacher *Person           `json:"referent_teacher,omitempty"`
	BothGuardians   bool              `json:"both_guardians"`
}

// Convention is the agreement drafted when a pupil confirms a placement.
// Its status machine is its ConventionProgress.
type Convention struct {
	ConventionProgress
	Terms      ConventionTerms
	Hash       string
	Version    string             // the rendering Hash is of ("": the terms' digest, DocumentHash)
	Signatures map[Role]Signature // on the current document
	exists     bool
}

// Exists reports whether the convention was drafted.
func (c *Convention) Exists() bool { return c.exists }

// Drafted is the convention's drafted part.
func (c *Convention) Drafted() ConventionDrafted { return c.Terms.Drafted }

// Apply folds an event of the convention's stream.
func (c *Convention) Apply(e Event) {
	c.ConventionProgress.Apply(e)
	switch ev := e.(type) {
	case *ConventionDrafted:
		c.Terms, c.Hash, c.Version, c.exists = ConventionTerms{Drafted: *ev}, ev.DocumentHash, ev.DocumentVersion, true
		c.Signatures = map[Role]Signature{}
	case *ConventionCompleted:
		if ev.Party == "employer" {
			c.Terms.Tutor, c.Terms.Activities = ev.Tutor, ev.Activities
		} else {
			c.Terms.ReferentTeacher, c.Terms.BothGuardians = ev.ReferentTeacher, ev.BothGuardians
		}
		c.Hash, c.Version, c.Signatures = ev.DocumentHash, ev.DocumentVersion, map[Role]Signature{}
	case *ConventionSignatureAdded:
		c.Signatures[ev.Role] = SignatureOf(ev)
	}
}

// ConventionProgress is how far a convention has gone: the parts filled
// in, the roles the current document requires and those that signed it,
// signed or cancelled. It is the convention's status machine, folded by
// the aggregate and by the read models alike, and small enough for a read
// model to keep one per convention.
type ConventionProgress struct {
	EmployerPart bool   `json:"employer_part,omitempty"` // the employer filled in its part
	SchoolPart   bool   `json:"school_part,omitempty"`
	Roles        []Role `json:"roles,omitempty"`     // required on the current document
	SignedBy     []Role `json:"signed_by,omitempty"` // who signed the current document
	Signed       bool   `json:"signed,omitempty"`
	Cancelled    bool   `json:"cancelled,omitempty"`
}

// Apply folds a convention event.
func (p *ConventionProgress) Apply(e Event) {
	switch ev := e.(type) {
	case *ConventionDrafted:
		*p = ConventionProgress{Roles: ev.RequiredRoles}
	case *ConventionCompleted:
		if ev.Party == "employer" {
			p.EmployerPart = ev.Tutor != nil
		} else {
			p.SchoolPart = ev.ReferentTeacher != nil
		}
		// a new version of the document: signatures given before are void
		p.Roles, p.SignedBy = ev.RequiredRoles, nil
	case *ConventionSignatureAdded:
		if !contains(p.SignedBy, ev.Role) {
			p.SignedBy = append(p.SignedBy, ev.Role)
		}
	case *ConventionSigned:
		p.Signed = true
	case *ConventionCancelled:
		p.Cancelled = true
	}
}

// Complete reports whether the employer and the school filled in their parts.
func (p *ConventionProgress) Complete() bool { return p.EmployerPart && p.SchoolPart }

// Status is draft, ready, signing, signed or cancelled.
func (p *ConventionProgress) Status() string {
	switch {
	case p.Cancelled:
		return ConvCancelled
	case p.Signed:
		return ConvSigned
	case len(p.SignedBy) > 0:
		return ConvSigning
	case p.Complete():
		return ConvReady
	}
	return ConvDraft
}

// MissingRoles lists the required roles that have not signed the current
// document yet.
func (p *ConventionProgress) MissingRoles() []Role {
	var out []Role
	for _, r := range p.Roles {
		if !contains(p.SignedBy, r) {
			out = append(out, r)
		}
	}
	return out
}

// DraftInput is what the convention is drafted from.
type DraftInput struct {
	Application *Application
	Offer       *Offer
	Employer    *Employer
	School      *School
	Pupil       *Pupil
	Document    DocumentHasher
}

// DraftConvention drafts the convention of a confirmed application.
func DraftConvention(id string, in DraftInput) []Event {
	app, offer := in.Application, in.Offer
	d := ConventionDrafted{
		ConventionID: id, ApplicationID: app.Submitted.ApplicationID, OfferID: offer.Posted.OfferID,
		EmployerID: offer.Posted.EmployerID, PupilID: app.Submitted.PupilID, SchoolUAI: app.Submitted.SchoolUAI,
		Weeks: app.Submitted.Weeks, OfferTitle: offer.Posted.Title, RequiredRoles: append([]Role(nil), RequiredRoles...),
		EmployerName: offer.Posted.EmployerName, CoHosts: offer.Posted.CoHosts, Address: offer.Posted.Address, CommuneCode: offer.Posted.CommuneCode,
		Description: offer.Posted.Description, DailyHours: offer.Posted.DailyHours,
	}
	if len(d.Weeks) > 0 {
		start, _ := ParseWeek(d.Weeks[0])
		end, _ := ParseWeek(d.Weeks[len(d.Weeks)-1])
		d.StartDate, d.EndDate = start.Format(time.DateOnly), end.AddDate(0, 0, 4).Format(time.DateOnly)
	}
	if in.Employer != nil {
		d.EmployerSIRET = in.Employer.Registered.SIRET
	}
	if in.School != nil {
		d.SchoolName = in.School.Registered.Name
	}
	if in.Pupil != nil {
		reg := in.Pupil.Registered
		d.GuardianCount, d.ClassName = reg.GuardianCount, reg.ClassName
		// the parties' names: the host learns whom it hosts from the document
		d.PupilFirstName, d.PupilLastName, d.Guardians = reg.FirstName, reg.LastName, slices.Clone(reg.Guardians)
	}
	d.DocumentVersion, d.DocumentHash = in.Document.hash(ConventionTerms{Drafted: d})
	return []Event{&d}
}

// DocumentHasher renders the document a signer reads from the terms and
// hashes it, naming the rendering (package convdoc: the PDF's SHA-256).
// The rendering cannot live here, with the standard library only.
type DocumentHasher func(ConventionTerms) (version, hash string)

// hash is h's version and hash of t; without a renderer, the terms' own
// digest, the document hash of conventions drafted before the PDF.
func (h DocumentHasher) hash(t ConventionTerms) (version, hash string) {
	if h == nil {
		return "", DocumentHash(t)
	}
	return h(t)
}

// DocumentHash is the hex SHA-256 of the convention's terms in canonical
// JSON: the terms a signer agrees to, compared to tell a change of terms
// (which voids earlier signatures), and the document hash of conventions
// drafted before the document was rendered as a PDF.
func DocumentHash(t ConventionTerms) string {
	t.Drafted.DocumentHash, t.Drafted.DocumentVersion = "", ""
	b, _ := json.Marshal(t) // fixed structs: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CompleteInput is the employer's or the school's part of the convention.
type CompleteInput struct {
	Party           string // employer or school
	Tutor           *Person
	Activities      string
	ReferentTeacher *Person
	BothGuardians   bool
	Document        DocumentHasher
}

// CompleteParty records a party's part. Changing the document after a
// signature voids the signatures given.
func (c *Convention) CompleteParty(in CompleteInput) ([]Event, error) {
	p := Problems{}
	switch in.Party {
	case "employer":
		checkPerson(p, "tutor", in.Tutor)
		required(p, "activities", in.Activities, 5000)
	case "school":
		checkPerson(p, "referent_teacher", in.ReferentTeacher)
	default:
		p.Add("party", "must be employer or school")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if !c.exists {
		return nil, NotFoundf("convention")
	}
	if err := c.changeable(); err != nil {
		return nil, err
	}
	next := c.Terms
	ev := &ConventionCompleted{ConventionID: c.Terms.Drafted.ConventionID, Party: in.Party}
	if in.Party == "employer" {
		next.Tutor, next.Activities = trimPerson(in.Tutor), strings.TrimSpace(in.Activities)
		ev.Tutor, ev.Activities = next.Tutor, next.Activities
	} else {
		next.ReferentTeacher, next.BothGuardians = trimPerson(in.ReferentTeacher), in.BothGuardians
		ev.ReferentTeacher, ev.BothGuardians = next.ReferentTeacher, next.BothGuardians
	}
	if DocumentHash(next) == DocumentHash(c.Terms) {
		return nil, nil // the same part again
	}
	ev.RequiredRoles = append([]Role(nil), RequiredRoles...)
	if next.BothGuardians && c.Terms.Drafted.GuardianCount > 1 {
		ev.RequiredRoles = append(ev.RequiredRoles, RoleSecondGuardian)
	}
	ev.DocumentVersion, ev.DocumentHash = in.Document.hash(next)
	return []Event{ev}, nil
}

func checkPerson(p Problems, field string, x *Person) {
	if x == nil {
		p.Add(field, "is required")
		return
	}
	required(p, field+".name", x.Name, 200)
	if _, err := mail.ParseAddress(x.Email); err != nil || strings.ContainsAny(x.Email, "<> ") {
		p.Add(field+".email", "must be an e-mail address")
	}
	if x.Phone != "" && !validPhone(x.Phone) {
		p.Add(field+".phone", "must be a phone number of 10 to 15 digits, optionally starting with +")
	}
}

func trimPerson(x *Person) *Person {
	return &Person{Name: strings.TrimSpace(x.Name), Email: strings.TrimSpace(x.Email), Phone: strings.TrimSpace(x.Phone)}
}

func (c *Convention) changeable() error {
	switch {
	case c.Cancelled:
		return Refuse("convention_cancelled", "the convention is cancelled")
	case c.Signed:
		return Refuse("convention_signed", "the convention is signed by every party and can no longer change")
	}
	return nil
}

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SignInput is the sign-convention command.
type SignInput struct {
	Role         string
	SignerName   string
	DocumentHash string
	// Guardian is the rank of the guardian signing, when their token
	// names them (0: unknown). One guardian cannot sign both guardians'
	// roles of a document.
	Guardian int
}

// Sign records a signature of the current document; when every required
// role has signed it, the convention is signed.
func (c *Convention) Sign(in SignInput, now time.Time) ([]Event, error) {
	role, hash := Role(in.Role), strings.ToLower(in.DocumentHash)
	if err := c.checkSignature(role, in.SignerName, hash); err != nil {
		return nil, err
	}
	if !c.exists {
		return nil, NotFoundf("convention")
	}
	if s, ok := c.Signatures[role]; ok && s.DocumentHash == hash && s.SignerName == strings.TrimSpace(in.SignerName) {
		return nil, nil // the same signature again
	}
	if err := c.changeable(); err != nil {
		return nil, err
	}
	if !c.Complete() {
		return nil, Refuse("convention_incomplete", "the employer and the school must complete the convention before anyone signs")
	}
	if hash != c.Hash {
		return nil, Refuse("outdated_document", "the signer saw another version of the document: sign the current one (%s)", c.Hash)
	}
	if _, ok := c.Signatures[role]; ok {
		return nil, Refuse("already_signed", "the %s has already signed this version", role)
	}
	if err := c.checkGuardian(role, in.Guardian); err != nil {
		return nil, err
	}
	evs := []Event{c.signature(role, in, hash, now)}
	missing := 0
	for _, r := range c.Roles {
		if _, ok := c.Signatures[r]; !ok && r != role {
			missing++
		}
	}
	if missing == 0 {
		evs = append(evs, &ConventionSigned{ConventionID: c.Terms.Drafted.ConventionID, DocumentHash: hash})
	}
	return evs, nil
}

// signature is the event of a signature: the pupil's side names the pupil
// (whose key seals the signer's name), a guardian's says which guardian.
func (c *Convention) signature(role Role, in SignInput, hash string, now time.Time) *ConventionSignatureAdded {
	sig := &ConventionSignatureAdded{
		ConventionID: c.Terms.Drafted.ConventionID, Role: role, SignerName: strings.TrimSpace(in.SignerName),
		DocumentHash: hash, SignedAt: now.UTC(),
	}
	if role.Personal() {
		sig.PupilID = c.Terms.Drafted.PupilID
	}
	if role == RoleGuardian || role == RoleSecondGuardian {
		sig.Guardian = in.Guardian
	}
	return sig
}

// checkGuardian refuses a guardian's signature when the same guardian
// already signed the other guardian's role of this document: when both
// must sign, each signs for themself.
func (c *Convention) checkGuardian(role Role, guardian int) error {
	if guardian == 0 || (role != RoleGuardian && role != RoleSecondGuardian) {
		return nil
	}
	if guardian > c.Terms.Drafted.GuardianCount {
		return Refuse("unknown_guardian", "the pupil has no guardian %d", guardian)
	}
	other := RoleSecondGuardian
	if role == RoleSecondGuardian {
		other = RoleGuardian
	}
	if s, ok := c.Signatures[other]; ok && s.Guardian == guardian {
		return Refuse("same_guardian", "guardian %d already signed as %s: the other guardian signs as %s", guardian, other, role)
	}
	return nil
}

// checkSignature names every invalid field of a signature.
func (c *Convention) checkSignature(role Role, signer, hash string) error {
	p := Problems{}
	if !c.requires(role) {
		p.Add("role", "must be one of "+strings.Join(roleNames(c.roles()), ", "))
	}
	required(p, "signer_name", signer, 200)
	if !hashRe.MatchString(hash) {
		p.Add("document_hash", "must be the hex SHA-256 of the convention document")
	}
	return p.Err()
}

// Cancel records that the placement will not take place.
func (c *Convention) Cancel(reason string) ([]Event, error) {
	p := Problems{}
	required(p, "reason", reason, 1000)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if !c.exists {
		return nil, NotFoundf("convention")
	}
	if c.Cancelled {
		return nil, nil
	}
	return []Event{&ConventionCancelled{ConventionID: c.Terms.Drafted.ConventionID, Reason: strings.TrimSpace(reason)}}, nil
}

func (c *Convention) roles() []Role {
	if !c.exists {
		return append(append([]Role(nil), RequiredRoles...), RoleSecondGuardian)
	}
	return c.Roles
}

func (c *Convention) requires(r Role) bool { return contains(c.roles(), r) }

func roleNames(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}
