package app_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// ChromiumEnv names the browser binary for TestDashboardInBrowser; by
// default it is looked up on the PATH.
const ChromiumEnv = "PASSERELLE_CHROMIUM"

// TestDashboardInBrowser loads the page served at / in headless Chromium,
// against the service over a real listener on 127.0.0.1 with tokens
// checked: signing in with the keyboard, the figures shown equal the API's
// (totals, départements on the table and on the map, sectors, targets,
// placement rates, a school's pupils without a placement), and a command
// shows on the page within 2 s without a reload. It saves screenshots in
// its artefact directory (go test -artifacts keeps them). Without
// Chromium it fails: it is never skipped.
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	rd := redistest.Mini(t)
	if os.Getenv(redistest.RedisEnv) != "" {
		rd = redistest.Real(t)
	}
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("d", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: rd.URL, Verifier: issuer})
	c.Token = func(role, subject string) string {
		tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f := seedForPage(t, c)
	b := openBrowser(t, exe)
	bo := c.As("backoffice", "agent-1")

	// A token that does not verify is refused; a good one, typed and
	// sent with Enter, shows the board.
	b.do(chromedp.Navigate(c.Base()+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token\n"))
	b.poll(`document.getElementById('token-error').textContent !== '' && document.getElementById('board').hidden`, 5*time.Second)
	b.do(chromedp.SendKeys(chromedp.ID("token"), c.Token("backoffice", "agent-1")+"\n"), chromedp.WaitVisible(chromedp.ID("board")))
	b.sameAsAPI(bo, f.position)
	if missing := b.unlabelled(); len(missing) > 0 {
		t.Errorf("controls without a label: %v", missing)
	}

	// A command: the page follows within 2 s, in the same document.
	b.do(chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))
	start := time.Now()
	posted := c.As("employer", f.employer).Must(201, "POST", "/v1/offers", pageOffer(f.employer, "s12", "94028", weekAhead(8), 4))
	want := bo.Must(200, "GET", "/v1/stats/offers?min_position="+str(posted, "position"), nil)
	b.poll(fmt.Sprintf(`(() => {
		const n = (id) => Number(document.getElementById(id).textContent.replace(/\D/g, ''));
		return n('offers-open') === %d && n('seats-available') === %d && n('seats-total') === %d;
	})()`, int(num(want, "offers_open")), int(num(want, "seats_available")), int(num(want, "seats_total"))), 2*time.Second-time.Since(start))
	t.Logf("the page showed the new offer %v after the command was sent", time.Since(start).Round(time.Millisecond))
	if same, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.sameDocument === true`)); !same {
		t.Fatal("the page was reloaded to show the new offer")
	}
	b.sameAsAPI(bo, str(posted, "position"))
	b.screenshot("dashboard.png")

	// A convention's document, as the API renders it for the page.
	doc := bo.Must(200, "GET", "/v1/conventions/"+f.convention+"/document", nil)
	b.do(chromedp.SendKeys(chromedp.ID("convention-id"), f.convention+"\n"))
	b.poll(fmt.Sprintf(`(() => {
		const a = document.querySelector('#convention-view article.convention');
		return a !== null && a.textContent.includes(%q) && !document.getElementById('convention-pdf').hidden;
	})()`, str(doc, "document_hash")), 5*time.Second)
	b.do(chromedp.ScrollIntoView("#convention"))
	b.screenshot("dashboard-convention.png")

	// The desk: the pupils to call first, their suggestions, a proposal
	// and a round's preview (checkDeskInBrowser).
	checkDeskInBrowser(b, bo)

	// A school's token shows that school's pupils without a placement,
	// on a phone's screen.
	b.do(chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), c.Token("school", uai)+"\n"), chromedp.WaitVisible(chromedp.ID("school-view")))
	b.sameSchoolAsAPI(c.As("school", uai), uai, str(posted, "position"))
	checkDeskScopes(b, c.As("school", uai), uai, logHead(t, bo))
	b.do(chromedp.EmulateViewport(390, 844))
	if wide, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
		t.Error("on a 390 px wide screen the page scrolls sideways")
	}
	b.screenshot("dashboard-phone.png")
	b.do(chromedp.EmulateViewport(1280, 900))
	signedOutStaysOut(b, c, f.employer)

	// An employer's token shows no desk.
	b.do(chromedp.SendKeys(chromedp.ID("token"), c.Token("employer", f.employer)+"\n"), chromedp.WaitVisible(chromedp.ID("board")))
	b.poll(`document.getElementById('desk').hidden && document.getElementById('round').hidden &&
		document.querySelectorAll('#desk-pupils tbody tr, #suggestions li').length === 0`, 5*time.Second)
	b.noExceptions()
}

// signedOutStaysOut signs out while the page waits to read the
// placements again (two changes within 3 s: the second's refresh waits
// for the end of the 3 s), and checks the page stays signed out with its
// own message: what the ended session scheduled runs without a token and
// must not act on the next one (it signed the next user out).
func signedOutStaysOut(b *browser, c httpclient.Client, employer string) {
	b.t.Helper()
	bo := c.As("backoffice", "agent-1")
	for i := range 2 {
		posted := c.As("employer", employer).Must(201, "POST", "/v1/offers", pageOffer(employer, "s12", "94028", weekAhead(9+i), 2))
		want := bo.Must(200, "GET", "/v1/stats/offers?min_position="+str(posted, "position"), nil)
		b.poll(fmt.Sprintf(`Number(document.getElementById('offers-open').textContent.replace(/\D/g, '')) === %d`,
			int(num(want, "offers_open"))), 5*time.Second)
	}
	b.do(chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
	time.Sleep(3500 * time.Millisecond) // past the refresh the session scheduled
	b.poll(`!document.getElementById('login').hidden && document.getElementById('board').hidden &&
		document.getElementById('token-error').textContent === 'Vous êtes déconnecté.'`, time.Second)
}

// chromium is the browser to drive: ChromiumEnv, else Debian's chromium or
// chromium-headless-shell on the PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium on the PATH: install it (apt-get install chromium) or name it in %s; this test is never skipped", ChromiumEnv)
	return ""
}

// pageFixture is what seedForPage wrote.
type pageFixture struct {
	employer   string
	convention string // the confirmed placement's
	position   string // of the last command
}

// seedForPage registers through the API two schools (in 94 and 75), their
// pupils, two employers, three offers in two sectors, one confirmed
// placement and two campaign targets.
func seedForPage(t *testing.T, c httpclient.Client) pageFixture {
	t.Helper()
	bo := c.As("backoffice", "agent-1")
	emp := str(bo.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Boulangerie Martin", "siret": siret, "kind": "company", "commune_code": "94028", "address": "1 rue de Paris"}), "id")
	town := str(bo.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Mairie du 11e", "siret": "44201123456701", "kind": "public", "commune_code": "75111", "address": "12 place Léon Blum"}), "id")
	bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": uai, "name": "Collège Jean Macé", "kind": "college",
		"commune_code": "94028", "education_priority": "rep", "qpv": true})
	bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": "0751234B", "name": "Lycée Voltaire", "kind": "lycee",
		"commune_code": "75111", "education_priority": "none", "qpv": false})
	pupil := func(school, grade, class, birth string) string {
		return str(c.As("school", school).Must(201, "POST", "/v1/pupils", map[string]any{
			"school_uai": school, "grade": grade, "class_name": class, "first_name": "Lina", "last_name": "Benali", "birth_date": birth,
			"guardians": []map[string]string{{"name": "Karim Benali", "email": "k.benali@example.fr", "phone": "0612345678"}}}), "id")
	}
	placed := pupil(uai, "3e", "3eB", "2012-03-14")
	pupil(uai, "3e", "3eB", "2012-05-02")
	pupil(uai, "3e", "3eA", "2012-01-20")
	pupil("0751234B", "2de", "2nde1", "2010-09-08")
	w1 := weekAhead(8)
	offer := str(c.As("employer", emp).Must(201, "POST", "/v1/offers", pageOffer(emp, "s1", "94028", w1, 1)), "id")
	c.As("employer", emp).Must(201, "POST", "/v1/offers", pageOffer(emp, "s12", "94028", w1, 3))
	body := pageOffer(town, "s12", "75111", w1, 2)
	body["grades"] = []string{"2de"}
	c.As("employer", town).Must(201, "POST", "/v1/offers", body)
	app := str(c.As("pupil", placed).Must(201, "POST", "/v1/offers/"+offer+"/applications", map[string]any{
		"pupil_id": placed, "weeks": []string{w1}, "motivation": "J'aime le pain."}), "id")
	c.As("employer", emp).Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
	conv := str(c.As("pupil", placed).Must(200, "POST", "/v1/applications/"+app+"/confirm", nil), "convention_id")
	bo.Must(200, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "94", "metric": "offers_open", "target": 5})
	last := bo.Must(200, "POST", "/v1/targets", map[string]any{"scope": "all", "code": "all", "metric": "seats_total", "target": 20})
	return pageFixture{employer: emp, convention: conv, position: str(last, "position")}
}

func pageOffer(employer, sector, commune, week string, seats int) map[string]any {
	return map[string]any{"employer_id": employer, "title": "Découverte du métier", "description": "Une semaine avec l'équipe",
		"sector": sector, "grades": []string{"3e"}, "weeks": []string{week}, "seats": seats,
		"commune_code": commune, "address": "1 rue de Paris", "lat": 48.79, "lon": 2.455}
}

// browser is one headless Chromium tab, for one test.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught in the page
}

func openBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(tab, 5*time.Minute)
	t.Cleanup(func() {
		cancel()
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser and the tab
		t.Fatalf("start %s: %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// stepTimeout bounds one step, so a step that hangs fails on its own line
// with the page's state, not at the end of the test's whole time.
const stepTimeout = 30 * time.Second

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(err)
	}
}

// fail ends the test with what the page showed: which parts were visible,
// its messages and the focused control, and a screenshot.
func (b *browser) fail(err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	state, serr := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const shown = (id) => { const e = document.getElementById(id); return e !== null && !e.hidden && e.getClientRects().length > 0; };
		const text = (id) => { const e = document.getElementById(id); return e === null ? null : e.textContent; };
		return {login: shown('login'), board: shown('board'), logout: shown('logout'), token: shown('token'),
			live: text('live'), who: text('who'), token_error: text('token-error'), board_error: text('board-error'),
			focused: document.activeElement ? document.activeElement.id : '', width: window.innerWidth, url: location.href};
	})()`))
	if serr != nil {
		b.t.Logf("the page's state could not be read: %v", serr)
	}
	if png, perr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); perr == nil {
		b.save("failure.png", png)
	}
	b.t.Fatalf("%v; the page: %v", err, state)
}

