// Package dashboard serves the page people look at, at GET /: live offer
// and seat counts, a map of France, campaign targets, placement rates and a
// school's own follow-up. The page is plain HTML, CSS and JavaScript
// embedded in the binary (no build step, nothing fetched from elsewhere);
// it reads the public API with the token pasted into it, like any client.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain/refdata"
	"passerelle/internal/api"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

//go:embed assets
var files embed.FS

// csp lets the page load only its own assets and talk only to its own
// origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Routes are the page and its assets, open to all: the data they show is
// read from the API, which asks for the token.
func Routes() []route.Route {
	const get = http.MethodGet
	return []route.Route{
		{Method: get, Pattern: "/", Status: http.StatusOK, Summary: "The dashboard page", Allow: authz.Open,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, "index.html") })},
		{Method: get, Pattern: "/assets/{name}", Status: http.StatusOK, Summary: "A file of the dashboard page", Allow: authz.Open,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				name := chi.URLParam(r, "name")
				if name == "index.html" {
					name = "" // served at / only
				}
				serve(w, r, name)
			})},
	}
}

// asset is a file of the page, ready to serve.
type asset struct {
	body []byte
	etag string
}

var (
	loadOnce sync.Once
	assets   map[string]asset
)

// load reads the embedded files and draws the generated ones once: the map
// and the names of départements and sectors, from the reference data.
func load() map[string]asset {
	loadOnce.Do(func() {
		assets = map[string]asset{}
		add := func(name string, body []byte) {
			sum := sha256.Sum256(body)
			assets[name] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		}
		entries, _ := fs.ReadDir(files, "assets") // embedded: read at build time
		for _, e := range entries {
			b, _ := fs.ReadFile(files, "assets/"+e.Name())
			add(e.Name(), b)
		}
		ref := refdata.MustLoad()
		add("france.svg", franceSVG(ref))
		add("refdata.json", names(ref))
	})
	return assets
}

// names are the départements' and sectors' names by code, for the page.
func names(ref *refdata.Data) []byte {
	out := struct {
		Departments map[string]string `json:"departments"`
		Sectors     map[string]string `json:"sectors"`
	}{map[string]string{}, map[string]string{}}
	for code, d := range ref.Departments {
		out.Departments[code] = d.Name
	}
	for code, s := range ref.Sectors {
		out.Sectors[code] = s.Name
	}
	b, _ := json.Marshal(out) // maps of strings
	return b
}

// serve writes the asset name, revalidated by its ETag rather than kept
// (a new binary may change it).
func serve(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := load()[name]
	if !ok {
		api.WriteError(w, r, api.Errorf(http.StatusNotFound, "not_found", "no asset %q", name))
		return
	}
	h := w.Header()
	typ := mime.TypeByExtension(path.Ext(name))
	if typ == "" {
		typ = "application/octet-stream"
	}
	h.Set("Content-Type", typ)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Content-Security-Policy", csp)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
