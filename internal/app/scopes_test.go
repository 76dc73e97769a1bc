package app_test

import (
	"strings"
	"testing"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

func authenticated(t *testing.T, cfg app.Config) (*app.App, httpclient.Client) {
	t.Helper()
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("s", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Verifier = issuer
	a, c := bootWith(t, cfg)
	c.Token = func(role, subject string) string {
		tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return a, c
}

// An operator posts and changes offers only for the employers it
// registered and those the back office linked it to.
func TestOperatorActsOnlyForItsEmployers(t *testing.T) {
	_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, SealEvery: -1, ExpiryEvery: -1})
	opX, opY, bo := c.As(auth.Operator, "partner-x"), c.As(auth.Operator, "partner-y"), c.As(auth.Backoffice, "agent")
	emp := str(opX.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	otherBody := validEmployer()
	otherBody["siret"] = "44201123456701" // one employer per SIRET
	other := str(bo.Must(201, "POST", "/v1/employers", otherBody), "id")
	offer := str(opX.Must(201, "POST", "/v1/offers", validOffer(emp)), "id")
	for _, r := range []httpclient.Reply{
		opX.Do("POST", "/v1/offers", validOffer(other)),
		opY.Do("POST", "/v1/offers", validOffer(emp)),
		opY.Do("POST", "/v1/offers/"+offer+"/withdraw", nil),
	} {
		if r.Status != 403 {
			t.Fatalf("an operator acting for an employer not its own: %d %s", r.Status, r.Raw)
		}
	}
	bo.Must(200, "POST", "/v1/operators/partner-y/employers", map[string]any{"employer_ids": []string{emp}})
	opY.Must(201, "POST", "/v1/offers", validOffer(emp))
	opY.Must(200, "POST", "/v1/offers/"+offer+"/withdraw", nil)
	if r := opY.Do("POST", "/v1/offers", validOffer(other)); r.Status != 403 {
		t.Fatalf("the link is to one employer only: %d %s", r.Status, r.Raw)
	}
	if r := opX.Do("POST", "/v1/operators/partner-x/employers", map[string]any{"employer_ids": []string{other}}); r.Status != 403 {
		t.Fatalf("an operator linking itself: %d %s", r.Status, r.Raw)
	}
}

// Offer search and an offer's page are public, rate-limited per client
// address whatever token a request carries; a search for one pupil is
// that pupil's, their guardians', their school's and the back office's.
func TestPublicOfferSearch(t *testing.T) {
	_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, SealEvery: -1, ExpiryEvery: -1,
		PublicRateLimit: 0.01, PublicRateBurst: 4})
	bo := c.As(auth.Backoffice, "agent")
	emp := str(bo.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	bo.Must(201, "POST", "/v1/schools", validSchool())
	pupil := str(bo.Must(201, "POST", "/v1/pupils", validPupil()), "id")
	posted := bo.Must(201, "POST", "/v1/offers", validOffer(emp))
	offer := str(posted, "id")

	search := c.Must(200, "GET", "/v1/offers?min_position="+str(posted, "position"), nil) // 1
	if items, _ := search["items"].([]any); len(items) != 1 {
		t.Fatalf("the public search: %v", search)
	}
	c.Must(200, "GET", "/v1/offers/"+offer, nil) // 2
	// 3: refused by the guard before the route, so not counted here (the
	// general limit applies)
	for role, want := range map[string]int{"": 401, auth.Employer: 403, auth.Pupil: 200} {
		as, subject := c, pupil
		if role == auth.Employer {
			subject = emp
		}
		if role != "" {
			as = c.As(role, subject)
		}
		if r := as.Do("GET", "/v1/offers?for_pupil="+pupil, nil); r.Status != want {
			t.Errorf("for_pupil as %q: %d, want %d: %s", role, r.Status, want, r.Raw)
		}
	}
	c.Must(200, "GET", "/v1/offers", nil) // 4: the burst is spent
	for i, as := range []httpclient.Client{c, c.As(auth.Pupil, pupil), c.As(auth.Backoffice, "another")} {
		r := as.Do("GET", "/v1/offers/"+offer, nil)
		if r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("request %d past the burst of the address: %d %s", 5+i, r.Status, r.Raw)
		}
	}
	// the routes that need a token are not limited per address
	bo.Must(200, "GET", "/v1/stats/offers", nil)
}
