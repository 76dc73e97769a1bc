package app_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"passerelle/internal/app"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// openAPIMethods are the HTTP methods an OpenAPI 3.1 path item can hold.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestRouterServesTheDeclaredRoutes: nothing is mounted beside the list,
// so the list is what the tests below hold the document and the guard to.
func TestRouterServesTheDeclaredRoutes(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	declared := map[string]bool{}
	for _, rt := range a.Routes() {
		declared[rt.Key()] = true
	}
	served := map[string]bool{}
	err = chi.Walk(a.Mux(), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+pattern] = true
		if !declared[method+" "+pattern] {
			t.Errorf("%s %s is served but not declared", method, pattern)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range declared {
		if !served[key] {
			t.Errorf("%s is declared but not served", key)
		}
	}
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

func fetchOpenAPI(t *testing.T, c httpclient.Client) (openAPIDoc, map[string]any) {
	t.Helper()
	r := c.Do("GET", "/openapi.json", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openapi.json: content type %q", ct)
	}
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(r.Raw), &doc); err != nil {
		t.Fatalf("/openapi.json does not parse: %v", err)
	}
	var generic map[string]any
	if err := json.Unmarshal([]byte(r.Raw), &generic); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi is %q, want 3.1.x", doc.OpenAPI)
	}
	return doc, generic
}

// TestOpenAPIDocumentsEveryRoute holds /openapi.json to the declared
// routes, field by field: every route is documented with its summary, path
// parameters, query parameters, request body (properties = the JSON fields
// of the body type, required = those not omitempty; nested objects by
// property names) and success status, and nothing else is documented.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	a, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	doc, generic := fetchOpenAPI(t, c)
	routes := a.Routes()
	if len(routes) == 0 {
		t.Fatal("no route is declared")
	}
	declared := map[string]bool{}
	for _, rt := range routes {
		declared[rt.Key()] = true
		raw, ok := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s is declared but /openapi.json does not document it", rt.Key())
			continue
		}
		var op map[string]any
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s: %v", rt.Key(), err)
		}
		checkOperation(t, generic, rt, op)
	}
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains(openAPIMethods, method) && !declared[strings.ToUpper(method)+" "+path] {
				t.Errorf("/openapi.json documents %s %s, which is not a declared route", strings.ToUpper(method), path)
			}
		}
	}
}

// checkOperation compares one documented operation with its declaration.
func checkOperation(t *testing.T, root map[string]any, rt route.Route, op map[string]any) {
	t.Helper()
	where := rt.Key()
	if op["summary"] != rt.Summary {
		t.Errorf("%s: summary %q documented, %q declared", where, op["summary"], rt.Summary)
	}
	var path, query []string
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		pm, _ := deref(root, p).(map[string]any)
		name, _ := pm["name"].(string)
		switch pm["in"] {
		case "path":
			path = append(path, name)
		case "query":
			query = append(query, name)
		}
	}
	sameSet(t, where+": path parameters", path, rt.PathParams())
	sameSet(t, where+": query parameters", query, rt.Query)

	var success []string
	responses, _ := op["responses"].(map[string]any)
	for code := range responses {
		if strings.HasPrefix(code, "2") {
			success = append(success, code)
		}
	}
	sameSet(t, where+": success statuses", success, []string{strconv.Itoa(rt.Status)})

	rb, hasBody := op["requestBody"].(map[string]any)
	if rt.Method != http.MethodPost && rt.Method != http.MethodPatch {
		if hasBody {
			t.Errorf("%s documents a request body", where)
		}
		return
	}
	if !hasBody {
		t.Errorf("%s documents no request body", where)
		return
	}
	if required, _ := rb["required"].(bool); required == rt.OptionalBody {
		t.Errorf("%s: requestBody.required is %v, but the declared body is optional: %v", where, required, rt.OptionalBody)
	}
	schema, _ := deref(root, dig(rb, "content", "application/json", "schema")).(map[string]any)
	if schema == nil {
		t.Errorf("%s: no application/json schema for the request body", where)
		return
	}
	if schema["additionalProperties"] != false {
		t.Errorf("%s: the request body schema allows additional properties; bodies are strict", where)
	}
	fields, required := route.BodyFields(rt.Body)
	sameSet(t, where+": body properties", keys(schema["properties"]), fields)
	sameSet(t, where+": required body properties", strs(schema["required"]), required)
	checkNested(t, root, where+": body", rt.Body, schema)
}

// checkNested compares the properties of the objects inside a body with
// the JSON fields of the Go types they decode into (by name: the nested
// domain types say nothing about which are required).
func checkNested(t *testing.T, root map[string]any, where string, typ reflect.Type, schema map[string]any) {
	t.Helper()
	if typ == nil {
		return
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	props, _ := schema["properties"].(map[string]any)
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct || props[name] == nil {
			continue
		}
		sub := objectSchema(root, props[name])
		if sub == nil {
			t.Errorf("%s.%s decodes into an object, the document has no object schema for it", where, name)
			continue
		}
		fields, _ := route.BodyFields(ft)
		sameSet(t, where+"."+name+" properties", keys(sub["properties"]), fields)
		checkNested(t, root, where+"."+name, ft, sub)
	}
}

// objectSchema follows $ref, allOf, anyOf/oneOf (the non-null branch) and
// array items down to the schema that has properties.
func objectSchema(root map[string]any, v any) map[string]any {
	m, _ := deref(root, v).(map[string]any)
	if m == nil {
		return nil
	}
	if _, ok := m["properties"]; ok {
		return m
	}
	if items, ok := m["items"]; ok {
		return objectSchema(root, items)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		list, _ := m[k].([]any)
		for _, x := range list {
			if sub := objectSchema(root, x); sub != nil {
				return sub
			}
		}
	}
	return nil
}

// deref follows a local $ref.
func deref(root map[string]any, v any) any {
	for range 10 {
		m, ok := v.(map[string]any)
		ref, isRef := m["$ref"].(string)
		if !ok || !isRef || !strings.HasPrefix(ref, "#/") {
			return v
		}
		v = root
		for _, part := range strings.Split(ref[2:], "/") {
			cur, _ := v.(map[string]any)
			v = cur[part]
		}
	}
	return v
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func sameSet(t *testing.T, what string, documented, declared []string) {
	t.Helper()
	d, g := slices.Sorted(slices.Values(documented)), slices.Sorted(slices.Values(declared))
	if !slices.Equal(slices.Compact(d), slices.Compact(g)) {
		t.Errorf("%s: documented %v, declared %v", what, d, g)
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
				for _, code := range []string{"400", "413", "415", "422"} {
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

// TestContractRoutesServed checks that every route of the public contract
// is declared (so served, and documented: see above). Path parameter names
// may differ.
func TestContractRoutesServed(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	served := map[string]bool{}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, rt := range a.Routes() {
		served[rt.Method+" "+param.ReplaceAllString(rt.Pattern, "{}")] = true
	}
	for _, r := range contractRoutes {
		if !served[param.ReplaceAllString(r, "{}")] {
			t.Errorf("the contract's %s is not served", r)
		}
	}
}
