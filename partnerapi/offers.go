package partnerapi

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/internal/api"
)

// The bodies of the partner API v2, as the national API names them.
type (
	loginBody struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	coordinates struct {
		Latitude  float64 `json:"latitude" required:"true"`
		Longitude float64 `json:"longitude" required:"true"`
	}
	// offerFields are an offer's fields; in a push, those the national
	// API requires are checked by validate.
	offerFields struct {
		Title               *string             `json:"title,omitempty"`
		Description         *string             `json:"description,omitempty"`
		EmployerName        *string             `json:"employer_name,omitempty"`
		EmployerDescription *string             `json:"employer_description,omitempty"`
		EmployerWebsite     *string             `json:"employer_website,omitempty"`
		Street              *string             `json:"street,omitempty"`
		Zipcode             *string             `json:"zipcode,omitempty"`
		City                *string             `json:"city,omitempty"`
		Coordinates         *coordinates        `json:"coordinates,omitempty"`
		SectorUUID          *string             `json:"sector_uuid,omitempty"`
		Weeks               []string            `json:"weeks,omitempty"`
		Grades              []string            `json:"grades,omitempty"`
		RemoteID            *string             `json:"remote_id,omitempty"`
		Permalink           *string             `json:"permalink,omitempty"`
		MaxCandidates       *int                `json:"max_candidates,omitempty"`
		IsPublic            *bool               `json:"is_public,omitempty"`
		Rep                 *bool               `json:"rep,omitempty"`
		Qpv                 *bool               `json:"qpv,omitempty"`
		HandicapAccessible  *bool               `json:"handicap_accessible,omitempty"`
		LunchBreak          *string             `json:"lunch_break,omitempty"`
		DailyHours          map[string][]string `json:"daily_hours,omitempty"`
		SIRET               *string             `json:"siret,omitempty"`
		PublishedAt         *string             `json:"published_at,omitempty"`
	}
	pushBody struct {
		InternshipOffer *offerFields `json:"internship_offer,omitempty"`
	}
)

var (
	loginBodyType = reflect.TypeFor[loginBody]()
	pushBodyType  = reflect.TypeFor[pushBody]()
	patchBodyType = pushBodyType
)

// grades are the partner API's grades, by ours.
var grades = map[string]domain.Grade{"quatrieme": domain.Grade4e, "troisieme": domain.Grade3e, "seconde": domain.Grade2de}

// v2Grade is the partner API's name of a grade.
func v2Grade(g domain.Grade) string {
	for k, v := range grades {
		if v == g {
			return k
		}
	}
	return string(g)
}

