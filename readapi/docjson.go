package readapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
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
	if t == timeType {
		return &docSchema{kind: kTime}
	}
	if marshalsItself(t) {
		panic(fmt.Sprintf("readapi: %s marshals itself: its documents cannot be passed through", t))
	}
	switch t.Kind() {
	case reflect.String:
		return &docSchema{kind: kString}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		return &docSchema{kind: kInt}
	case reflect.Float64:
		return &docSchema{kind: kFloat}
	case reflect.Bool:
		return &docSchema{kind: kBool}
	case reflect.Struct:
		return &docSchema{kind: kStruct, fields: structFields(t)}
	}
	return containerSchema(t)
}

// containerSchema is the schema of a slice, map or pointer type t.
func containerSchema(t reflect.Type) *docSchema {
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			panic(fmt.Sprintf("readapi: %s is written in base64", t))
		}
		return &docSchema{kind: kSlice, elem: schemaOf(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String || marshalsItself(t.Key()) {
			panic(fmt.Sprintf("readapi: %s has keys that are not strings", t))
		}
		return &docSchema{kind: kMap, elem: schemaOf(t.Elem())}
	case reflect.Pointer:
		return &docSchema{kind: kPtr, elem: schemaOf(t.Elem())}
	}
	panic(fmt.Sprintf("readapi: %s cannot be passed through", t))
}

// marshalsItself reports whether encoding/json lets t, or decoding lets
// *t, write or read its own form.
func marshalsItself(t reflect.Type) bool {
	return t.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
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
	// mark is where in in the field at index at of the top object
	// goes: after the value of the field written before it (-1: none)
	mark int
}

// appendDoc appends to dst the document raw, encoded from a value of s's
// type, with extra written as the value of the field at index at (when
// extra is not nil; raw must not hold that field), as encoding it again
// would give. ok is false when it would not be the same: dst is then
// returned as it was.
func (s *docSchema) appendDoc(dst []byte, raw string, at int, extra []byte) (out []byte, ok bool) {
	out, _, ok = s.appendDocMark(dst, raw, at, extra)
	return out, ok
}

// appendDocMark is appendDoc, and where in raw the field at index at goes
// (after the value of the field before it; -1 when it would be first).
func (s *docSchema) appendDocMark(dst []byte, raw string, at int, extra []byte) (out []byte, mark int, ok bool) {
	w := docWriter{in: raw, out: dst, mark: -1}
	if w.skipSpace(); !w.object(s, at, extra) {
		return dst, -1, false
	}
	if w.skipSpace(); w.i != len(w.in) {
		return dst, -1, false
	}
	return w.out, w.mark, true
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
		return c == '"' && w.str() && (!omitEmpty || len(w.out)-start > 2)
	case kInt:
		return w.integer(omitEmpty)
	case kFloat:
		return w.float(omitEmpty)
	case kBool:
		return w.boolean(omitEmpty)
	case kTime:
		return c == '"' && w.time()
	case kStruct:
		return c == '{' && w.object(s, -1, nil)
	}
	return w.nullable(s, c, omitEmpty)
}

// nullable copies a value of pointer, slice or map schema s, starting
// with c: null when nil, unless omitEmpty (a nil one is left out).
func (w *docWriter) nullable(s *docSchema, c byte, omitEmpty bool) bool {
	if c == 'n' {
		w.out = append(w.out, "null"...)
		return !omitEmpty && w.literal("null")
	}
	switch s.kind {
	case kPtr:
		return w.value(s.elem, false)
	case kSlice:
		return c == '[' && w.array(s.elem, omitEmpty)
	case kMap:
		return c == '{' && w.mapObject(s.elem, omitEmpty)
	}
	return false
}

// boolean copies true, or false unless omitEmpty.
func (w *docWriter) boolean(omitEmpty bool) bool {
	if w.literal("true") {
		w.out = append(w.out, "true"...)
		return true
	}
	w.out = append(w.out, "false"...)
	return !omitEmpty && w.literal("false")
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
	o := objectWriter{w: w, s: s, at: at, extra: extra}
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
		i := s.field(key, o.f)
		if i < 0 || i == at || w.next() != ':' {
			return false // unknown, out of order, repeated or ours
		}
		w.i++
		if !o.skipTo(i) {
			return false
		}
		o.put(i, nil)
		if !w.value(s.fields[i].schema, s.fields[i].omitEmpty) {
			return false
		}
		o.end = w.i
	}
	if !o.skipTo(len(s.fields)) {
		return false
	}
	w.out = append(w.out, '}')
	return true
}

// objectWriter writes the fields of one object.
type objectWriter struct {
	w        *docWriter
	s        *docSchema
	at       int
	extra    []byte
	f        int  // the first field that may come next
	notFirst bool // a field was written
	end      int  // where the value of the last field read ends in w.in
}

