package dashboard_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"passerelle/domain/refdata"
	"passerelle/internal/dashboard"
	"passerelle/internal/route"
)

func serve(t *testing.T) *chi.Mux {
	t.Helper()
	r := chi.NewRouter()
	route.Mount(r, dashboard.Routes())
	return r
}

func get(h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The page and every file it loads are served from the binary, with their
// types and a policy that lets the page load nothing from elsewhere.
func TestPageAndAssets(t *testing.T) {
	h := serve(t)
	page := get(h, "/")
	if page.Code != http.StatusOK || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("content security policy %q", csp)
	}
	body := page.Body.String()
	if !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, `name="viewport"`) {
		t.Error("the page names no language or viewport")
	}
	// everything the page refers to is one of its assets, none elsewhere
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 2 {
		t.Fatalf("the page loads %d files", len(refs))
	}
	for _, m := range refs {
		if m[1] == "/openapi.json" {
			continue
		}
		if !strings.HasPrefix(m[1], "/assets/") {
			t.Errorf("the page refers to %s, outside its assets", m[1])
			continue
		}
		if rec := get(h, m[1]); rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d", m[1], rec.Code)
		}
	}
	types := map[string]string{"app.js": "text/javascript", "style.css": "text/css", "france.svg": "image/svg+xml", "refdata.json": "application/json"}
	for name, typ := range types {
		rec := get(h, "/assets/"+name)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), typ) {
			t.Errorf("GET /assets/%s: %d %q, want %s", name, rec.Code, rec.Header().Get("Content-Type"), typ)
		}
		etag := rec.Header().Get("ETag")
		if again := get(h, "/assets/"+name, "If-None-Match", etag); etag == "" || again.Code != http.StatusNotModified {
			t.Errorf("GET /assets/%s with its ETag %q: %d, want 304", name, etag, again.Code)
		}
	}
	for _, name := range []string{"nope.js", "index.html", "..%2fdashboard.go"} {
		rec := get(h, "/assets/"+name)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"not_found"`) {
			t.Errorf("GET /assets/%s: %d %s, want a 404 not_found", name, rec.Code, rec.Body)
		}
	}
}

// The map has a shape for every département, titled with its name, and
// names of départements and sectors come from the reference data.
func TestMapAndNames(t *testing.T) {
	ref := refdata.MustLoad()
	svg := get(serve(t), "/assets/france.svg").Body.Bytes()
	var doc struct {
		Paths []struct {
			Class string `xml:"class,attr"`
			Dep   string `xml:"data-dep,attr"`
			D     string `xml:"d,attr"`
			Title string `xml:"title"`
		} `xml:"g>path"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("the map is not XML: %v", err)
	}
	drawn := map[string]int{}
	for _, p := range doc.Paths {
		x, ok := ref.Department(p.Dep)
		if !ok || p.Class != "dep" || !strings.HasPrefix(p.D, "M") || p.Title != p.Dep+" "+x.Name {
			t.Errorf("shape %q: class %q, title %q, path %.20q", p.Dep, p.Class, p.Title, p.D)
		}
		drawn[p.Dep]++
	}
	for code := range ref.Departments {
		if drawn[code] == 0 {
			t.Errorf("département %s is not on the map", code)
		}
	}
	// Île-de-France is drawn twice: on the whole map and zoomed in
	if drawn["94"] != 2 || drawn["13"] != 1 {
		t.Errorf("94 drawn %d times, 13 drawn %d times", drawn["94"], drawn["13"])
	}
	var names struct {
		Departments map[string]string `json:"departments"`
		Sectors     map[string]string `json:"sectors"`
	}
	if err := json.Unmarshal(get(serve(t), "/assets/refdata.json").Body.Bytes(), &names); err != nil {
		t.Fatal(err)
	}
	if len(names.Departments) != len(ref.Departments) || names.Departments["94"] != "Val-de-Marne" ||
		len(names.Sectors) != len(ref.Sectors) || names.Sectors["s1"] != "Agroéquipement" {
		t.Errorf("names: %d départements (94: %q), %d sectors (s1: %q)", len(names.Departments), names.Departments["94"],
			len(names.Sectors), names.Sectors["s1"])
	}
}
