package domain_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func confirmedApplication(t *testing.T) (*domain.Application, *domain.Offer) {
	t.Helper()
	offer := newOffer(t, "off-1", collegeOfferInput())
	a := submitted(t, "app-1", offer, pupil3e(t), week25)
	apply(offer, must(t)(offer.HoldSeat(a))...)
	apply(a, must(t)(a.Accept())...)
	apply(a, must(t)(a.Confirm("conv-1"))...)
	return a, offer
}

func drafted(t *testing.T) *domain.Convention {
	t.Helper()
	a, offer := confirmedApplication(t)
	var c domain.Convention
	apply(&c, domain.DraftConvention("conv-1", a, offer)...)
	return &c
}

func TestDraftConvention(t *testing.T) {
	a, offer := confirmedApplication(t)
	evs := domain.DraftConvention("conv-1", a, offer)
	ev := only[*domain.ConventionDrafted](t, evs)
	if !hexHash.MatchString(ev.DocumentHash) {
		t.Fatalf("DocumentHash = %q, want 64 lower-case hex digits", ev.DocumentHash)
	}
	want := domain.ConventionDrafted{
		ConventionID: "conv-1", ApplicationID: "app-1", OfferID: "off-1", EmployerID: "emp-1",
		PupilID: "pupil-3e", SchoolUAI: "0941234A", Weeks: []string{week25},
		OfferTitle:    "Découverte du fournil",
		RequiredRoles: []domain.Role{domain.RoleEmployer, domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian},
		DocumentHash:  ev.DocumentHash,
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if got := domain.DocumentHash(*ev); got != ev.DocumentHash {
		t.Fatalf("DocumentHash(drafted) = %s, event says %s", got, ev.DocumentHash)
	}
	// The hash covers the terms, not itself.
	withOther := *ev
	withOther.DocumentHash = strings.Repeat("0", 64)
	if domain.DocumentHash(withOther) != ev.DocumentHash {
		t.Fatal("the hash depends on the hash field")
	}
	if again := only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-1", a, offer)); again.DocumentHash != ev.DocumentHash {
		t.Fatal("drafting the same terms twice gives two hashes")
	}

	var c domain.Convention
	if c.Exists() || c.Status() != domain.ConventionDraft {
		t.Fatalf("a new convention: exists=%v status=%q", c.Exists(), c.Status())
	}
	c.Apply(ev)
	if !c.Exists() || c.Hash != ev.DocumentHash || c.Status() != domain.ConventionDraft || c.Signed {
		t.Fatalf("after Apply: exists=%v hash=%s status=%q", c.Exists(), c.Hash, c.Status())
	}
	if got := c.MissingRoles(); !slices.Equal(got, domain.RequiredRoles) {
		t.Fatalf("MissingRoles = %v, want %v", got, domain.RequiredRoles)
	}
}

func TestDocumentHashDependsOnTerms(t *testing.T) {
	a, offer := confirmedApplication(t)
	base := *only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-1", a, offer))
	changes := map[string]func(*domain.ConventionDrafted){
		"convention":  func(d *domain.ConventionDrafted) { d.ConventionID = "conv-2" },
		"application": func(d *domain.ConventionDrafted) { d.ApplicationID = "app-2" },
		"offer":       func(d *domain.ConventionDrafted) { d.OfferID = "off-2" },
		"employer":    func(d *domain.ConventionDrafted) { d.EmployerID = "emp-2" },
		"pupil":       func(d *domain.ConventionDrafted) { d.PupilID = "pupil-2" },
		"school":      func(d *domain.ConventionDrafted) { d.SchoolUAI = "0945678B" },
		"weeks":       func(d *domain.ConventionDrafted) { d.Weeks = []string{week26} },
		"more weeks":  func(d *domain.ConventionDrafted) { d.Weeks = []string{week25, week26} },
		"title":       func(d *domain.ConventionDrafted) { d.OfferTitle += "." },
		"roles":       func(d *domain.ConventionDrafted) { d.RequiredRoles = d.RequiredRoles[:3] },
	}
	seen := map[string]string{base.DocumentHash: "base"}
	for name, change := range changes {
		d := base
		d.Weeks = slices.Clone(base.Weeks)
		d.RequiredRoles = slices.Clone(base.RequiredRoles)
		change(&d)
		h := domain.DocumentHash(d)
		if !hexHash.MatchString(h) {
			t.Errorf("%s: hash %q", name, h)
		}
		if other, ok := seen[h]; ok {
			t.Errorf("changing the %s gives the hash of %s", name, other)
		}
		seen[h] = name
	}
}

