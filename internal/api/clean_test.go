package api

import (
	"reflect"
	"testing"
)

// cleanSeeds are bodies clean must judge as the full checks do.
var cleanSeeds = []string{
	`{"flag":false,"items":[{"name":"a","lat":0}],"main":null}`,
	`{"flag":true,"items":[{"lat":1},{"lat":2}],"main":{"lat":3}}`,
	` {"flag" : true , "tags" : [ "a" , "b\"}" ], "count": -1.5e3, "main": {"lat": 1, "name": "\\"}} `,
	`{"Title":"x","flag":true}`, `{"flag":true,"items":[{"lat":1},{"nme":"b","lat":1}]}`, `{"flag":true,"main":{"lat":1,"x":2}}`,
	`{"flag":true,"Note":"n"}`, `{"title":"x"}`, `{"flag":true,"items":[{"name":"a"}]}`, `{"flag":"yes"}`, `{"flag":true}]`, `[1]`,
	"{\"flag\":true,\"title\":\"ab\xffcd\"}", `{"flag":true,"title":"a\ud800b"}`, `{"flag":true,"title":"a\ufffd � b"}`,
	"{\"flag\":true,\"main\":{\"lat\":1,\"name\":\"a\x00b\"}}", `{"flag":true,"title":"a","title":"b"}`,
	`{"flag":true,"items":[{"lat":1,"lat":2}]}`, `{"flag":true,"items":{"lat":1}}`, `{"flag":true,"main":[{"lat":1,"lat":1}]}`,
	`{"flag":true,"tags":[{"a":1,"a":2}]}`, `{"flag":true,"ti\"tle":1}`, `{"flag":true,"title":"x","count":{"a":[1,{"b":2,"b":3}]}}`,
	`{"flag":true,"items":[]}`, `{}`, `{"flag":true,"main":{}}`,
}

// What clean passes, the full checks pass: it only ever skips them.
func TestCleanAgreesWithChecks(t *testing.T) {
	for _, raw := range cleanSeeds {
		agree(t, []byte(raw))
	}
	// and it passes the common case, or it saves nothing
	for _, raw := range cleanSeeds[:3] {
		if !clean([]byte(raw), reflect.TypeFor[*body]()) {
			t.Errorf("%s: not judged clean", raw)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, raw := range cleanSeeds {
		f.Add([]byte(raw))
	}
	f.Fuzz(agree)
}

func agree(t *testing.T, raw []byte) {
	typ := reflect.TypeFor[*body]()
	if !clean(raw, typ) {
		return
	}
	if err := scan(raw); err != nil {
		t.Fatalf("%q: clean, but scan says %v", raw, err)
	}
	if err := checkKeys(raw, typ, ""); err != nil {
		t.Fatalf("%q: clean, but checkKeys says %v", raw, err)
	}
}

// BenchmarkUnmarshal decodes a command body as Unmarshal does (clean, then
// decode) and, as the baseline in the same run, with the full checks it
// skips when the body is clean.
func BenchmarkUnmarshal(b *testing.B) {
	raw := []byte(`{"flag":true,"title":"Découverte du fournil","count":2,"tags":["3e","2de"],` +
		`"items":[{"name":"Pétrissage, cuisson, vente","lat":48.8566},{"name":"b","lat":2.3522}],"main":{"name":"a","lat":1}}`)
	typ := reflect.TypeFor[*body]()
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v body
			if err := Unmarshal(raw, &v, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-checks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v body
			if scan(raw) != nil || checkKeys(raw, typ, "") != nil || Unmarshal(raw, &v, false) != nil {
				b.Fatal("refused")
			}
		}
	})
}
