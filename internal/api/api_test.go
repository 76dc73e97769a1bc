package api

import (
	"errors"
	"net/http"
	"testing"
)

type item struct {
	Name string   `json:"name"`
	Lat  *float64 `json:"lat" required:"true"`
}

type body struct {
	Title string `json:"title"`
	Items []item `json:"items"`
	Main  *item  `json:"main"`
	Flag  bool   `json:"flag" required:"true"`
	skip  string //nolint:unused // unexported: never a JSON field
	Note  string `json:"-"`
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
