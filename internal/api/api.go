// Package api holds the HTTP conventions shared by the command and query
// APIs: strict JSON bodies and contract-shaped errors.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"passerelle/eventstore"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Error is a contract error: {"error": {"code", "message", "fields"}}.
type Error struct {
	Status     int               `json:"-"`
	Code       string            `json:"code"`
	Message    string            `json:"message"`
	Fields     map[string]string `json:"fields,omitempty"`
	Rule       string            `json:"rule,omitempty"` // the business rule that refused a command
	RetryAfter time.Duration     `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a 400 naming one field.
func Invalid(field, rule string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "validation_failed", Message: field + ": " + rule, Fields: map[string]string{field: rule}}
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing left to do
}

// WriteEncoded writes body, a JSON value already encoded as WriteJSON
// would encode it (its newline included), with status.
func WriteEncoded(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing left to do
}

// StatusClientClosed is the status a request is logged and counted with
// when its client went away before the answer (nginx's): nobody reads it.
const StatusClientClosed = 499

// WriteError writes err as a contract error. Errors that are not *Error are
// internal: logged, and answered with a generic 500 that leaks nothing,
// unless the client went away and the work stopped for it: not a failure
// of the service, which neither the error log nor a 5xx rate should count.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		e = Errorf(StatusClientClosed, "client_closed", "the client closed the request before its answer")
	default:
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = Errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if n, ok := w.(ErrorNoter); ok {
		n.NoteError(e.Code, e.Rule)
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// ErrorNoter is a response writer that wants to know the code and the
// business rule of the error it carries (the metrics).
type ErrorNoter interface {
	NoteError(code, rule string)
}

// DecodeJSON reads a strict JSON body into v: one object, no unknown field,
// at most MaxBody bytes. An empty body decodes as {} when allowEmpty.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	raw, err := ReadBody(w, r)
	if err != nil {
		return err
	}
	return Unmarshal(raw, v, allowEmpty)
}

// ReadBody reads at most MaxBody bytes of the request body; more is a 413,
// and a body that is not declared JSON a 415.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes", MaxBody)
		}
		return nil, Errorf(http.StatusBadRequest, "validation_failed", "cannot read request body")
	}
	if len(raw) > 0 && !isJSON(r.Header.Get("Content-Type")) {
		return nil, Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"a request body must be sent as Content-Type: application/json (UTF-8)")
	}
	return raw, nil
}

// isJSON reports whether a Content-Type is application/json, in UTF-8 (the
// only encoding JSON has, RFC 8259) when a charset is named.
func isJSON(contentType string) bool {
	if contentType == "application/json" || contentType == "application/json; charset=utf-8" {
		return true // what clients send, without parsing it
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, named := params["charset"]
	return !named || strings.EqualFold(cs, "utf-8")
}

// Unmarshal decodes a strict JSON object into v and names the offending
// field in the error.
func Unmarshal(raw []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		if allowEmpty {
			return nil
		}
		return Invalid("body", "a JSON object is required")
	}
	if !clean(raw, reflect.TypeOf(v)) {
		if err := scan(raw); err != nil {
			return err
		}
		if err := checkKeys(raw, reflect.TypeOf(v), ""); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			if typeErr.Field == "" {
				return Invalid("body", "must be a JSON object")
			}
			return Invalid(typeErr.Field, expected(typeErr.Type, typeErr.Value))
		case errors.As(err, &syntaxErr):
			return Invalid("body", fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Invalid(name, "unknown field")
		default:
			return Invalid("body", "malformed JSON")
		}
	}
	// anything after the object, even a stray bracket, is an error
	if _, err := dec.Token(); err != io.EOF {
		return Invalid("body", "a single JSON object is expected")
	}
	return nil
}

// expected says in the contract's words, never Go's, what a field of type
// t must be, given the JSON value sent ("number 1.5", "string", …).
func expected(t reflect.Type, sent string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := strings.CutPrefix(sent, "number "); ok && !strings.ContainsAny(n, ".eE") {
			return "is out of range" // a whole number too large for any count
		}
		return "must be a whole number"
	case reflect.Float32, reflect.Float64:
		if strings.HasPrefix(sent, "number") {
			return "is out of range"
		}
		return "must be a number"
	case reflect.Slice, reflect.Array:
		return "must be a JSON array"
	}
	return "must be a JSON object"
}

// checkKeys enforces what encoding/json does not: field names match exactly
// (json matches them case-insensitively), and fields tagged
// `required:"true"` are present even when their zero value would be valid
// (a false flag, a zero coordinate).
func checkKeys(raw []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil // not an array: the decoder names the type error
		}
		for i, it := range items {
			if err := checkKeys(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return nil // not an object (or null): the decoder answers
		}
		return checkObject(obj, t, path)
	}
	return nil
}

// checkObject checks the keys of a JSON object decoded into struct type t,
// in a stable order: unknown ones first, then missing required ones.
func checkObject(obj map[string]json.RawMessage, t reflect.Type, path string) error {
	fields := fieldsOf(t)
	prefix := path
	if prefix != "" {
		prefix += "."
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		f, ok := fields.known[k]
		if !ok {
			return Invalid(prefix+k, "unknown field")
		}
		if err := checkKeys(obj[k], f.Type, prefix+k); err != nil {
			return err
		}
	}
	for _, name := range fields.required {
		if _, ok := obj[name]; !ok {
			return &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed",
				Message: prefix + name + ": is required", Fields: map[string]string{prefix + name: "is required"}}
		}
	}
	return nil
}

// structFields are the JSON fields of a struct type: by name, and the
// names tagged `required:"true"` in order.
type structFields struct {
	known    map[string]reflect.StructField
	required []string
}

// fields caches fieldsOf: a body type's fields are read on every request.
var fieldCache sync.Map // reflect.Type → structFields

// fieldsOf returns the JSON fields of struct type t.
func fieldsOf(t reflect.Type) structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(structFields)
	}
	f := structFields{known: map[string]reflect.StructField{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name != "" && name != "-" && sf.IsExported() {
			f.known[name] = sf
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.known)) {
		if f.known[name].Tag.Get("required") == "true" {
			f.required = append(f.required, name)
		}
	}
	fieldCache.Store(t, f)
	return f
}

// queryKey keys a request's parsed query in its context.
type queryKey struct{}

// WithQuery hands the parsed query q of r to the handlers after: Query
// returns it rather than parsing it again. Nobody may change it.
func WithQuery(r *http.Request, q url.Values) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), queryKey{}, q))
}

// Query is the request's query parameters: as parsed once on the way in
// (WithQuery), else parsed now. The values are shared: read them only.
func Query(r *http.Request) url.Values {
	if q, ok := r.Context().Value(queryKey{}).(url.Values); ok {
		return q
	}
	return r.URL.Query()
}

// MinPosition reads the min_position query parameter: the position a
// command returned, that the answer must reflect (Start when absent).
func MinPosition(r *http.Request) (eventstore.Position, error) {
	mp := Query(r).Get("min_position")
	if mp == "" {
		return eventstore.Start, nil
	}
	p, err := eventstore.ParsePosition(mp)
	if err != nil {
		return 0, Invalid("min_position", "must be a position returned by a command")
	}
	return p, nil
}