// put writes the key of field i, and v.
func (o *objectWriter) put(i int, v []byte) {
	w := o.w
	if o.notFirst {
		w.out = append(w.out, ',')
	}
	o.notFirst = true
	w.out = append(w.out, '"')
	w.out = append(w.out, o.s.fields[i].name...)
	w.out = append(w.out, '"', ':')
	w.out = append(w.out, v...)
	o.f = i + 1
}

// skipTo passes the fields before field i that the document leaves out,
// writing extra at its place: they must be those encoding may leave out.
func (o *objectWriter) skipTo(i int) bool {
	for ; o.f < i; o.f++ {
		switch {
		case o.f == o.at:
			if o.notFirst {
				o.w.mark = o.end
			}
			if o.extra != nil {
				o.put(o.f, o.extra)
				o.f-- // put moved it on
			}
		case !o.s.fields[o.f].omitEmpty:
			return false // a field missing that encoding writes
		}
	}
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
	return !omitEmpty || n > 0
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
	return !omitEmpty || n > 0
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
		return w.unicodeEscape()
	}
	return false
}

// shortEscapes are the characters encoding/json escapes with a letter.
var shortEscapes = map[rune]string{'"': `\"`, '\\': `\\`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\b': `\b`, '\f': `\f`}

// unicodeEscape copies the \uXXXX escape at w.i as encoding writes the
// character it stands for.
func (w *docWriter) unicodeEscape() bool {
	if w.i+6 > len(w.in) {
		return false
	}
	v, err := strconv.ParseUint(w.in[w.i+2:w.i+6], 16, 32)
	if err != nil {
		return false
	}
	w.i += 6
	r := rune(v)
	if e, ok := shortEscapes[r]; ok {
		w.out = append(w.out, e...)
		return true
	}
	switch {
	case r >= 0xD800 && r < 0xE000:
		return false // surrogates: json.Marshal writes such characters as UTF-8
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
	if i < len(in) && in[i] == '-' {
		i++
	}
	n := digits(in, i)
	if n == 0 || n > 1 && in[i] == '0' {
		return "", false
	}
	i += n
	if i < len(in) && in[i] == '.' {
		if n = digits(in, i+1); n == 0 {
			return "", false
		}
		i += 1 + n
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		if n = exponent(in, i+1); n == 0 {
			return "", false
		}
		i += 1 + n
	}
	tok := in[w.i:i]
	w.i = i
	return tok, true
}

// exponent is the length of an exponent's sign and digits in in from i
// on, 0 when it has no digits.
func exponent(in string, i int) int {
	sign := 0
	if i < len(in) && (in[i] == '+' || in[i] == '-') {
		sign = 1
	}
	n := digits(in, i+sign)
	if n == 0 {
		return 0
	}
	return sign + n
}

// digits is how many decimal digits in holds from i on.
func digits(in string, i int) int {
	j := i
	for j < len(in) && in[j] >= '0' && in[j] <= '9' {
		j++
	}
	return j - i
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

// knownDocs remembers the documents of one schema that pass through as
// they are stored, and where in each the field at index at goes: a search
// lists the same offers again and again, and checking each as it was
// copied took a fifth of the processor time of a search around a point.
// A document is its own key, so what is remembered is exactly what was
// checked.
type knownDocs struct {
	s     *docSchema
	at    int
	limit int // documents remembered at most, then forgotten all at once
	mu    sync.RWMutex
	marks map[string]int
}

func newKnownDocs(s *docSchema, at, limit int) *knownDocs {
	return &knownDocs{s: s, at: at, limit: limit, marks: map[string]int{}}
}

// appendDoc is docSchema.appendDoc for k's schema and field at.
func (k *knownDocs) appendDoc(dst []byte, raw string, extra []byte) ([]byte, bool) {
	k.mu.RLock()
	mark, known := k.marks[raw]
	k.mu.RUnlock()
	if known {
		return k.insert(dst, raw, mark, extra), true
	}
	start := len(dst)
	out, mark, ok := k.s.appendDocMark(dst, raw, k.at, extra)
	if !ok || mark < 0 || !bytes.Equal(out[start:], k.insert(nil, raw, mark, extra)) {
		return out, ok // passed through otherwise than stored: checked each time
	}
	k.mu.Lock()
	if len(k.marks) >= k.limit {
		k.marks = make(map[string]int, k.limit)
	}
	k.marks[raw] = mark
	k.mu.Unlock()
	return out, true
}

// insert appends raw with extra as the value of the field at, at mark.
func (k *knownDocs) insert(dst []byte, raw string, mark int, extra []byte) []byte {
	if extra == nil {
		return append(dst, raw...)
	}
	dst = append(dst, raw[:mark]...)
	dst = append(dst, ',', '"')
	dst = append(dst, k.s.fields[k.at].name...)
	dst = append(dst, '"', ':')
	dst = append(dst, extra...)
	return append(dst, raw[mark:]...)
}
