package partnerapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The partner API's errors are {"code": "…", "error": …}: a message, or
// for VALIDATION_ERROR each field's messages. Its handlers, like the rest
// of the service (the guard, the rate limiter, the router, the strict
// decoder), write the contract's envelope {"error": {"code", "message",
// "fields"}}; Errors rewrites it on the way out for every /api/v2 path.

// codes are the partner API's names for the contract's error codes.
var codes = map[string]string{
	"validation_failed":      "VALIDATION_ERROR",
	"unauthenticated":        "UNAUTHORIZED",
	"forbidden":              "FORBIDDEN",
	"not_found":              "NOT_FOUND",
	"conflict":               "CONFLICT",
	"too_large":              "PAYLOAD_TOO_LARGE",
	"rate_limited":           "TOO_MANY_REQUESTS",
	"unsupported_media_type": "UNSUPPORTED_MEDIA_TYPE",
	"method_not_allowed":     "METHOD_NOT_ALLOWED",
	"not_ready":              "SERVICE_UNAVAILABLE",
	"client_closed":          "CLIENT_CLOSED_REQUEST",
	"internal":               "INTERNAL_ERROR",
}

// Errors rewrites the error answers of the partner API's paths in its words.
func Errors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		rw := &rewriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// rewriter holds back an error's body until the handler is done.
type rewriter struct {
	http.ResponseWriter
	status int
	held   bytes.Buffer
}

func (w *rewriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if status < 400 {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *rewriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status < 400 {
		return w.ResponseWriter.Write(b)
	}
	return w.held.Write(b)
}

// NoteError passes the error's code on to the metrics, as the wrapped
// writer would.
func (w *rewriter) NoteError(code, rule string) {
	if n, ok := w.ResponseWriter.(interface{ NoteError(code, rule string) }); ok {
		n.NoteError(code, rule)
	}
}

func (w *rewriter) finish() {
	if w.status < 400 {
		return
	}
	body := w.held.Bytes()
	if out, ok := translate(body); ok {
		body = out
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}

// translate turns the contract's envelope into the partner API's; any
// other body (already in the partner API's words) is left as it is.
func translate(body []byte) ([]byte, bool) {
	var env struct {
		Error *struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil || env.Error.Code == "" {
		return nil, false
	}
	e := env.Error
	code, ok := codes[e.Code]
	if !ok {
		code = e.Code // the partner API's own (DUPLICATE_API, …)
	}
	var msg any = e.Message
	if code == "VALIDATION_ERROR" && len(e.Fields) > 0 {
		fields := map[string][]string{}
		for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
			fields[k] = []string{e.Fields[k]}
		}
		msg = fields
	}
	out, err := json.Marshal(map[string]any{"code": code, "error": msg})
	if err != nil {
		return nil, false
	}
	return append(out, '\n'), true
}
