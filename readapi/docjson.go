package readapi

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A read model stores each document as json.Marshal wrote it, and a query
// used to decode it and encode it again into its answer. docSchema copies
// a stored document into an answer as it is, byte for byte what decoding
// and encoding it again would give (encoding/json, HTML characters left
// unescaped), without decoding it: its strings, numbers and keys are
// checked against the Go type it was encoded from, and a document that
// encoding it again would change in any way (a key out of place or
// unknown, a number or a time in another form, an empty value an
// omitempty field would drop, an escape written otherwise) is refused,
// for the caller to decode and encode in full.

// docKind is the JSON form of a Go type.
type docKind uint8

const (
	kString docKind = iota
	kInt
	kFloat
	kBool
	kTime
	kStruct
	kSlice
	kMap
	kPtr
)

// docSchema is what json.Marshal writes for one Go type.
type docSchema struct {
	kind   docKind
	fields []docField // of a struct, in the order they are written
	elem   *docSchema // of a slice, a map or a pointer
}

// docField is a field of a struct as it is written.
type docField struct {
	name      string
	omitEmpty bool
	schema    *docSchema
}

var timeType = reflect.TypeFor[time.Time]()

// schemaOf is the schema of t. It panics on a type it cannot pass through
// exactly (a custom marshaller, an interface, unsigned numbers, bytes):
// the types it is built for are fixed when the program is built.
func schemaOf(t reflect.Type) *docSchema {
	s := &docSchema{}
	if t == timeType {
		s.kind = kTime
		return s
	}
	if t.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		t.Implements(reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()) {
		panic(fmt.Sprintf("readapi: %s marshals itself: its documents cannot be passed through", t))
	}
	switch t.Kind() {
	case reflect.String:
		s.kind = kString
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		s.kind = kInt
	case reflect.Float64:
		s.kind = kFloat
	case reflect.Bool:
		s.kind = kBool
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			panic(fmt.Sprintf("readapi: %s is written in base64", t))
		}
		s.kind, s.elem = kSlice, schemaOf(t.Elem())
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Key().Implements(reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()) {
			panic(fmt.Sprintf("readapi: %s has keys that are not strings", t))
		}
		s.kind, s.elem = kMap, schemaOf(t.Elem())
	case reflect.Pointer:
		s.kind, s.elem = kPtr, schemaOf(t.Elem())
	case reflect.Struct:
		s.kind = kStruct
		s.fields = structFields(t)
	default:
		panic(fmt.Sprintf("readapi: %s cannot be passed through", t))
	}
	return s
}

// structFields are the fields of struct t as encoding/json writes them.
func structFields(t reflect.Type) []docField {
	var fields []docField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			if f.Anonymous {
				panic(fmt.Sprintf("readapi: %s embeds %s", t, f.Type))
			}
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || !isPlainKey(name) {
			panic(fmt.Sprintf("readapi: %s.%s has no plain JSON name", t, f.Name))
		}
		o := "," + opts + ","
		if strings.Contains(o, ",string,") || strings.Contains(o, ",omitzero,") {
			panic(fmt.Sprintf("readapi: %s.%s has options not passed through", t, f.Name))
		}
		fs := schemaOf(f.Type)
		// omitempty leaves structs (and times) in
		omit := strings.Contains(o, ",omitempty,") && fs.kind != kStruct && fs.kind != kTime
		fields = append(fields, docField{name: name, omitEmpty: omit, schema: fs})
	}
	return fields
}

