package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/projections"
)

// Follow-up statuses of a pupil, from the furthest along.
const (
	FollowSigned  = "signed"  // a signed convention
	FollowPlaced  = "placed"  // a confirmed placement
	FollowApplied = "applied" // an application waiting for an answer or a confirmation
	FollowNone    = "none"
)

// FollowUpApplication is one of a pupil's applications, with its offer and,
// once confirmed, its convention.
type FollowUpApplication struct {
	projections.ApplicationDoc
	OfferTitle   string             `json:"offer_title,omitempty"`
	EmployerName string             `json:"employer_name,omitempty"`
	CommuneCode  string             `json:"commune_code,omitempty"`
	Convention   *ConventionSummary `json:"convention,omitempty"`
}

// ConventionSummary is where a convention stands.
type ConventionSummary struct {
	ID           string        `json:"id"`
	Status       string        `json:"status"`
	StartDate    string        `json:"start_date"`
	EndDate      string        `json:"end_date"`
	MissingRoles []domain.Role `json:"missing_roles"`
}

// FollowUp is a pupil's follow-up, for the pupil, their guardians and their
// school's staff: where the pupil stands and every application.
type FollowUp struct {
	PupilID      string                `json:"pupil_id"`
	SchoolUAI    string                `json:"school_uai"`
	SchoolName   string                `json:"school_name"`
	Grade        domain.Grade          `json:"grade"`
	ClassName    string                `json:"class_name"`
	Status       string                `json:"status"` // signed, placed, applied, none
	Applications []FollowUpApplication `json:"applications"`
	Position     string                `json:"position"`
}

// pupilFollowUp answers GET /v1/pupils/{id}/follow-up.
func (a *API) pupilFollowUp(ctx context.Context, r *http.Request, m model) (any, error) {
	return a.followUp(ctx, m, chi.URLParam(r, "id"), "")
}

// schoolPupil answers GET /v1/schools/{uai}/pupils/{id}: the same
// follow-up, for a pupil of that school only.
func (a *API) schoolPupil(ctx context.Context, r *http.Request, m model) (any, error) {
	uai := chi.URLParam(r, "uai")
	if !uaiRe.MatchString(uai) {
		return nil, notFound("pupil")
	}
	return a.followUp(ctx, m, chi.URLParam(r, "id"), uai)
}

func (a *API) followUp(ctx context.Context, m model, id, uai string) (*FollowUp, error) {
	if !domain.ValidID(id) {
		return nil, notFound("pupil")
	}
	var info projections.PupilInfo
	if err := getDoc(ctx, m, projections.PupilInfoKey(id), "pupil", &info); err != nil {
		return nil, err
	}
	if uai != "" && info.School != uai {
		return nil, notFound("pupil")
	}
	f := &FollowUp{PupilID: id, SchoolUAI: info.School, Grade: info.Grade, ClassName: info.ClassName,
		Applications: []FollowUpApplication{}, Position: m.position.String()}
	var school projections.SchoolInfo
	if err := getDoc(ctx, m, projections.SchoolInfoKey(info.School), "school", &school); err != nil && !isNotFound(err) {
		return nil, err
	}
	f.SchoolName = school.Name
	docs, err := applicationDocs(ctx, m, projections.PupilApplicationsKey(id))
	if err != nil {
		return nil, err
	}
	offers, err := a.offerDocs(ctx, docs)
	if err != nil {
		return nil, err
	}
	convs, err := conventionDocs(ctx, m, docs)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		o := offers[d.OfferID]
		fa := FollowUpApplication{ApplicationDoc: d, OfferTitle: o.Title, EmployerName: o.EmployerName, CommuneCode: o.CommuneCode}
		if c, ok := convs[d.ConventionID]; ok {
			fa.Convention = &ConventionSummary{ID: c.ID, Status: c.Status, StartDate: c.StartDate, EndDate: c.EndDate, MissingRoles: c.MissingRoles}
		}
		f.Applications = append(f.Applications, fa)
	}
	statuses, err := followStatuses(ctx, m, info.School, []string{id}, map[string][]projections.ApplicationDoc{id: docs})
	if err != nil {
		return nil, err
	}
	f.Status = statuses[id]
	return f, nil
}

// conventionDocs reads the conventions of the confirmed applications.
func conventionDocs(ctx context.Context, m model, docs []projections.ApplicationDoc) (map[string]projections.ConventionDoc, error) {
	var ids []string
	for _, d := range docs {
		if d.ConventionID != "" {
			ids = append(ids, d.ConventionID)
		}
	}
	convs, err := getDocs[projections.ConventionDoc](ctx, m, ids, projections.ConventionDocKey)
	out := make(map[string]projections.ConventionDoc, len(convs))
	for _, c := range convs {
		out[c.ID] = c
	}
	return out, err
}

