package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"unicode/utf8"
)

// clean reports, in one pass over the bytes, that raw holds nothing scan or
// checkKeys would refuse when decoded into t: a valid JSON object in valid
// UTF-8 with no NUL byte and no \u escape (whose decoding scan checks), no
// key given twice in any object, and in each object decoded into a struct
// only its fields, the required ones present. Most bodies are clean, and
// scan and checkKeys each parse the body again (through json.Decoder's
// tokens and maps of raw messages), which cost more than decoding it. When
// clean is not sure it says false, and the full checks name the problem.
func clean(raw []byte, t reflect.Type) bool {
	if !json.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 || !utf8.Valid(raw) || bytes.Contains(raw, []byte(`\u`)) {
		return false
	}
	w := walker{raw: raw}
	w.space()
	return w.raw[w.i] == '{' && w.value(t)
}

// walker walks a body json.Valid accepted.
type walker struct {
	raw []byte
	i   int
}

func (w *walker) space() {
	for w.i < len(w.raw) {
		switch w.raw[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value walks the value at w.i, checked as checkKeys checks type t (nil:
// no type, only its objects' keys are checked for duplicates).
func (w *walker) value(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	w.space()
	switch w.raw[w.i] {
	case '{':
		if t != nil && t.Kind() != reflect.Struct {
			t = nil
		}
		return w.object(t)
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		return w.array(elem)
	case '"':
		w.str()
	default: // a number, true, false or null
		for w.i < len(w.raw) && bytes.IndexByte([]byte(",]} \t\n\r"), w.raw[w.i]) < 0 {
			w.i++
		}
	}
	return true
}

func (w *walker) array(elem reflect.Type) bool {
	w.i++ // [
	w.space()
	if w.raw[w.i] == ']' {
		w.i++
		return true
	}
	for {
		if !w.value(elem) {
			return false
		}
		w.space()
		w.i++ // , or ]
		if w.raw[w.i-1] == ']' {
			return true
		}
	}
}

// object walks an object decoded into struct type t (nil: not a struct).
func (w *walker) object(t reflect.Type) bool {
	var fields structFields
	if t != nil {
		fields = fieldsOf(t)
	}
	var keys [][]byte
	required := 0
	w.i++ // {
	for {
		w.space()
		if w.raw[w.i] == '}' {
			w.i++
			break
		}
		if w.raw[w.i] == ',' {
			w.i++
			w.space()
		}
		start := w.i + 1
		w.str()
		key := w.raw[start : w.i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false // an escaped key: the full checks decode it
		}
		keys = append(keys, key)
		var ft reflect.Type
		if t != nil {
			f, ok := fields.known[string(key)]
			if !ok {
				return false
			}
			if f.Tag.Get("required") == "true" {
				required++
			}
			ft = f.Type
		}
		w.space()
		w.i++ // :
		if !w.value(ft) {
			return false
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i], keys[i-1]) {
			return false
		}
	}
	return required == len(fields.required)
}

// str moves past the string at w.i.
func (w *walker) str() {
	for w.i++; w.raw[w.i] != '"'; w.i++ {
		if w.raw[w.i] == '\\' {
			w.i++
		}
	}
	w.i++
}
