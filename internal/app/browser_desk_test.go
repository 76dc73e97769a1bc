package app_test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"passerelle/internal/testsupport/httpclient"
)

// deskShown is what the page shows of the desk.
type deskShown struct {
	Visible   bool              `json:"visible"`
	RoundOpen bool              `json:"round_open"` // the round's section is shown
	Filters   bool              `json:"filters"`    // the département and UAI filters are shown
	Summary   string            `json:"summary"`
	Buckets   map[string]string `json:"buckets"` // 0, 1-2, 3-9, 10+ → text
	Pupils    []deskRow         `json:"pupils"`
	Selected  string            `json:"selected"`
	Offers    []deskOffer       `json:"offers"` // the selected pupil's suggestions
	Round     map[string]deskRound
}

type deskRow struct {
	ID       string `json:"id"`
	School   string `json:"school"`
	Eligible string `json:"eligible"`
}

type deskOffer struct {
	ID    string            `json:"id"`
	Title string            `json:"title"`
	Score string            `json:"score"`
	Parts map[string]string `json:"parts"`
}

type deskRound struct {
	Round string `json:"round"`
	First string `json:"first"`
}

const readDesk = `(() => {
	const q = (s) => [...document.querySelectorAll(s)];
	return {
		visible: !document.getElementById('desk').hidden,
		round_open: !document.getElementById('round').hidden,
		filters: !document.getElementById('desk-form').hidden,
		summary: (document.querySelector('#desk-summary strong') || {}).textContent || '',
		buckets: Object.fromEntries(q('#desk-buckets dd').map((d) => [d.dataset.bucket, d.textContent])),
		pupils: q('#desk-pupils tbody tr').map((tr) => ({ id: tr.dataset.pupil, school: tr.cells[1].firstChild.textContent,
			eligible: tr.cells[4].textContent })),
		selected: (q('#desk-pupils tr[aria-current="true"]')[0] || { dataset: {} }).dataset.pupil || '',
		offers: document.getElementById('desk-pupil').hidden ? [] : q('#suggestions li').map((li) => ({ id: li.dataset.offer,
			title: li.querySelector('h4').textContent, score: li.querySelector('.score strong').textContent,
			parts: Object.fromEntries([...li.querySelectorAll('dd[data-part]')].map((d) => [d.dataset.part, d.textContent])) })),
		Round: document.getElementById('round-view').hidden ? {} : Object.fromEntries(q('#round-figures tbody tr')
			.map((tr) => [tr.dataset.key, { round: tr.cells[1].textContent, first: tr.cells[2].textContent }])),
	};
})()`

// eventuallyDesk reads the desk until diff finds nothing, for at most
// within, and fails with the last differences.
func (b *browser) eventuallyDesk(what string, within time.Duration, diff func(deskShown) []string) deskShown {
	b.t.Helper()
	var problems []string
	for deadline := time.Now().Add(within); ; {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[deskShown](readDesk))
		if err != nil {
			b.t.Fatal(err)
		}
		if problems = diff(s); len(problems) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("%s: the page differs from the API:\n%s", what, strings.Join(problems, "\n"))
	return deskShown{}
}

// deskDiff compares the list of pupils to call with GET /v1/desk/pupils:
// the same pupils in the same order, their eligible offers, the counts by
// eligible offers and the total.
func deskDiff(s deskShown, api map[string]any) []string {
	var out []string
	if !s.Visible {
		return []string{"the desk is not shown"}
	}
	if digits(s.Summary) != int(num(api, "total")) {
		out = append(out, fmt.Sprintf("summary %q, the API has %v pupils", s.Summary, api["total"]))
	}
	for k, v := range api["by_eligible_offers"].(map[string]any) {
		if digits(s.Buckets[k]) != int(v.(float64)) {
			out = append(out, fmt.Sprintf("pupils with %s offers: shown %q, the API says %v", k, s.Buckets[k], v))
		}
	}
	items := api["items"].([]any)
	if len(items) != len(s.Pupils) {
		return append(out, fmt.Sprintf("%d pupils listed, the API has %d", len(s.Pupils), len(items)))
	}
	for i, x := range items {
		p, row := x.(map[string]any), s.Pupils[i]
		if row.ID != str(p, "pupil_id") || row.School != str(p, "school_uai") || digits(row.Eligible) != int(num(p, "eligible_offers")) {
			out = append(out, fmt.Sprintf("row %d: shown %+v, the API says %v", i, row, p))
		}
	}
	return out
}

