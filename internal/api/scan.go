package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scan walks the tokens of a JSON body and refuses, naming the field, what
// encoding/json lets through silently: invalid UTF-8 and unpaired UTF-16
// surrogates (replaced by U+FFFD), NUL characters, and a key given twice
// in one object (the last would win). Syntax errors are left to the
// decoder, unless a NUL byte or invalid UTF-8 is their cause.
func scan(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	sc := scanner{raw: raw}
	for {
		tok, err := dec.Token()
		if err != nil {
			return sc.stopped()
		}
		end := dec.InputOffset()
		chunk := raw[sc.prev:end]
		sc.prev = end
		if top := last(sc.stack); top != nil && top.object && top.wantKey {
			err = sc.key(top, tok, chunk)
		} else {
			err = sc.value(tok, chunk)
		}
		if err != nil {
			return err
		}
	}
}

// scanner is scan's state: the objects and arrays open, and where the
// last token ended.
type scanner struct {
	raw   []byte
	stack []*scope
	prev  int64
}

// stopped is called when the decoder stops, at the end or on a syntax
// error: a raw NUL (or bad byte) in a string stops it, and is named by the
// field of that string.
func (sc *scanner) stopped() error {
	str := nextString(sc.raw[sc.prev:])
	field := where(sc.stack)
	if top := last(sc.stack); top != nil && top.object && top.wantKey {
		field = join(top.path, printable(strings.Trim(string(str), `"`))) // a key, named as sent
	}
	return checkText(str, "", field) // nil: io.EOF, or a syntax error the decoder names
}

// key reads what stands where an object expects a key: a key, or its end.
func (sc *scanner) key(top *scope, tok json.Token, chunk []byte) error {
	if d, ok := tok.(json.Delim); ok && d == '}' {
		sc.stack = sc.stack[:len(sc.stack)-1]
		valueDone(sc.stack)
		return nil
	}
	key, _ := tok.(string)
	field := join(top.path, printable(key))
	if err := checkText(chunk, key, field); err != nil {
		return err
	}
	if top.keys[key] {
		return Invalid(field, "is given twice")
	}
	top.keys[key], top.key, top.wantKey = true, key, false
	return nil
}

// value reads a value, or the start or end of an object or array.
func (sc *scanner) value(tok json.Token, chunk []byte) error {
	field := where(sc.stack)
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			sc.stack = append(sc.stack, &scope{object: true, wantKey: true, keys: map[string]bool{}, path: field})
		case '[':
			sc.stack = append(sc.stack, &scope{path: field})
		default: // ']': '}' is read where a key is expected
			sc.stack = sc.stack[:len(sc.stack)-1]
			valueDone(sc.stack)
		}
		return nil
	case string:
		if err := checkText(chunk, t, field); err != nil {
			return err
		}
	}
	valueDone(sc.stack)
	return nil
}

// scope is an object or an array being read.
type scope struct {
	object  bool
	wantKey bool            // an object expects a key (or its end)
	keys    map[string]bool // an object's keys so far
	key     string          // an object's current key
	index   int             // an array's current item
	path    string          // the field this object or array is
}

// printable is a key as sent, fit to name it in an answer.
func printable(key string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(key, "\uFFFD"), "\x00", `\u0000`)
}

// last is the innermost object or array being read, nil at the top.
func last(stack []*scope) *scope {
	if len(stack) == 0 {
		return nil
	}
	return stack[len(stack)-1]
}

// where names the value being read: path.key, path[index], or body at
// the top.
func where(stack []*scope) string {
	if len(stack) == 0 {
		return "body"
	}
	top := stack[len(stack)-1]
	if !top.object {
		return top.path + "[" + strconv.Itoa(top.index) + "]"
	}
	return join(top.path, printable(top.key))
}

// join names the field key of the object at path, as checkKeys does.
func join(path, key string) string {
	if path == "body" {
		return key
	}
	return path + "." + key
}

// valueDone moves the enclosing object or array past a complete value.
func valueDone(stack []*scope) {
	if len(stack) == 0 {
		return
	}
	if top := stack[len(stack)-1]; top.object {
		top.wantKey = true
	} else {
		top.index++
	}
}

// checkText refuses a token whose bytes as sent (raw) are not valid UTF-8,
// or whose decoded text contains a NUL or a replacement character the
// sender did not write (an unpaired surrogate such as \ud800).
func checkText(raw []byte, decoded, field string) error {
	switch {
	case bytes.IndexByte(raw, 0) >= 0 || strings.IndexByte(decoded, 0) >= 0:
		return Invalid(field, "must not contain NUL characters")
	case !utf8.Valid(raw):
		return Invalid(field, "must be valid UTF-8")
	case strings.ContainsRune(decoded, utf8.RuneError) && !sentReplacement(raw):
		return Invalid(field, "must be valid UTF-8 (an unpaired surrogate escape)")
	}
	return nil
}

// nextString is the string literal raw starts with, after separators, up
// to its closing quote or the end of raw; nil if raw starts otherwise.
func nextString(raw []byte) []byte {
	start := bytes.IndexFunc(raw, func(r rune) bool { return !strings.ContainsRune(" \t\r\n:,", r) })
	if start < 0 || raw[start] != '"' {
		return nil
	}
	for i := start + 1; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return raw[start : i+1]
		}
	}
	return raw[start:]
}

// sentReplacement reports whether raw holds U+FFFD itself, literally or
// escaped.
func sentReplacement(raw []byte) bool {
	return bytes.Contains(raw, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
}
