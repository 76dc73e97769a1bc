package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// Role is a party that signs a convention.
type Role string

const (
	RoleEmployer   Role = "employer"
	RoleSchoolHead Role = "school_head"
	RolePupil      Role = "pupil"
	RoleGuardian   Role = "guardian"
)

// RequiredRoles are the signatories of every convention.
var RequiredRoles = []Role{RoleEmployer, RoleSchoolHead, RolePupil, RoleGuardian}

// Convention statuses.
const (
	ConventionDraft   = "draft"
	ConventionSigning = "signing" // at least one signature on the current document
	ConventionSignedS = "signed"
)

// Signature is one party's signature of one version of the document.
type Signature struct {
	Role         Role      `json:"role"`
	SignerName   string    `json:"signer_name"`
	DocumentHash string    `json:"document_hash"`
	SignedAt     time.Time `json:"signed_at"`
}

// Convention is the tripartite agreement drafted when a pupil confirms.
type Convention struct {
	Drafted    ConventionDrafted
	Hash       string
	Signatures map[Role]Signature // on the current document
	Signed     bool
	exists     bool
}

func (c *Convention) Exists() bool { return c.exists }

func (c *Convention) Apply(e Event) {
	switch ev := e.(type) {
	case *ConventionDrafted:
		c.Drafted, c.Hash, c.exists = *ev, ev.DocumentHash, true
		c.Signatures = map[Role]Signature{}
	case *ConventionSignatureAdded:
		c.Signatures[ev.Role] = Signature{Role: ev.Role, SignerName: ev.SignerName, DocumentHash: ev.DocumentHash, SignedAt: ev.SignedAt}
	case *ConventionSigned:
		c.Signed = true
	}
}

// Status is draft, signing or signed.
func (c *Convention) Status() string {
	switch {
	case c.Signed:
		return ConventionSignedS
	case len(c.Signatures) > 0:
		return ConventionSigning
	}
	return ConventionDraft
}

// DraftConvention drafts the convention of a confirmed application.
func DraftConvention(id string, app *Application, offer *Offer) []Event {
	d := ConventionDrafted{
		ConventionID: id, ApplicationID: app.Submitted.ApplicationID, OfferID: offer.Posted.OfferID,
		EmployerID: offer.Posted.EmployerID, PupilID: app.Submitted.PupilID, SchoolUAI: app.Submitted.SchoolUAI,
		Weeks: app.Submitted.Weeks, OfferTitle: offer.Posted.Title, RequiredRoles: RequiredRoles,
	}
	d.DocumentHash = DocumentHash(d)
	return []Event{&d}
}

// DocumentHash is the hex SHA-256 of the convention's terms: what a signer
// agrees to. Any change of terms changes it and voids earlier signatures.
func DocumentHash(d ConventionDrafted) string {
	d.DocumentHash = ""
	b, _ := json.Marshal(d) // fixed struct: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SignInput is the sign-convention command.
type SignInput struct {
	Role         string
	SignerName   string
	DocumentHash string
}

// Sign records a signature; when every required role has signed the current
// document, the convention is signed.
func (c *Convention) Sign(in SignInput, now time.Time) ([]Event, error) {
	p := Problems{}
	role := Role(in.Role)
	if !c.requires(role) {
		p.Add("role", "must be one of employer, school_head, pupil, guardian")
	}
	required(p, "signer_name", in.SignerName, 200)
	hash := strings.ToLower(in.DocumentHash)
	if !hashRe.MatchString(hash) {
		p.Add("document_hash", "must be the hex SHA-256 of the convention document")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if !c.exists {
		return nil, NotFoundf("convention")
	}
	if hash != c.Hash {
		return nil, Conflictf("the document was signed in another version: sign the current document %s", c.Hash)
	}
	if s, ok := c.Signatures[role]; ok {
		if s.SignerName == strings.TrimSpace(in.SignerName) {
			return nil, nil // the same signature again
		}
		return nil, Conflictf("the %s has already signed", role)
	}
	evs := []Event{&ConventionSignatureAdded{
		ConventionID: c.Drafted.ConventionID, Role: role, SignerName: strings.TrimSpace(in.SignerName),
		DocumentHash: hash, SignedAt: now.UTC(),
	}}
	missing := 0
	for _, r := range c.Drafted.RequiredRoles {
		if _, ok := c.Signatures[r]; !ok && r != role {
			missing++
		}
	}
	if missing == 0 {
		evs = append(evs, &ConventionSigned{ConventionID: c.Drafted.ConventionID, DocumentHash: hash})
	}
	return evs, nil
}

func (c *Convention) requires(r Role) bool {
	roles := c.Drafted.RequiredRoles
	if !c.exists {
		roles = RequiredRoles
	}
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// MissingRoles lists the required roles that have not signed yet.
func (c *Convention) MissingRoles() []Role {
	var out []Role
	for _, r := range c.Drafted.RequiredRoles {
		if _, ok := c.Signatures[r]; !ok {
			out = append(out, r)
		}
	}
	return out
}