// sameDeskAsAPI waits for the page's desk to equal the API's answer to
// query, read at position, and returns that answer.
func (b *browser) sameDeskAsAPI(c httpclient.Client, query, position string) map[string]any {
	b.t.Helper()
	api := c.Must(200, "GET", "/v1/desk/pupils?per_page=100&min_position="+position+query, nil)
	if len(api["items"].([]any)) == 0 {
		b.t.Fatal("the fixture has no pupil for the desk to call")
	}
	b.eventuallyDesk("desk", 8*time.Second, func(s deskShown) []string { return deskDiff(s, api) })
	return api
}

// suggestionsDiff compares the suggestions shown with the API's: the same
// offers in the same order, each score and its parts.
func suggestionsDiff(s deskShown, api map[string]any) []string {
	items := api["items"].([]any)
	if len(items) != len(s.Offers) {
		return []string{fmt.Sprintf("%d suggestions shown, the API has %d", len(s.Offers), len(items))}
	}
	var out []string
	for i, x := range items {
		o, got := x.(map[string]any), s.Offers[i]
		if got.ID != str(o, "id") || got.Title != str(o, "title") || !oneDecimal(got.Score, num(o, "score")) {
			out = append(out, fmt.Sprintf("suggestion %d: shown %+v, the API says %s %q score %v", i, got, o["id"], o["title"], o["score"]))
		}
		for k, v := range o["score_parts"].(map[string]any) {
			if !oneDecimal(got.Parts[k], v.(float64)) {
				out = append(out, fmt.Sprintf("suggestion %d part %s: shown %q, the API says %v", i, k, got.Parts[k], v))
			}
		}
	}
	return out
}

