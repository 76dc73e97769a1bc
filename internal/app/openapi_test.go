package app_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/redistest"
)

// openAPIMethods are the HTTP methods an OpenAPI 3.1 path item can hold.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// servedRoutes walks the app's chi router and returns, for
// each route pattern, the methods it serves. A route mounted for every
// method (r.Handle) is reported with the single method "*".
func servedRoutes(t testing.TB, a *app.App) map[string][]string {
	t.Helper()
	byPath := map[string][]string{}
	err := chi.Walk(a.Mux(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !slices.Contains(byPath[route], method) {
			byPath[route] = append(byPath[route], method)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for route, methods := range byPath {
		// chi registers r.Handle for each of its nine methods, CONNECT included.
		if len(methods) >= 9 {
			byPath[route] = []string{"*"}
			continue
		}
		sort.Strings(methods)
	}
	return byPath
}

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody *json.RawMessage           `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

func fetchOpenAPI(t *testing.T, c client) (openAPIDoc, map[string]any) {
	t.Helper()
	r := c.do("GET", "/openapi.json", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openapi.json: content type %q", ct)
	}
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(r.raw), &doc); err != nil {
		t.Fatalf("/openapi.json does not parse: %v", err)
	}
	var generic map[string]any
	if err := json.Unmarshal([]byte(r.raw), &generic); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi is %q, want 3.1.x", doc.OpenAPI)
	}
	return doc, generic
}

// TestOpenAPIDocumentsEveryRoute checks /openapi.json against the real
// router: every served method and path is documented, and every documented
// one is served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	a, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	doc, _ := fetchOpenAPI(t, c)
	served := servedRoutes(t, a)
	if len(served) == 0 {
		t.Fatal("the router serves no route")
	}

	for route, methods := range served {
		item, ok := doc.Paths[route]
		if !ok {
			t.Errorf("%v %s is served but /openapi.json has no path %q", methods, route, route)
			continue
		}
		for _, m := range methods {
			if m == "*" {
				// any method is served: GET at least must be documented
				m = "GET"
			}
			if _, ok := item[strings.ToLower(m)]; !ok {
				t.Errorf("%s %s is served but not documented", m, route)
			}
		}
	}
	for path, item := range doc.Paths {
		methods, ok := served[path]
		if !ok {
			t.Errorf("/openapi.json documents %q, which the router does not serve", path)
			continue
		}
		for key := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue // parameters, summary, description…
			}
			if !slices.Contains(methods, "*") && !slices.Contains(methods, strings.ToUpper(key)) {
				t.Errorf("/openapi.json documents %s %s, which the router does not serve", strings.ToUpper(key), path)
			}
		}
	}
}

// TestOpenAPIIsConsistent checks what the route comparison cannot: every
// operation is named and answers something, path parameters are declared,
// commands take the Idempotency-Key header, queries take min_position, and
// every $ref resolves.
func TestOpenAPIIsConsistent(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	doc, generic := fetchOpenAPI(t, c)
	if len(doc.Paths) == 0 {
		t.Fatal("no paths")
	}
	ids := map[string]string{}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q used by %s and %s", op.OperationID, other, where)
			}
			ids[op.OperationID] = where
			if len(op.Responses) == 0 {
				t.Errorf("%s documents no response", where)
			}
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				switch {
				case p.Ref != "":
					declared[p.Ref[strings.LastIndex(p.Ref, "/")+1:]] = true
				case p.In == "path":
					declared["path:"+p.Name] = true
				}
			}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !declared["path:"+m[1]] {
					t.Errorf("%s does not declare its path parameter %q", where, m[1])
				}
			}
			isV1 := strings.HasPrefix(path, "/v1/")
			if isV1 && method == "post" {
				if !declared["IdempotencyKey"] {
					t.Errorf("%s does not declare the Idempotency-Key header", where)
				}
				if op.RequestBody == nil {
					t.Errorf("%s documents no request body", where)
				}
				for _, code := range []string{"400", "413", "422"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s does not document %s", where, code)
					}
				}
			}
			if isV1 && method == "get" {
				if !declared["MinPosition"] {
					t.Errorf("%s does not declare min_position", where)
				}
				for _, code := range []string{"400", "503"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s does not document %s", where, code)
					}
				}
			}
			if isV1 && pathParam.MatchString(path) {
				if _, ok := op.Responses["404"]; !ok {
					t.Errorf("%s takes an id but does not document 404", where)
				}
			}
		}
	}
	checkRefs(t, generic, generic, "#")
}

// checkRefs fails for every local $ref in v that does not resolve in root.
func checkRefs(t *testing.T, root map[string]any, v any, at string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			if ref, ok := sub.(string); ok && k == "$ref" {
				if !resolves(root, ref) {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
				continue
			}
			checkRefs(t, root, sub, at+"/"+k)
		}
	case []any:
		for _, sub := range x {
			checkRefs(t, root, sub, at+"/[]")
		}
	}
}

func resolves(root map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false // the document is self-contained
	}
	var cur any = root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// contractRoutes are the routes of /work/shared/api-contract.md, version 1.
var contractRoutes = []string{
	"POST /v1/employers",
	"POST /v1/schools",
	"POST /v1/pupils",
	"POST /v1/offers",
	"POST /v1/offers/{id}/withdraw",
	"POST /v1/offers/{id}/applications",
	"POST /v1/applications/{id}/accept",
	"POST /v1/applications/{id}/reject",
	"POST /v1/applications/{id}/withdraw",
	"POST /v1/applications/{id}/confirm",
	"POST /v1/pupils/{id}/forget",
	"POST /v1/conventions/{id}/signatures",
	"GET /v1/offers",
	"GET /v1/offers/{id}",
	"GET /v1/stats/offers",
	"GET /v1/stats/stream",
	"GET /v1/applications/{id}",
	"GET /v1/conventions/{id}",
	"GET /v1/pupils/{id}/applications",
	"GET /v1/employers/{id}/applications",
	"GET /v1/schools/{uai}/dashboard",
	"GET /v1/stats/placements",
	"GET /v1/audit/applications/{id}",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /openapi.json",
}

// TestContractRoutesServed checks that the router serves every route of the
// public contract (so that /openapi.json, which follows the router, covers
// the contract too). Path parameter names may differ.
func TestContractRoutesServed(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	served := map[string]bool{}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for route, methods := range servedRoutes(t, a) {
		for _, m := range methods {
			if m == "*" {
				m = "GET"
			}
			served[m+" "+param.ReplaceAllString(route, "{}")] = true
		}
	}
	for _, r := range contractRoutes {
		if !served[param.ReplaceAllString(r, "{}")] {
			t.Errorf("the contract's %s is not served", r)
		}
	}
}