func TestConventionSignValidation(t *testing.T) {
	c := drafted(t)
	tests := []struct {
		name   string
		in     domain.SignInput
		fields []string
	}{
		{"no role", domain.SignInput{SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"unknown role", domain.SignInput{Role: "teacher", SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"capitalised role", domain.SignInput{Role: "Employer", SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"no signer", domain.SignInput{Role: "employer", SignerName: " ", DocumentHash: c.Hash}, []string{"signer_name"}},
		{"long signer", domain.SignInput{Role: "employer", SignerName: strings.Repeat("n", 201), DocumentHash: c.Hash}, []string{"signer_name"}},
		{"no hash", domain.SignInput{Role: "employer", SignerName: "Jean Dupont"}, []string{"document_hash"}},
		{"short hash", domain.SignInput{Role: "employer", SignerName: "Jean Dupont", DocumentHash: c.Hash[:63]}, []string{"document_hash"}},
		{"not hex", domain.SignInput{Role: "employer", SignerName: "Jean Dupont", DocumentHash: strings.Repeat("g", 64)}, []string{"document_hash"}},
		{"everything", domain.SignInput{}, []string{"role", "signer_name", "document_hash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := c.Sign(tt.in, now)
			if len(evs) != 0 {
				t.Fatalf("events %v", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
	}

	var missing domain.Convention
	evs, err := missing.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: c.Hash}, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = missing.Sign(domain.SignInput{Role: "teacher", SignerName: "Léa Martin", DocumentHash: c.Hash}, now)
	if len(evs) != 0 {
		t.Fatalf("events %v", types(evs))
	}
	wantFields(t, err, "role")
}

func TestConventionSign(t *testing.T) {
	c := drafted(t)
	local := now.In(time.FixedZone("CEST", 2*3600))
	evs := must(t)(c.Sign(domain.SignInput{Role: "employer", SignerName: " Paul Martin ", DocumentHash: strings.ToUpper(c.Hash)}, local))
	ev := only[*domain.ConventionSignatureAdded](t, evs)
	want := domain.ConventionSignatureAdded{ConventionID: "conv-1", Role: domain.RoleEmployer, SignerName: "Paul Martin", DocumentHash: c.Hash, SignedAt: now}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if len(c.Signatures) != 0 {
		t.Fatal("deciding changed the aggregate")
	}
	c.Apply(ev)
	if c.Status() != domain.ConventionSigning {
		t.Fatalf("status = %q, want %q", c.Status(), domain.ConventionSigning)
	}
	wantSig := domain.Signature{Role: domain.RoleEmployer, SignerName: "Paul Martin", DocumentHash: c.Hash, SignedAt: now}
	if got := c.Signatures[domain.RoleEmployer]; !reflect.DeepEqual(got, wantSig) {
		t.Fatalf("signature = %+v, want %+v", got, wantSig)
	}

	// The same signature again is no change; another signer for the same
	// role is a conflict.
	wantNothing(t)(c.Sign(domain.SignInput{Role: "employer", SignerName: "Paul Martin", DocumentHash: c.Hash}, now.Add(time.Hour)))
	evs, err := c.Sign(domain.SignInput{Role: "employer", SignerName: "Anne Martin", DocumentHash: c.Hash}, now)
	wantIs(t, evs, err, domain.ErrConflict)

	// A signature of another version of the document is a conflict that
	// names the current one.
	other := strings.Repeat("ab", 32)
	evs, err = c.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: other}, now)
	wantIs(t, evs, err, domain.ErrConflict)
	if !strings.Contains(err.Error(), c.Hash) {
		t.Errorf("error %q does not name the current hash", err)
	}
	if got := c.MissingRoles(); !slices.Equal(got, []domain.Role{domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian}) {
		t.Fatalf("MissingRoles = %v", got)
	}
}

// ConventionSigned comes with the fourth distinct role, whatever the order
// and whatever repeated signatures come in between.
func TestConventionSignedWithFourthRole(t *testing.T) {
	signers := map[domain.Role]string{
		domain.RoleEmployer: "Paul Martin", domain.RoleSchoolHead: "Claire Petit",
		domain.RolePupil: "Léa Martin", domain.RoleGuardian: "Sophie Martin",
	}
	orders := permutations(domain.RequiredRoles)
	if len(orders) != 24 {
		t.Fatalf("%d orders of 4 roles", len(orders))
	}
	for _, order := range orders {
		t.Run(strings.Join(roleNames(order), ","), func(t *testing.T) {
			c := drafted(t)
			for i, role := range order {
				in := domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash}
				evs := must(t)(c.Sign(in, now))
				if i < 3 {
					only[*domain.ConventionSignatureAdded](t, evs)
				} else {
					if got := types(evs); !slices.Equal(got, []string{"ConventionSignatureAdded", "ConventionSigned"}) {
						t.Fatalf("fourth signature: events %v", got)
					}
					if s := evs[1].(*domain.ConventionSigned); *s != (domain.ConventionSigned{ConventionID: "conv-1", DocumentHash: c.Hash}) {
						t.Fatalf("ConventionSigned = %+v", *s)
					}
				}
				apply(c, evs...)
				if got, want := len(c.MissingRoles()), 3-i; got != want {
					t.Fatalf("after %d signatures: %d missing roles, want %d", i+1, got, want)
				}
				for _, r := range c.MissingRoles() {
					if r == role {
						t.Fatalf("%s signed but is still missing", role)
					}
				}
				// Signing again with an earlier role is no change.
				first := order[0]
				wantNothing(t)(c.Sign(domain.SignInput{Role: string(first), SignerName: signers[first], DocumentHash: c.Hash}, now))
				wantStatus := domain.ConventionSigning
				if i == 3 {
					wantStatus = domain.ConventionSignedS
				}
				if c.Status() != wantStatus || c.Signed != (i == 3) {
					t.Fatalf("after %d signatures: status %q signed=%v", i+1, c.Status(), c.Signed)
				}
			}
			// Once signed, every signature again is no change.
			for _, role := range order {
				wantNothing(t)(c.Sign(domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash}, now))
			}
			if c.MissingRoles() != nil {
				t.Fatalf("MissingRoles = %v", c.MissingRoles())
			}
		})
	}
}

func permutations(roles []domain.Role) [][]domain.Role {
	if len(roles) <= 1 {
		return [][]domain.Role{slices.Clone(roles)}
	}
	var out [][]domain.Role
	for i, r := range roles {
		rest := slices.Concat(roles[:i], roles[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]domain.Role{r}, p...))
		}
	}
	return out
}

func roleNames(roles []domain.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}