// deskRoundFixture computes an allocation round over the fixture's 3e
// pupils of Val-de-Marne, for the page to preview.
func deskRoundFixture(bo httpclient.Client) (id, position string) {
	campaign := str(bo.Must(201, "POST", "/v1/campaigns", map[string]any{"name": "Val-de-Marne 3e", "departments": []string{"94"},
		"grades": []string{"3e"}, "weeks": []string{weekAhead(8)}}), "id")
	r := bo.Must(201, "POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 7})
	return str(r, "id"), str(r, "position")
}

// checkDeskInBrowser drives the desk as the back office: the pupils to
// call equal the API's, a pupil chosen with the keyboard shows the API's
// explained suggestions, a proposal made from the page is in the API and
// changes the pupil's line within 2 s without a reload, and a round's
// preview shows the API's figures.
func checkDeskInBrowser(b *browser, bo httpclient.Client) {
	t := b.t
	t.Helper()
	roundID, pos := deskRoundFixture(bo)
	list := b.sameDeskAsAPI(bo, "", pos)
	if s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[deskShown](readDesk)); !s.Filters || !s.RoundOpen {
		t.Errorf("the back office has no filters (%v) or no round preview (%v)", s.Filters, s.RoundOpen)
	}

	// the first pupil to call, chosen with the keyboard
	first := list["items"].([]any)[0].(map[string]any)
	pupil, eligible := str(first, "pupil_id"), int(num(first, "eligible_offers"))
	if eligible == 0 {
		t.Fatalf("the first pupil to call has no offer to be proposed for: %v", first)
	}
	b.do(chromedp.Focus(chromedp.CSS(`#desk-pupils tbody tr:first-child button`)), chromedp.KeyEvent(kb.Enter))
	suggestions := bo.Must(200, "GET", "/v1/pupils/"+pupil+"/suggestions?per_page=10&min_position="+pos, nil)
	b.eventuallyDesk("suggestions of "+pupil, 5*time.Second, func(s deskShown) []string {
		if s.Selected != pupil {
			return []string{fmt.Sprintf("selected %q, want %s", s.Selected, pupil)}
		}
		return suggestionsDiff(s, suggestions)
	})
	if focused, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.activeElement.id`)); focused != "suggestions-h" {
		t.Errorf("after choosing a pupil the focus is on %q, not on their suggestions", focused)
	}
	if missing := b.unlabelled(); len(missing) > 0 {
		t.Errorf("controls of the desk without a label: %v", missing)
	}

	// a proposal from the page: in the API and in the list within 2 s
	offer := str(suggestions["items"].([]any)[0].(map[string]any), "id")
	b.do(chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`), chromedp.Evaluate[chromedp.Void](recordPosts))
	start := time.Now()
	b.do(chromedp.Click(chromedp.CSS(`#suggestions li:first-child button`)))
	app := proposedFor(b, bo, pupil, offer, start.Add(2*time.Second))
	after := deskWithout(b, bo, pupil, eligible-1, start.Add(2*time.Second))
	b.eventuallyDesk("the desk after the proposal", 2*time.Second-time.Since(start), func(s deskShown) []string {
		out := deskDiff(s, after)
		if i := slices.IndexFunc(s.Pupils, func(r deskRow) bool { return r.ID == pupil }); i >= 0 && digits(s.Pupils[i].Eligible) != eligible-1 {
			out = append(out, fmt.Sprintf("pupil %s: %s eligible offers shown, want %d (one fewer)", pupil, s.Pupils[i].Eligible, eligible-1))
		}
		if slices.ContainsFunc(s.Offers, func(o deskOffer) bool { return o.ID == offer }) {
			out = append(out, "the offer proposed is still suggested")
		}
		return out
	})
	t.Logf("the proposal %s was in the API and on the page %v after the click", app, time.Since(start).Round(time.Millisecond))
	if same, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.sameDocument === true`)); !same {
		t.Fatal("the page was reloaded to show the proposal")
	}

	replayProposal(b, bo, offer, app)

	// a round's preview
	round := bo.Must(200, "GET", "/v1/rounds/"+roundID, nil)
	b.do(chromedp.SendKeys(chromedp.ID("round-id"), roundID+"\n"))
	b.eventuallyDesk("round "+roundID, 5*time.Second, func(s deskShown) []string { return roundDiff(s, round) })
	b.do(chromedp.ScrollIntoView(chromedp.CSS("#desk")))
	b.screenshotOf("#desk", "dashboard-desk.png")
	b.screenshotOf("#round", "dashboard-round.png")
}

// proposedFor polls the pupil's applications until the one to offer is
// there, proposed by the back office, at most until deadline.
func proposedFor(b *browser, c httpclient.Client, pupil, offer string, deadline time.Time) string {
	b.t.Helper()
	for {
		for _, x := range c.Must(200, "GET", "/v1/pupils/"+pupil+"/applications", nil)["items"].([]any) {
			a := x.(map[string]any)
			if by, _ := a["proposed_by"].(map[string]any); str(a, "offer_id") == offer && by["role"] == "backoffice" {
				return str(a, "id")
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no proposal of pupil %s for offer %s in the API 2 s after the click", pupil, offer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordPosts keeps what the page POSTs, for replayProposal.
const recordPosts = `(() => {
	window.posts = [];
	const send = window.fetch;
	window.fetch = (url, o) => {
		if (o && o.method === 'POST') window.posts.push({ url: String(url), key: o.headers['Idempotency-Key'] || '', body: o.body });
		return send(url, o);
	};
})()`

// replayProposal checks that the page sent its proposal with an
// Idempotency-Key: the same request again answers the same application
// and writes nothing.
func replayProposal(b *browser, c httpclient.Client, offer, app string) {
	b.t.Helper()
	type post struct{ URL, Key, Body string }
	posts, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]post](`window.posts`))
	if err != nil {
		b.t.Fatal(err)
	}
	if len(posts) != 1 || !strings.HasSuffix(posts[0].URL, "/v1/offers/"+offer+"/proposals") || posts[0].Key == "" {
		b.t.Fatalf("the page posted %+v, want one proposal to offer %s with an Idempotency-Key", posts, offer)
	}
	head := logHead(b.t, c)
	again := c.Do("POST", "/v1/offers/"+offer+"/proposals", posts[0].Body, "Idempotency-Key", posts[0].Key)
	if again.Status != 201 || str(again.Body, "id") != app || logHead(b.t, c) != head {
		b.t.Fatalf("the page's proposal replayed: %d %s, log %s → %s; want 201 with %s and nothing written", again.Status, again.Raw, head, logHead(b.t, c), app)
	}
}

// deskWithout polls the API's desk until the pupil has want eligible
// offers (the proposal's last event applied: the application is written
// before the pupil's record of it), at most until deadline.
func deskWithout(b *browser, c httpclient.Client, pupil string, want int, deadline time.Time) map[string]any {
	b.t.Helper()
	for {
		list := c.Must(200, "GET", "/v1/desk/pupils?per_page=100", nil)
		i := slices.IndexFunc(list["items"].([]any), func(x any) bool { return str(x.(map[string]any), "pupil_id") == pupil })
		if i < 0 || int(num(list["items"].([]any)[i].(map[string]any), "eligible_offers")) == want {
			return list
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the API's desk still gives pupil %s %v eligible offers 2 s after the click, want %d", pupil, list["items"].([]any)[i], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roundDiff compares the round's figures shown with GET /v1/rounds/{id}:
// the round's and first come's.
func roundDiff(s deskShown, round map[string]any) []string {
	p := round["preview"].(map[string]any)
	fc := p["first_come"].(map[string]any)
	var out []string
	check := func(key string, want, wantFirst float64) {
		got, ok := s.Round[key]
		if !ok || !oneDecimal(got.Round, want) || !oneDecimal(got.First, wantFirst) {
			out = append(out, fmt.Sprintf("round %s: shown %+v, the API says %v and %v (first come)", key, got, want, wantFirst))
		}
	}
	for _, k := range []string{"pupils", "seats", "placed", "seats_left", "distance_km_median", "distance_km_p90"} {
		check(k, num(p, k), num(fc, k))
	}
	for g := range p["pupils_by_priority"].(map[string]any) {
		check("placed:"+g, num(p, "placed_by_priority", g), num(fc, "placed_by_priority", g))
	}
	return out
}

// checkDeskScopes: a school's token sees its own pupils only, without the
// filters or the rounds; an employer's sees no desk at all.
func checkDeskScopes(b *browser, school httpclient.Client, uai, position string) {
	b.t.Helper()
	b.sameDeskAsAPI(school, "&school="+uai, position)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[deskShown](readDesk))
	if err != nil {
		b.t.Fatal(err)
	}
	if s.Filters || s.RoundOpen {
		b.t.Errorf("a school's token shows the filters (%v) or the rounds (%v)", s.Filters, s.RoundOpen)
	}
	for _, r := range s.Pupils {
		if r.School != uai {
			b.t.Errorf("a school's token lists pupil %s of %s", r.ID, r.School)
		}
	}
}

// screenshotOf saves a picture of the element sel.
func (b *browser) screenshotOf(sel, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatal(err)
	}
	b.save(name, png)
}

// oneDecimal reports whether text shows f to one decimal, as the page
// writes it ("Score 87,5", "12,3", "4").
func oneDecimal(text string, f float64) bool {
	var b strings.Builder
	for _, r := range text {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ',':
			b.WriteRune('.')
		}
	}
	got, err := strconv.ParseFloat(b.String(), 64)
	return err == nil && math.Abs(got-f) <= 0.05+1e-9
}