var (
	zipRe  = regexp.MustCompile(`^[0-9]{5}$`)
	hourRe = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):[0-5][0-9]$`)
	days   = []string{"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"}
)

// problems collects the partner API's validation errors, field by field.
type problems map[string]string

func (p problems) add(field, msg string) {
	if _, ok := p[field]; !ok {
		p[field] = msg
	}
}

// text checks a text field: required when asked, at most max characters.
func (p problems) text(field string, v *string, required bool, max int) {
	switch {
	case v == nil || strings.TrimSpace(*v) == "":
		if required {
			p.add(field, "can't be blank")
		}
	case utf8.RuneCountInString(*v) > max:
		p.add(field, fmt.Sprintf("is too long (maximum is %d characters)", max))
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &api.Error{Status: http.StatusBadRequest, Code: "VALIDATION_ERROR", Message: "the offer is invalid", Fields: p}
}

// checkFields checks the fields given, each against the national API's
// rules; in a push (create), the required ones must be there.
func (a *API) checkFields(in *offerFields, create bool) problems {
	p := problems{}
	p.text("title", in.Title, create, 150)
	p.text("description", in.Description, create, 1500)
	p.text("employer_name", in.EmployerName, create, 150)
	p.text("employer_description", in.EmployerDescription, create, 275)
	p.text("employer_website", in.EmployerWebsite, false, 560)
	p.text("street", in.Street, false, 500)
	p.text("city", in.City, create, 200)
	p.text("remote_id", in.RemoteID, create, 60)
	p.text("permalink", in.Permalink, create, 200)
	p.text("lunch_break", in.LunchBreak, false, 500)
	p.url("employer_website", in.EmployerWebsite)
	p.url("permalink", in.Permalink)
	if in.Zipcode != nil || create {
		a.checkZipcode(p, deref(in.Zipcode), in.City)
	}
	if in.SectorUUID != nil || create {
		if _, ok := a.places.Sector(deref(in.SectorUUID)); !ok {
			p.add("sector_uuid", "is not a sector of the national list (s1…s51)")
		}
	}
	checkTerms(p, in)
	return p
}

// url checks a URL field when given.
func (p problems) url(field string, v *string) {
	if v != nil && *v != "" && !isURL(*v) {
		p.add(field, "is not a valid URL")
	}
}

// checkZipcode checks a postal code against the reference data.
func (a *API) checkZipcode(p problems, zip string, city *string) {
	switch {
	case zip == "":
		p.add("zipcode", "can't be blank")
	case !zipRe.MatchString(zip):
		p.add("zipcode", "must be 5 digits")
	case city != nil && !a.knownPlace(zip, *city):
		p.add("zipcode", "is not a French postal code")
	}
}

// checkTerms checks the numbers, lists and dates of an offer.
func checkTerms(p problems, in *offerFields) {
	if in.MaxCandidates != nil && (*in.MaxCandidates < 1 || *in.MaxCandidates > 6000) {
		p.add("max_candidates", "must be between 1 and 6000")
	}
	for _, g := range in.Grades {
		if _, ok := grades[g]; !ok {
			p.add("grades", fmt.Sprintf("%q is not one of quatrieme, troisieme, seconde", g))
		}
	}
	for _, w := range in.Weeks {
		if _, err := domain.ParseWeek(w); err != nil {
			p.add("weeks", fmt.Sprintf("%q: %s", w, err))
		}
	}
	checkDailyHours(p, in.DailyHours)
	if v := deref(in.PublishedAt); v != "" && !isDate(v) {
		p.add("published_at", "must be a date (2026-03-01 or 2026-03-01T08:00:00Z) or null")
	}
}

func checkDailyHours(p problems, hours map[string][]string) {
	for day, h := range hours {
		switch {
		case !slices.Contains(days, day):
			p.add("daily_hours", fmt.Sprintf("%q is not a day (lundi … dimanche)", day))
		case len(h) != 2 || !hourRe.MatchString(h[0]) || !hourRe.MatchString(h[1]):
			p.add("daily_hours", fmt.Sprintf("%s: must be [\"9:00\", \"17:00\"]", day))
		}
	}
}

func (a *API) knownPlace(zip, city string) bool {
	_, ok := a.places.CommuneOfPostalCode(zip, city)
	return ok
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// wrongParams are the combinations the national API refuses with
// WRONG_PARAMS: seconde with another grade, a seconde offer outside the
// national seconde period.
func wrongParams(gs, weeks []string) string {
	if !slices.Contains(gs, "seconde") {
		return ""
	}
	if len(slices.DeleteFunc(slices.Clone(gs), func(g string) bool { return g == "seconde" })) > 0 {
		return "an offer for seconde cannot also be for quatrieme or troisieme"
	}
	if !domain.CoversSecondePeriod(weeks) {
		return fmt.Sprintf("an offer for seconde covers both weeks of the national seconde period: %s", strings.Join(domain.SecondePeriod, ", "))
	}
	return ""
}

// decode reads the body {"internship_offer": {…}}: 422 BAD_PAYLOAD
// without internship_offer.
func decode(w http.ResponseWriter, r *http.Request) (*offerFields, map[string]any, bool) {
	body, err := api.ReadBody(w, r)
	if err == nil {
		var in pushBody
		if err = api.Unmarshal(body, &in, false); err == nil && in.InternshipOffer == nil {
			writeError(w, r, http.StatusUnprocessableEntity, "BAD_PAYLOAD", "internship_offer is missing")
			return nil, nil, false
		}
		if err == nil {
			var raw struct {
				InternshipOffer map[string]any `json:"internship_offer"`
			}
			_ = api.Unmarshal(body, &raw, false) // decoded above: it is JSON
			return in.InternshipOffer, raw.InternshipOffer, true
		}
	}
	api.WriteError(w, r, err)
	return nil, nil, false
}

// push creates an offer from an operator's push.
func (a *API) push(w http.ResponseWriter, r *http.Request, operatorID string) {
	in, _, ok := decode(w, r)
	if !ok {
		return
	}
	if len(in.Grades) == 0 || len(in.Weeks) == 0 {
		writeError(w, r, http.StatusUnprocessableEntity, "BAD_PAYLOAD", "grades and weeks are required")
		return
	}
	if err := a.checkFields(in, true).err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if msg := wrongParams(in.Grades, in.Weeks); msg != "" {
		writeError(w, r, http.StatusUnprocessableEntity, "WRONG_PARAMS", msg)
		return
	}
	cmd, warnings, err := a.pushCommand(operatorID, in)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	m := a.meta(r, operatorID)
	if _, err := a.svc.PushOffer(r.Context(), m, cmd); err != nil {
		commandError(w, r, err)
		return
	}
	a.answer(w, r, operatorID, *in.RemoteID, http.StatusCreated, warnings, m.Now.Format("2006-01-02T15:04:05Z"))
}

// pushCommand translates a push into the post-offer command: the commune
// of the postal code, its centre when the coordinates are missing or too
// far from it (said in the warnings), the seats per week from
// max_candidates.
func (a *API) pushCommand(operatorID string, in *offerFields) (commands.PushOfferInput, []string, error) {
	c, _ := a.places.CommuneOfPostalCode(*in.Zipcode, *in.City)
	lat, lon, centre := c.Lat, c.Lon, true
	var warnings []string
	switch {
	case in.Coordinates == nil:
		warnings = append(warnings, fmt.Sprintf("coordinates: missing, the centre of %s (%s) was taken", c.Name, c.Code))
	case domain.DistanceKM(in.Coordinates.Latitude, in.Coordinates.Longitude, c.Lat, c.Lon) > domain.MaxKMFromCommune:
		warnings = append(warnings, fmt.Sprintf("coordinates: more than %d km from %s (%s), its centre was taken", domain.MaxKMFromCommune, c.Name, c.Code))
	default:
		lat, lon, centre = in.Coordinates.Latitude, in.Coordinates.Longitude, false
	}
	maxCandidates := 1
	if in.MaxCandidates != nil {
		maxCandidates = *in.MaxCandidates
	}
	seats := (maxCandidates + len(in.Weeks) - 1) / len(in.Weeks)
	if seats > 500 {
		return commands.PushOfferInput{}, nil, problems{"max_candidates": fmt.Sprintf("at most 500 candidates a week here: %d weeks take at most %d", len(in.Weeks), 500*len(in.Weeks))}.err()
	}
	address := strings.TrimSpace(deref(in.Street))
	if address == "" {
		address = c.Name
	}
	gs := make([]string, len(in.Grades))
	for i, g := range in.Grades {
		gs[i] = string(grades[g])
	}
	partner := &domain.PartnerOffer{OperatorID: operatorID, RemoteID: *in.RemoteID, Permalink: *in.Permalink,
		EmployerDescription: deref(in.EmployerDescription), EmployerWebsite: deref(in.EmployerWebsite), Street: deref(in.Street),
		Zipcode: *in.Zipcode, City: *in.City, MaxCandidates: maxCandidates, IsPublic: deref(in.IsPublic),
		HandicapAccessible: deref(in.HandicapAccessible), LunchBreak: deref(in.LunchBreak), DailyHours: in.DailyHours, CommuneCentre: centre}
	return commands.PushOfferInput{
		OperatorID: operatorID,
		Employer:   commands.PartnerEmployer{Name: *in.EmployerName, SIRET: deref(in.SIRET), Zipcode: *in.Zipcode, CommuneCode: c.Code, Address: address},
		Offer: domain.PostOfferInput{Title: *in.Title, Description: *in.Description, Sector: *in.SectorUUID, Grades: gs, Weeks: in.Weeks,
			Seats: seats, CommuneCode: c.Code, Address: address, Lat: lat, Lon: lon,
			Reserved: domain.Reservation{REP: deref(in.Rep), QPV: deref(in.Qpv)}, Partner: partner},
	}, warnings, nil
}

// answer writes the operator's offer as the log holds it.
func (a *API) answer(w http.ResponseWriter, r *http.Request, operatorID, remoteID string, status int, warnings []string, publishedAt string) {
	o, err := a.svc.PartnerOffer(r.Context(), operatorID, remoteID)
	if err != nil {
		commandError(w, r, err)
		return
	}
	out := fromOffer(o.Posted, o.Withdrawn, publishedAt)
	if len(warnings) > 0 {
		out["warnings"] = warnings
	}
	api.WriteJSON(w, status, out)
}

// patch applies a partial update: the fields given change, published_at
// null unpublishes the offer and a date publishes it again.
func (a *API) patch(w http.ResponseWriter, r *http.Request, operatorID string) {
	remoteID := chi.URLParam(r, "remote_id")
	in, raw, ok := decode(w, r)
	if !ok {
		return
	}
	if err := a.checkFields(in, false).err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	o, err := a.svc.PartnerOffer(r.Context(), operatorID, remoteID)
	if err != nil {
		commandError(w, r, err)
		return
	}
	upd, err := a.update(o, in, raw)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := a.svc.UpdatePartnerOffer(r.Context(), a.meta(r, operatorID), operatorID, remoteID, upd); err != nil {
		commandError(w, r, err)
		return
	}
	published := ""
	if upd.Publish != nil && *upd.Publish {
		published = deref(in.PublishedAt)
	}
	a.answer(w, r, operatorID, remoteID, http.StatusOK, nil, published)
}

// fixed are the fields an update cannot change here: they decide where
// and for whom the offer is listed, and our offers keep them.
var fixed = []string{"employer_name", "zipcode", "city", "street", "coordinates", "sector_uuid", "grades", "remote_id", "siret"}

// update translates a partial update into the commands that own each part.
func (a *API) update(o *domain.Offer, in *offerFields, raw map[string]any) (commands.UpdatePartnerInput, error) {
	var upd commands.UpdatePartnerInput
	p := problems{}
	for _, f := range fixed {
		if _, ok := raw[f]; ok {
			p.add(f, "cannot be changed once pushed: delete the offer and push it under a new remote_id")
		}
	}
	if err := p.err(); err != nil {
		return upd, err
	}
	if in.Weeks != nil && slices.Contains(o.Posted.Grades, domain.Grade2de) && !domain.CoversSecondePeriod(in.Weeks) {
		return upd, &api.Error{Status: http.StatusUnprocessableEntity, Code: "WRONG_PARAMS",
			Message: "an offer for seconde covers both weeks of the national seconde period: " + strings.Join(domain.SecondePeriod, ", ")}
	}
	cur := *o.Posted.Partner
	next := changedPartner(cur, in)
	if in.MaxCandidates != nil {
		next.MaxCandidates = *in.MaxCandidates
	}
	if !reflect.DeepEqual(next, cur) {
		upd.Partner = &next
	}
	upd.Amend = amendment(o.Posted, in, next.MaxCandidates)
	if v, ok := raw["published_at"]; ok {
		publish := v != nil
		upd.Publish = &publish
	}
	return upd, nil
}

// changedPartner is cur with the partner details the update gives.
func changedPartner(cur domain.PartnerOffer, in *offerFields) domain.PartnerOffer {
	next := cur
	next.Permalink, next.EmployerDescription = valueOr(in.Permalink, cur.Permalink), valueOr(in.EmployerDescription, cur.EmployerDescription)
	next.EmployerWebsite, next.LunchBreak = valueOr(in.EmployerWebsite, cur.EmployerWebsite), valueOr(in.LunchBreak, cur.LunchBreak)
	next.IsPublic, next.HandicapAccessible = valueOr(in.IsPublic, cur.IsPublic), valueOr(in.HandicapAccessible, cur.HandicapAccessible)
	if in.DailyHours != nil {
		next.DailyHours = in.DailyHours
	}
	return next
}

// amendment is the offer's amendment an update makes, nil for none: the
// title, description and weeks, the seats a week from max_candidates, the
// reservation from rep and qpv.
func amendment(cur domain.OfferPosted, in *offerFields, maxCandidates int) *domain.AmendOfferInput {
	amend := domain.AmendOfferInput{Title: in.Title, Description: in.Description, Weeks: in.Weeks}
	if in.MaxCandidates != nil || in.Weeks != nil {
		weeks := max(len(cur.Weeks), 1)
		if in.Weeks != nil {
			weeks = max(len(in.Weeks), 1)
		}
		seats := (maxCandidates + weeks - 1) / weeks
		amend.Seats = &seats
	}
	if in.Rep != nil || in.Qpv != nil {
		res := cur.Reserved
		res.REP, res.QPV = valueOr(in.Rep, res.REP), valueOr(in.Qpv, res.QPV)
		amend.Reserved = &res
	}
	if in.Title == nil && in.Description == nil && in.Weeks == nil && amend.Seats == nil && amend.Reserved == nil {
		return nil
	}
	return &amend
}

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// delete deletes the operator's offer; again is 409 API_ALREADY_DESTROYED.
func (a *API) delete(w http.ResponseWriter, r *http.Request, operatorID string) {
	remoteID := chi.URLParam(r, "remote_id")
	if _, err := a.svc.DeletePartnerOffer(r.Context(), a.meta(r, operatorID), operatorID, remoteID); err != nil {
		commandError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"remote_id": remoteID, "deleted": true})
}

// isDate reports whether s is a date or an RFC 3339 time.
func isDate(s string) bool {
	_, err1 := time.Parse(time.RFC3339, s)
	_, err2 := time.Parse(time.DateOnly, s)
	return err1 == nil || err2 == nil
}