// isPlainKey reports whether a key is written as it is, without escapes.
func isPlainKey(k string) bool {
	for i := range len(k) {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// field is the index of the field named key from index from on, -1 when
// none.
func (s *docSchema) field(key string, from int) int {
	for i := from; i < len(s.fields); i++ {
		if s.fields[i].name == key {
			return i
		}
	}
	return -1
}

// docWriter copies one document, checking it as it goes.
type docWriter struct {
	in  string
	i   int
	out []byte
}

// appendDoc appends to dst the document raw, encoded from a value of s's
// type, with extra written as the value of the field at index at (when
// extra is not nil; raw must not hold that field), as encoding it again
// would give. ok is false when it would not be the same: dst is then
// returned as it was.
func (s *docSchema) appendDoc(dst []byte, raw string, at int, extra []byte) (out []byte, ok bool) {
	w := docWriter{in: raw, out: dst}
	if w.skipSpace(); !w.object(s, at, extra) {
		return dst, false
	}
	if w.skipSpace(); w.i != len(w.in) {
		return dst, false
	}
	return w.out, true
}

func (w *docWriter) skipSpace() {
	for w.i < len(w.in) {
		switch w.in[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// next is the next byte after spaces, 0 at the end.
func (w *docWriter) next() byte {
	w.skipSpace()
	if w.i == len(w.in) {
		return 0
	}
	return w.in[w.i]
}

// literal consumes lit.
func (w *docWriter) literal(lit string) bool {
	if !strings.HasPrefix(w.in[w.i:], lit) {
		return false
	}
	w.i += len(lit)
	return true
}

// value copies a value of s; omitEmpty when its field is: an empty value
// is then refused, since encoding it again would leave the field out.
func (w *docWriter) value(s *docSchema, omitEmpty bool) bool {
	c := w.next()
	switch s.kind {
	case kString:
		start := len(w.out)
		return c == '"' && w.str() && !(omitEmpty && len(w.out)-start == 2)
	case kInt:
		return (c == '-' || c >= '0' && c <= '9') && w.integer(omitEmpty)
	case kFloat:
		return (c == '-' || c >= '0' && c <= '9') && w.float(omitEmpty)
	case kBool:
		if w.literal("true") {
			w.out = append(w.out, "true"...)
			return true
		}
		ok := !omitEmpty && w.literal("false")
		w.out = append(w.out, "false"...)
		return ok
	case kTime:
		return c == '"' && w.time()
	case kStruct:
		return c == '{' && w.object(s, -1, nil)
	case kPtr:
		if c == 'n' {
			ok := !omitEmpty && w.literal("null")
			w.out = append(w.out, "null"...)
			return ok
		}
		return w.value(s.elem, false)
	case kSlice:
		if c == 'n' {
			ok := !omitEmpty && w.literal("null")
			w.out = append(w.out, "null"...)
			return ok
		}
		return c == '[' && w.array(s.elem, omitEmpty)
	case kMap:
		if c == 'n' {
			ok := !omitEmpty && w.literal("null")
			w.out = append(w.out, "null"...)
			return ok
		}
		return c == '{' && w.mapObject(s.elem, omitEmpty)
	}
	return false
}

// object copies an object of struct s, its keys in the order of the
// fields, each once, none missing but those omitted when empty; extra,
// when not nil, is written as the field at index at.
func (w *docWriter) object(s *docSchema, at int, extra []byte) bool {
	if w.next() != '{' {
		return false
	}
	w.i++
	w.out = append(w.out, '{')
	f, first := 0, true // f: the first field that may come next
	put := func(i int, v []byte) {
		if !first {
			w.out = append(w.out, ',')
		}
		first = false
		w.out = append(w.out, '"')
		w.out = append(w.out, s.fields[i].name...)
		w.out = append(w.out, '"', ':')
		w.out = append(w.out, v...)
	}
	for n := 0; ; n++ {
		c := w.next()
		if c == '}' {
			w.i++
			break
		}
		if n > 0 {
			if c != ',' {
				return false
			}
			w.i++
			c = w.next()
		}
		key, ok := w.key(c)
		if !ok {
			return false
		}
		i := s.field(key, f)
		if i < 0 || i == at || w.next() != ':' {
			return false // unknown, out of order, repeated or ours
		}
		w.i++
		for ; f < i; f++ {
			if !s.fields[f].omitEmpty && f != at {
				return false // a field missing that encoding writes
			}
			if f == at && extra != nil {
				put(f, extra)
			}
		}
		f = i + 1
		put(i, nil)
		if !w.value(s.fields[i].schema, s.fields[i].omitEmpty) {
			return false
		}
	}
	for ; f < len(s.fields); f++ {
		if !s.fields[f].omitEmpty && f != at {
			return false
		}
		if f == at && extra != nil {
			put(f, extra)
		}
	}
	w.out = append(w.out, '}')
	return true
}

// key reads an object's key without escapes (c is its first byte).
func (w *docWriter) key(c byte) (string, bool) {
	if c != '"' {
		return "", false
	}
	end := strings.IndexByte(w.in[w.i+1:], '"')
	if end < 0 {
		return "", false
	}
	k := w.in[w.i+1 : w.i+1+end]
	if strings.IndexByte(k, '\\') >= 0 {
		return "", false
	}
	w.i += end + 2
	return k, true
}

// array copies an array of elem.
func (w *docWriter) array(elem *docSchema, omitEmpty bool) bool {
	w.i++
	w.out = append(w.out, '[')
	n := 0
	for ; ; n++ {
		c := w.next()
		if c == ']' {
			w.i++
			break
		}
		if n > 0 {
			if c != ',' {
				return false
			}
			w.i++
			w.out = append(w.out, ',')
		}
		if !w.value(elem, false) {
			return false
		}
	}
	w.out = append(w.out, ']')
	return !(omitEmpty && n == 0)
}

// mapObject copies a map of elem by string keys: encoding writes them in
// increasing order.
func (w *docWriter) mapObject(elem *docSchema, omitEmpty bool) bool {
	w.i++
	w.out = append(w.out, '{')
	var last string
	n := 0
	for ; ; n++ {
		c := w.next()
		if c == '}' {
			w.i++
			break
		}
		if n > 0 {
			if c != ',' {
				return false
			}
			w.i++
			w.out = append(w.out, ',')
			c = w.next()
		}
		if c != '"' {
			return false
		}
		from := w.i
		if !w.str() || w.next() != ':' {
			return false
		}
		k := w.in[from+1 : w.i-1]
		if strings.IndexByte(k, '\\') >= 0 {
			var decoded string
			if json.Unmarshal([]byte(w.in[from:w.i]), &decoded) != nil {
				return false
			}
			k = decoded
		}
		if n > 0 && k <= last {
			return false
		}
		last = k
		w.i++
		w.out = append(w.out, ':')
		if !w.value(elem, false) {
			return false
		}
	}
	w.out = append(w.out, '}')
	return !(omitEmpty && n == 0)
}

// hexDigits are those encoding/json writes in \u escapes.
const hexDigits = "0123456789abcdef"

// str copies a string as encoding/json writes it with HTML characters
// left unescaped: its escapes rewritten where they would be written
// otherwise; invalid UTF-8, lone surrogates and escapes out of the JSON
// grammar are refused.
func (w *docWriter) str() bool {
	w.i++ // the opening quote
	w.out = append(w.out, '"')
	in := w.in
	for run := w.i; ; {
		if w.i >= len(in) {
			return false
		}
		c := in[w.i]
		if c >= 0x20 && c < 0x80 && c != '"' && c != '\\' {
			w.i++
			continue
		}
		w.out = append(w.out, in[run:w.i]...)
		switch {
		case c == '"':
			w.i++
			w.out = append(w.out, '"')
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if !w.escape() {
				return false
			}
		default:
			r, size := utf8.DecodeRuneInString(in[w.i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			if r == '\u2028' || r == '\u2029' {
				w.out = append(w.out, `\u202`...)
				w.out = append(w.out, hexDigits[r&0xF])
			} else {
				w.out = append(w.out, in[w.i:w.i+size]...)
			}
			w.i += size
		}
		run = w.i
	}
}

// escape copies the escape at w.i as encoding writes the character it
// stands for.
func (w *docWriter) escape() bool {
	in := w.in
	if w.i+1 >= len(in) {
		return false
	}
	switch e := in[w.i+1]; e {
	case '"', '\\', 'n', 'r', 't', 'b', 'f':
		w.out = append(w.out, '\\', e)
		w.i += 2
		return true
	case '/':
		w.out = append(w.out, '/')
		w.i += 2
		return true
	case 'u':
	default:
		return false
	}
	if w.i+6 > len(in) {
		return false
	}
	v, err := strconv.ParseUint(in[w.i+2:w.i+6], 16, 32)
	if err != nil {
		return false
	}
	w.i += 6
	r := rune(v)
	switch {
	case r >= 0xD800 && r < 0xE000:
		return false // surrogates: json.Marshal writes such characters as UTF-8
	case r == '"' || r == '\\':
		w.out = append(w.out, '\\', byte(r))
	case r == '\n':
		w.out = append(w.out, `\n`...)
	case r == '\r':
		w.out = append(w.out, `\r`...)
	case r == '\t':
		w.out = append(w.out, `\t`...)
	case r == '\b':
		w.out = append(w.out, `\b`...)
	case r == '\f':
		w.out = append(w.out, `\f`...)
	case r < 0x20:
		w.out = append(w.out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	case r == '\u2028' || r == '\u2029':
		w.out = append(w.out, `\u202`...)
		w.out = append(w.out, hexDigits[r&0xF])
	default:
		w.out = utf8.AppendRune(w.out, r)
	}
	return true
}

// number is the number at w.i, checked against the JSON grammar.
func (w *docWriter) number() (string, bool) {
	in, i := w.in, w.i
	digits := func() int {
		j := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch n := digits(); {
	case n == 0, n > 1 && in[i-n] == '0':
		return "", false
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			return "", false
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	tok := in[w.i:i]
	w.i = i
	return tok, true
}

// integer copies an integer, as strconv writes it.
func (w *docWriter) integer(omitEmpty bool) bool {
	tok, ok := w.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil || omitEmpty && n == 0 {
		return false
	}
	start := len(w.out)
	w.out = strconv.AppendInt(w.out, n, 10)
	return string(w.out[start:]) == tok
}

// float copies a float64, as encoding/json writes it.
func (w *docWriter) float(omitEmpty bool) bool {
	tok, ok := w.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil || omitEmpty && f == 0 {
		return false
	}
	start := len(w.out)
	w.out = appendFloat(w.out, f)
	return string(w.out[start:]) == tok
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 as e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// time copies a time as time.Time writes it (RFC 3339, nanoseconds
// without trailing zeros).
func (w *docWriter) time() bool {
	end := strings.IndexByte(w.in[w.i+1:], '"')
	if end < 0 {
		return false
	}
	s := w.in[w.i+1 : w.i+1+end]
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return false
	}
	w.i += end + 2
	start := len(w.out)
	w.out = append(w.out, '"')
	w.out = t.AppendFormat(w.out, time.RFC3339Nano)
	w.out = append(w.out, '"')
	return string(w.out[start+1:len(w.out)-1]) == s
}