// poll waits until the expression is true in the page, at most within.
func (b *browser) poll(expression string, within time.Duration) {
	b.t.Helper()
	if within <= 0 {
		b.t.Fatalf("no time left to wait for %s", expression)
	}
	ctx, cancel := context.WithTimeout(b.ctx, within+stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expression, chromedp.WithPollingTimeout(within),
		chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.fail(fmt.Errorf("not true within %v: %s: %w", within, expression, err))
	}
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	b.save(name, png)
}

// save writes a picture in the test's artefact directory.
func (b *browser) save(name string, png []byte) {
	b.t.Helper()
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

func (b *browser) noExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.exceptions) > 0 {
		b.t.Errorf("uncaught exceptions in the page: %v", b.exceptions)
	}
}

// unlabelled lists the visible form controls a screen reader could not
// name.
func (b *browser) unlabelled() []string {
	b.t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input, select, progress, meter, button')]
		.filter((e) => e.getClientRects().length > 0 && e.getAttribute('aria-hidden') !== 'true')
		.filter((e) => e.tagName === 'BUTTON' ? e.textContent.trim() === '' : e.labels.length === 0 && !e.getAttribute('aria-label'))
		.map((e) => e.id || e.outerHTML.slice(0, 80))`))
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// shown is what the page shows, as text.
type shown struct {
	Totals      map[string]string   `json:"totals"`      // element id → text
	Departments map[string][]string `json:"departments"` // code → cells
	Sectors     map[string][]string `json:"sectors"`
	Schools     map[string][]string `json:"schools"` // UAI → cells
	Map         map[string]string   `json:"map"`     // code → title of its shape
	Targets     map[string]string   `json:"targets"` // scope:code:metric → figure
	School      map[string]string   `json:"school"`  // element id → text
	Without     []string            `json:"without"` // pupil ids
}

const readPage = `(() => {
	const text = (ids) => Object.fromEntries(ids.map((id) => [id, document.getElementById(id).textContent]));
	const rows = (id, key) => Object.fromEntries([...document.querySelectorAll('#' + id + ' tbody tr')]
		.map((tr) => [tr.dataset[key], [...tr.cells].map((c) => c.textContent)]));
	return {
		totals: text(['offers-open', 'seats-available', 'seats-total', 'seats-held']),
		departments: rows('by-department', 'code'),
		sectors: rows('by-sector', 'code'),
		schools: rows('by-school', 'uai'),
		map: Object.fromEntries([...document.querySelectorAll('#map path.dep')].map((p) => [p.dataset.dep, p.querySelector('title').textContent])),
		targets: Object.fromEntries([...document.querySelectorAll('#targets li')].map((li) => [li.dataset.target, li.querySelector('.figure').textContent])),
		school: text(['school-registered', 'school-placed', 'school-without', 'school-signed']),
		without: [...document.querySelectorAll('#without tbody tr')].map((tr) => tr.dataset.pupil),
	};
})()`

// digits reads a figure as the page writes it (1 234).
func digits(s string) int {
	n := -1
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n = max(n, 0)*10 + int(r-'0')
		}
	}
	return n
}

// eventually reads the page until diff finds nothing, for at most 8 s (the
// page reads the placements again at most every 3 s), and fails with the
// last differences.
func (b *browser) eventually(what string, diff func(shown) []string) {
	b.t.Helper()
	var problems []string
	for deadline := time.Now().Add(8 * time.Second); ; {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[shown](readPage))
		if err != nil {
			b.t.Fatal(err)
		}
		if problems = diff(s); len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("%s: the page differs from the API:\n%s", what, strings.Join(problems, "\n"))
}

// sameAsAPI compares the statistics, the targets and the placement rates
// shown with the API's answers at position.
func (b *browser) sameAsAPI(c httpclient.Client, position string) {
	b.t.Helper()
	stats := c.Must(200, "GET", "/v1/stats/offers?min_position="+position, nil)
	placements := c.Must(200, "GET", "/v1/stats/placements?min_position="+position, nil)
	b.eventually("statistics", func(s shown) []string {
		var out []string
		check := func(where string, got string, want float64) {
			if digits(got) != int(want) {
				out = append(out, fmt.Sprintf("%s: shown %q, the API says %v", where, got, want))
			}
		}
		for id, field := range map[string]string{"offers-open": "offers_open", "seats-available": "seats_available",
			"seats-total": "seats_total", "seats-held": "seats_held"} {
			check(id, s.Totals[id], num(stats, field))
		}
		out = append(out, sameRows("département", s.Departments, stats["by_department"], "offers_open", "seats_available", "seats_total")...)
		out = append(out, sameRows("sector", s.Sectors, stats["by_sector"], "offers_open", "seats_available")...)
		for code := range stats["by_department"].(map[string]any) {
			_, free, _ := strings.Cut(s.Map[code], " : ")
			check("map "+code, strings.TrimSuffix(free, " places libres"), num(stats, "by_department", code, "seats_available"))
		}
		targets, _ := stats["targets"].([]any)
		if len(targets) != len(s.Targets) || len(targets) == 0 {
			out = append(out, fmt.Sprintf("targets: %d shown, the API has %d", len(s.Targets), len(targets)))
		}
		for _, x := range targets {
			tg := x.(map[string]any)
			key := str(tg, "scope") + ":" + str(tg, "code") + ":" + str(tg, "metric")
			current, rest, _ := strings.Cut(s.Targets[key], " sur ")
			target, _, _ := strings.Cut(rest, " (")
			check("target "+key+" current", current, num(tg, "current"))
			check("target "+key+" target", target, num(tg, "target"))
		}
		return append(out, sameSchools(s.Schools, placements)...)
	})
}

// sameRows compares a table's rows, by code, with an object of figures.
func sameRows(what string, rows map[string][]string, api any, fields ...string) []string {
	var out []string
	m, _ := api.(map[string]any)
	if len(rows) != len(m) {
		out = append(out, fmt.Sprintf("%s: %d rows shown, the API has %d", what, len(rows), len(m)))
	}
	for code, v := range m {
		row, figures := rows[code], v.(map[string]any)
		if len(row) != len(fields)+1 {
			out = append(out, fmt.Sprintf("%s %s: row %q", what, code, row))
			continue
		}
		for i, f := range fields {
			if digits(row[i+1]) != int(num(figures, f)) {
				out = append(out, fmt.Sprintf("%s %s %s: shown %q, the API says %v", what, code, f, row[i+1], figures[f]))
			}
		}
	}
	return out
}

// sameSchools compares the placement table with /v1/stats/placements.
func sameSchools(rows map[string][]string, placements map[string]any) []string {
	var out []string
	schools, _ := placements["by_school"].([]any)
	if len(rows) != len(schools) || len(schools) == 0 {
		out = append(out, fmt.Sprintf("schools: %d rows shown, the API has %d", len(rows), len(schools)))
	}
	for _, x := range schools {
		s := x.(map[string]any)
		row := rows[str(s, "uai")]
		if len(row) != 6 {
			out = append(out, fmt.Sprintf("school %s: row %q", str(s, "uai"), row))
			continue
		}
		for i, f := range []string{"registered", "placed", "signed"} {
			if digits(row[2+i]) != int(num(s, f)) {
				out = append(out, fmt.Sprintf("school %s %s: shown %q, the API says %v", str(s, "uai"), f, row[2+i], s[f]))
			}
		}
		if rate, err := percent(row[5]); err != nil || math.Abs(rate-num(s, "placement_rate")) > 0.0006 {
			out = append(out, fmt.Sprintf("school %s rate: shown %q, the API says %v", str(s, "uai"), row[5], s["placement_rate"]))
		}
	}
	return out
}

// percent reads a rate as the page writes it ("33,3 %").
func percent(s string) (float64, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ',':
			b.WriteRune('.')
		}
	}
	f, err := strconv.ParseFloat(b.String(), 64)
	return f / 100, err
}

// sameSchoolAsAPI compares a school's follow-up with its dashboard.
func (b *browser) sameSchoolAsAPI(c httpclient.Client, school, position string) {
	b.t.Helper()
	d := c.Must(200, "GET", "/v1/schools/"+school+"/dashboard?min_position="+position, nil)
	var without []string
	for _, id := range d["pupils_without_placement"].([]any) {
		without = append(without, id.(string))
	}
	if len(without) == 0 {
		b.t.Fatal("the fixture has no pupil without a placement")
	}
	b.eventually("school "+school, func(s shown) []string {
		var out []string
		for id, field := range map[string]string{"school-registered": "registered", "school-placed": "placed",
			"school-without": "without_placement", "school-signed": "signed"} {
			if digits(s.School[id]) != int(num(d, field)) {
				out = append(out, fmt.Sprintf("%s: shown %q, the API says %v", id, s.School[id], d[field]))
			}
		}
		got := slices.Sorted(slices.Values(s.Without))
		if !slices.Equal(got, without) {
			out = append(out, fmt.Sprintf("pupils without a placement: shown %v, the API says %v", got, without))
		}
		return out
	})
}
