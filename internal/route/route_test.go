package route_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"passerelle/internal/api"
	"passerelle/internal/route"
)

func TestBodyFields(t *testing.T) {
	type body struct {
		Name     string  `json:"name"`
		Code     string  `json:"code,omitempty"`
		Lat      float64 `json:"lat,omitempty" required:"true"` // required wins
		Internal string  `json:"-"`
		Untagged string  // no json tag: not a field of the body
	}
	fields, required := route.BodyFields(reflect.TypeFor[*body]())
	if !slices.Equal(fields, []string{"name", "code", "lat"}) || !slices.Equal(required, []string{"name", "lat"}) {
		t.Fatalf("fields %v, required %v", fields, required)
	}
	if f, r := route.BodyFields(nil); f != nil || r != nil {
		t.Fatalf("no body: %v %v", f, r)
	}
}

func TestPathParams(t *testing.T) {
	got := route.Route{Pattern: "/v1/schools/{uai}/pupils/{id}"}.PathParams()
	if !slices.Equal(got, []string{"uai", "id"}) {
		t.Fatalf("%v", got)
	}
}

func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

func TestStrictQueryRefusesOtherParameters(t *testing.T) {
	mux := chi.NewRouter()
	route.Mount(mux, []route.Route{
		{Method: "GET", Pattern: "/strict", Query: []string{"page"}, StrictQuery: true, Handler: http.HandlerFunc(ok)},
		{Method: "GET", Pattern: "/lenient", Query: []string{"page"}, Handler: http.HandlerFunc(ok)},
	})
	for _, c := range []struct {
		target string
		status int
		names  string
	}{
		{"/strict?page=2", 204, ""},
		{"/strict?zeta=1&alpha=2&page=1", 400, `"alpha"`}, // the first in alphabetical order
		{"/lenient?zeta=1", 204, ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", c.target, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.names) {
			t.Errorf("GET %s: %d %s, want %d naming %s", c.target, rec.Code, rec.Body, c.status, c.names)
		}
	}
}

func TestMountRefusesADuplicate(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "GET /x") {
			t.Fatalf("no panic naming the route: %v", v)
		}
	}()
	r := route.Route{Method: "GET", Pattern: "/x", Handler: http.HandlerFunc(ok)}
	route.Mount(chi.NewRouter(), []route.Route{r, r})
}

// A route that reads parameters parses the query once: its handler gets
// the values its checks parsed (api.Query), not a parse of its own.
func TestHandlerReadsTheQueryParsedOnce(t *testing.T) {
	var parsedOnce bool
	var page string
	mux := chi.NewRouter()
	route.Mount(mux, []route.Route{{Method: "GET", Pattern: "/q", Query: []string{"page"}, StrictQuery: true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// r.URL.Query() parses anew at each call: the same map twice was parsed before
			first, second := api.Query(r), api.Query(r)
			parsedOnce = reflect.ValueOf(first).Pointer() == reflect.ValueOf(second).Pointer()
			page = api.Query(r).Get("page")
			ok(w, r)
		})}})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/q?page=3", nil))
	if rec.Code != http.StatusNoContent || !parsedOnce || page != "3" {
		t.Errorf("GET /q?page=3: %d, parsed once %v, page %q", rec.Code, parsedOnce, page)
	}
}
