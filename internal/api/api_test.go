package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

type item struct {
	Name string   `json:"name"`
	Lat  *float64 `json:"lat" required:"true"`
}

type body struct {
	Title string   `json:"title"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
	Items []item   `json:"items"`
	Main  *item    `json:"main"`
	Flag  bool     `json:"flag" required:"true"`
	skip  string   //nolint:unused // unexported: never a JSON field
	Note  string   `json:"-"`
}

// A strict body names the offending field, however deep, with its status.
func TestUnmarshalNamesTheField(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		status    int
		field     string
	}{
		{"valid", `{"flag":false,"items":[{"name":"a","lat":0}],"main":null}`, 0, ""},
		{"empty allowed", ``, 0, ""},
		{"case differs", `{"Title":"x","flag":true}`, http.StatusBadRequest, "Title"},
		{"unknown in an array item", `{"flag":true,"items":[{"lat":1},{"nme":"b","lat":1}]}`, http.StatusBadRequest, "items[1].nme"},
		{"unknown in an object", `{"flag":true,"main":{"lat":1,"x":2}}`, http.StatusBadRequest, "main.x"},
		{"ignored field", `{"flag":true,"Note":"n"}`, http.StatusBadRequest, "Note"},
		{"missing required", `{"title":"x"}`, http.StatusUnprocessableEntity, "flag"},
		{"missing required deep", `{"flag":true,"items":[{"name":"a"}]}`, http.StatusUnprocessableEntity, "items[0].lat"},
		{"wrong type", `{"flag":"yes"}`, http.StatusBadRequest, "flag"},
		{"trailing data", `{"flag":true}]`, http.StatusBadRequest, "body"},
		{"not an object", `[1]`, http.StatusBadRequest, "body"},
		{"invalid UTF-8", "{\"flag\":true,\"title\":\"ab\xffcd\"}", http.StatusBadRequest, "title"},
		{"invalid UTF-8 deep", "{\"flag\":true,\"items\":[{\"lat\":1},{\"lat\":1,\"name\":\"\xc3\"}]}", http.StatusBadRequest, "items[1].name"},
		{"invalid UTF-8 in a list", "{\"flag\":true,\"tags\":[\"a\",\"\xe2\x82\"]}", http.StatusBadRequest, "tags[1]"},
		{"invalid UTF-8 in a key", "{\"flag\":true,\"ti\xfftle\":\"x\"}", http.StatusBadRequest, "ti\ufffdtle"},
		{"an unpaired surrogate", `{"flag":true,"title":"a\ud800b"}`, http.StatusBadRequest, "title"},
		{"a replacement character sent", `{"flag":true,"title":"a\ufffd � b"}`, 0, ""},
		{"escaped NUL", `{"flag":true,"title":"a\u0000b"}`, http.StatusBadRequest, "title"},
		{"raw NUL", "{\"flag\":true,\"main\":{\"lat\":1,\"name\":\"a\x00b\"}}", http.StatusBadRequest, "main.name"},
		{"raw NUL in a key", "{\"flag\":true,\"ti\x00tle\":\"x\"}", http.StatusBadRequest, `ti\u0000tle`},
		{"NUL in a key", `{"flag":true,"ti\u0000tle":"x"}`, http.StatusBadRequest, `ti\u0000tle`},
		{"duplicate key", `{"flag":true,"title":"a","title":"b"}`, http.StatusBadRequest, "title"},
		{"duplicate key deep", `{"flag":true,"items":[{"lat":1,"lat":2}]}`, http.StatusBadRequest, "items[0].lat"},
		{"same key in two objects", `{"flag":true,"items":[{"lat":1},{"lat":2}],"main":{"lat":3}}`, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b body
			err := Unmarshal([]byte(c.raw), &b, true)
			var e *Error
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case c.status == 0:
			case !errors.As(err, &e) || e.Status != c.status || e.Fields[c.field] == "":
				t.Fatalf("error %#v, want %d naming %q", err, c.status, c.field)
			}
		})
	}
}

// Type errors speak the contract's words, never Go's.
func TestTypeErrorsInContractWords(t *testing.T) {
	for _, c := range []struct{ raw, field, want string }{
		{`{"flag":true,"count":1.5}`, "count", "must be a whole number"},
		{`{"flag":true,"count":"2"}`, "count", "must be a whole number"},
		{`{"flag":true,"count":1e400}`, "count", "must be a whole number"},
		{`{"flag":true,"count":99999999999999999999}`, "count", "is out of range"},
		{`{"flag":"yes"}`, "flag", "must be true or false"},
		{`{"flag":true,"title":5}`, "title", "must be a string"},
		{`{"flag":true,"tags":"a"}`, "tags", "must be a JSON array"},
		{`{"flag":true,"main":[]}`, "main", "must be a JSON object"},
		{`{"flag":true,"items":[{"lat":"north"}]}`, "items.lat", "must be a number"},
		{`{"flag":true,"items":[{"lat":1e999}]}`, "items.lat", "is out of range"},
		{`[{"name":"x"}]`, "body", "must be a JSON object"},
	} {
		var b body
		err := Unmarshal([]byte(c.raw), &b, false)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Fields[c.field] != c.want {
			t.Errorf("%s: %v, want %s: %s", c.raw, err, c.field, c.want)
			continue
		}
		for _, goWord := range []string{"int", "float", "struct", "string \"", "bool", "[]", "type"} {
			if strings.Contains(e.Message, goWord) {
				t.Errorf("%s: the message %q speaks Go (%q)", c.raw, e.Message, goWord)
			}
		}
	}
}

// A body must be declared JSON; an empty one needs no type.
func TestReadBodyWantsJSON(t *testing.T) {
	for _, c := range []struct {
		contentType, body string
		status            int
	}{
		{"application/json", `{}`, 0},
		{"application/json; charset=utf-8", `{}`, 0},
		{"Application/JSON; charset=UTF-8", `{}`, 0},
		{"", ``, 0},
		{"text/plain", ``, 0},
		{"", `{}`, http.StatusUnsupportedMediaType},
		{"text/plain", `{}`, http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", `{}`, http.StatusUnsupportedMediaType},
		{"application/json; charset=latin1", `{}`, http.StatusUnsupportedMediaType},
		{"application/jsonx", `{}`, http.StatusUnsupportedMediaType},
		{"application/json;;", `{}`, http.StatusUnsupportedMediaType},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		_, err := ReadBody(httptest.NewRecorder(), r)
		var e *Error
		switch {
		case c.status == 0 && err != nil:
			t.Errorf("%q %q: refused: %v", c.contentType, c.body, err)
		case c.status != 0 && (!errors.As(err, &e) || e.Status != c.status || e.Code != "unsupported_media_type"):
			t.Errorf("%q %q: %v, want %d unsupported_media_type", c.contentType, c.body, err, c.status)
		}
	}
}

// Whatever the body, Unmarshal answers without panicking, with a contract
// error when it refuses; what it accepts is valid UTF-8 without NUL, and
// decodes to what encoding/json reads from it.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{`{"flag":true}`, "{\"flag\":true,\"title\":\"a\xffb\"}", `{"flag":true,"title":"\u0000"}`,
		`{"flag":true,"items":[{"lat":1,"lat":2}]}`, `{"flag":true,"tags":["a","\ud800"]}`, "{\"fl\x00ag\":1}", `[`, `{"main":{"name":"x"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b body
		err := Unmarshal(raw, &b, true)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 || len(e.Fields) == 0 {
				t.Fatalf("%q: %#v is not a contract error naming a field", raw, err)
			}
			return
		}
		if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
			t.Fatalf("%q: accepted invalid UTF-8 or a NUL byte", raw)
		}
		if strings.ContainsRune(b.Title, 0) || strings.Contains(b.Title, "\uFFFD") && !strings.Contains(strings.ToLower(string(raw)), `\ufffd`) && !bytes.Contains(raw, []byte("\uFFFD")) {
			t.Fatalf("%q: accepted a title %q the client did not send", raw, b.Title)
		}
	})
}

// A request whose client went away is answered 499 and not logged as a
// failure; an operation canceled under a request still live is a 500,
// logged.
func TestClientClosedIsNoFailure(t *testing.T) {
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	WriteError(w, httptest.NewRequest(http.MethodGet, "/v1/desk/pupils", nil).WithContext(gone), fmt.Errorf("waiting for the index: %w", context.Canceled))
	if w.Code != StatusClientClosed || !strings.Contains(w.Body.String(), `"client_closed"`) || logged.Len() > 0 {
		t.Fatalf("client gone: %d %s, logged %q", w.Code, w.Body, logged.String())
	}
	w = httptest.NewRecorder()
	WriteError(w, httptest.NewRequest(http.MethodGet, "/v1/desk/pupils", nil), fmt.Errorf("waiting for the index: %w", context.Canceled))
	if w.Code != http.StatusInternalServerError || !strings.Contains(logged.String(), "request failed") {
		t.Fatalf("client still there: %d %s, logged %q", w.Code, w.Body, logged.String())
	}
}
