package httpclient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"passerelle/internal/testsupport/httpclient"
)

// echo answers with what it received.
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stream" {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTeapot)
	_, _ = w.Write([]byte(`{"path":"` + r.URL.Path + `","query":"` + r.URL.RawQuery + `","auth":"` + r.Header.Get("Authorization") +
		`","type":"` + r.Header.Get("Content-Type") + `","body":` + string(body) + `}`))
}

func TestBothTransportsSendTheSame(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	for name, c := range map[string]httpclient.Client{
		"network":    httpclient.New(t, srv.URL),
		"in-process": httpclient.ForHandler(t, http.HandlerFunc(echo)),
	} {
		c.Token = func(role, subject string) string { return role + "." + subject }
		got := c.As("pupil", "p1").Must(http.StatusTeapot, "POST", "/v1/x?a=1", map[string]any{"k": "v"}, "X-Other", "y")
		want := map[string]any{"path": "/v1/x", "query": "a=1", "auth": "Bearer pupil.p1", "type": "application/json", "body": map[string]any{"k": "v"}}
		body, _ := got["body"].(map[string]any)
		if len(got) != len(want) || got["path"] != want["path"] || got["query"] != want["query"] || got["auth"] != want["auth"] ||
			got["type"] != want["type"] || body["k"] != "v" {
			t.Errorf("%s: echoed %v, want %v", name, got, want)
		}
		if r := c.Do("GET", "/stream", nil); r.Status != http.StatusOK || r.Raw != "<event stream>" {
			t.Errorf("%s: event stream answered %d %q", name, r.Status, r.Raw)
		}
	}
}

// In-process, the path reaches the handler unparsed.
func TestRawPathInProcess(t *testing.T) {
	c := httpclient.ForHandler(t, http.HandlerFunc(echo))
	r := c.Raw("POST", "/v1/a?b/%ZZ", "", `{}`)
	if r.Body["path"] != "/v1/a?b/%ZZ" || r.Body["query"] != "" {
		t.Fatalf("the handler saw %v", r.Body)
	}
}