// followStatuses tells where each pupil of a school stands, from the
// school's placed and signed sets (the dashboard's figures) and the
// pupils' applications.
func followStatuses(ctx context.Context, m model, uai string, pupils []string, apps map[string][]projections.ApplicationDoc) (map[string]string, error) {
	out := make(map[string]string, len(pupils))
	if len(pupils) == 0 {
		return out, nil
	}
	pipe := m.RDB.Pipeline()
	signed := pipe.SMIsMember(ctx, m.Key(projections.SchoolSignedKey(uai)), toAny(pupils)...)
	placed := pipe.SMIsMember(ctx, m.Key(projections.SchoolPlacedKey(uai)), toAny(pupils)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for i, p := range pupils {
		switch {
		case signed.Val()[i]:
			out[p] = FollowSigned
		case placed.Val()[i]:
			out[p] = FollowPlaced
		case slices.ContainsFunc(apps[p], func(d projections.ApplicationDoc) bool {
			return d.Status == domain.StatusSubmitted || d.Status == domain.StatusRead || d.Status == domain.StatusAccepted
		}):
			out[p] = FollowApplied
		default:
			out[p] = FollowNone
		}
	}
	return out, nil
}

// PupilLine is one pupil in a school's follow-up list.
type PupilLine struct {
	PupilID      string           `json:"pupil_id"`
	Grade        domain.Grade     `json:"grade"`
	ClassName    string           `json:"class_name"`
	Status       string           `json:"status"`       // signed, placed, applied, none
	Applications map[string]int64 `json:"applications"` // by status
}

// PupilList is the answer of GET /v1/schools/{uai}/pupils.
type PupilList struct {
	Items    []PupilLine `json:"items"`
	Total    int         `json:"total"`
	Page     int         `json:"page"`
	PerPage  int         `json:"per_page"`
	Classes  []string    `json:"classes"` // every class of the school
	Position string      `json:"position"`
}

// schoolPupils is a teacher's follow-up of a class (or of the whole
// school): each pupil's status and applications by status, by pupil id.
func (a *API) schoolPupils(ctx context.Context, r *http.Request, m model) (any, error) {
	uai := chi.URLParam(r, "uai")
	if !uaiRe.MatchString(uai) {
		return nil, notFound("school")
	}
	f, err := parsePupilsFilter(api.Query(r))
	if err != nil {
		return nil, err
	}
	var school projections.SchoolInfo
	if err := getDoc(ctx, m, projections.SchoolInfoKey(uai), "school", &school); err != nil {
		return nil, err
	}
	out := PupilList{Items: []PupilLine{}, Page: f.page, PerPage: f.perPage, Position: m.position.String()}
	pupils, classes, err := schoolRoster(ctx, m, uai, f.class)
	if err != nil {
		return nil, err
	}
	out.Classes = classes
	if len(pupils) == 0 {
		return out, nil
	}
	lines, err := pupilLines(ctx, m, uai, pupils)
	if err != nil {
		return nil, err
	}
	for _, line := range lines {
		if f.keeps(line) {
			out.Items = append(out.Items, line)
		}
	}
	out.Total = len(out.Items)
	out.Items = pageOf(out.Items, f.page, f.perPage)
	return out, nil
}

// pupilsFilter is the query of a school's follow-up, validated.
type pupilsFilter struct {
	page, perPage        int
	class, grade, status string // "": any
}

func parsePupilsFilter(q url.Values) (pupilsFilter, error) {
	pg, perPage, err := pagination(q)
	if err != nil {
		return pupilsFilter{}, err
	}
	f := pupilsFilter{page: pg, perPage: perPage, class: q.Get("class"), grade: q.Get("grade"), status: q.Get("status")}
	if len(f.class) > 100 {
		return f, api.Invalid("class", "must be at most 100 bytes")
	}
	if f.grade != "" && !domain.Grade(f.grade).Valid() {
		return f, api.Invalid("grade", "must be one of 4e, 3e, 2de")
	}
	switch f.status {
	case "", FollowSigned, FollowPlaced, FollowApplied, FollowNone:
	default:
		return f, api.Invalid("status", "must be one of signed, placed, applied, none")
	}
	return f, nil
}

// keeps tells whether the line has the grade and the status asked for
// (the class is the set read).
func (f pupilsFilter) keeps(line PupilLine) bool {
	return (f.grade == "" || string(line.Grade) == f.grade) && (f.status == "" || line.Status == f.status)
}

// schoolRoster reads the pupils of the school (of one class when given)
// and every class of the school, each sorted.
func schoolRoster(ctx context.Context, m model, uai, class string) (pupils, classes []string, err error) {
	set := projections.SchoolPupilsKey(uai)
	if class != "" {
		set = projections.SchoolClassKey(uai, class)
	}
	pipe := m.RDB.Pipeline()
	pupilsCmd := pipe.SMembers(ctx, m.Key(set))
	classesCmd := pipe.SMembers(ctx, m.Key(projections.SchoolClassesKey(uai)))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	classes = classesCmd.Val()
	slices.Sort(classes)
	pupils = pupilsCmd.Val()
	slices.Sort(pupils)
	return pupils, classes, nil
}

// pupilLines are the follow-up lines of the pupils of the school uai, in
// the order of pupils.
func pupilLines(ctx context.Context, m model, uai string, pupils []string) ([]PupilLine, error) {
	infos, apps, err := pupilRecords(ctx, m, pupils)
	if err != nil {
		return nil, err
	}
	statuses, err := followStatuses(ctx, m, uai, pupils, apps)
	if err != nil {
		return nil, err
	}
	lines := make([]PupilLine, len(pupils))
	for i, p := range pupils {
		lines[i] = PupilLine{PupilID: p, Grade: infos[i].Grade, ClassName: infos[i].ClassName, Status: statuses[p], Applications: map[string]int64{}}
		for _, d := range apps[p] {
			lines[i].Applications[d.Status]++
		}
	}
	return lines, nil
}

// pupilRecords reads each pupil's info (empty when missing) and
// applications, by pupil id.
func pupilRecords(ctx context.Context, m model, pupils []string) ([]projections.PupilInfo, map[string][]projections.ApplicationDoc, error) {
	infoCmds := make([]*redis.StringCmd, len(pupils))
	lists := make([]*redis.StringSliceCmd, len(pupils))
	pipe := m.RDB.Pipeline()
	for i, p := range pupils {
		infoCmds[i] = pipe.Get(ctx, m.Key(projections.PupilInfoKey(p)))
		lists[i] = pipe.ZRange(ctx, m.Key(projections.PupilApplicationsKey(p)), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, nil, err
	}
	var appIDs []string
	owner := map[string]string{}
	for i, p := range pupils {
		for _, id := range lists[i].Val() {
			appIDs = append(appIDs, id)
			owner[id] = p
		}
	}
	docs, err := getDocs[projections.ApplicationDoc](ctx, m, appIDs, projections.ApplicationDocKey)
	if err != nil {
		return nil, nil, err
	}
	apps := map[string][]projections.ApplicationDoc{}
	for _, d := range docs {
		apps[owner[d.ID]] = append(apps[owner[d.ID]], d)
	}
	infos := make([]projections.PupilInfo, len(pupils))
	for i := range pupils {
		if s, err := infoCmds[i].Result(); err == nil {
			_ = json.Unmarshal([]byte(s), &infos[i])
		}
	}
	return infos, apps, nil
}

// offerDocs reads the offers of the applications from the served offer
// search model.
func (a *API) offerDocs(ctx context.Context, docs []projections.ApplicationDoc) (map[string]projections.OfferDoc, error) {
	out := map[string]projections.OfferDoc{}
	if len(docs) == 0 {
		return out, nil
	}
	offers, err := a.model(ctx, projections.OffersName, eventstore.Start)
	if err != nil {
		return out, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, d := range docs {
		if !seen[d.OfferID] {
			seen[d.OfferID] = true
			ids = append(ids, d.OfferID)
		}
	}
	found, err := getDocs[projections.OfferDoc](ctx, offers, ids, projections.OfferDocKey)
	for _, o := range found {
		out[o.ID] = o
	}
	return out, err
}

// applicationDocs reads the applications listed in a sorted set, newest
// first.
func applicationDocs(ctx context.Context, m model, key string) ([]projections.ApplicationDoc, error) {
	docs := []projections.ApplicationDoc{}
	if m.Prefix == "" {
		return docs, nil
	}
	ids, err := m.RDB.ZRevRange(ctx, m.Key(key), 0, -1).Result()
	if err != nil || len(ids) == 0 {
		return docs, err
	}
	found, err := getDocs[projections.ApplicationDoc](ctx, m, ids, projections.ApplicationDocKey)
	return append(docs, found...), err
}

func isNotFound(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
