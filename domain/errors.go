package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ValidationError lists what is wrong with a command's input, field by
// field. The HTTP layer turns it into a 422 naming each field.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Problems collects field errors while a command is checked.
type Problems map[string]string

// Add records the first problem of a field.
func (p Problems) Add(field, rule string) {
	if _, ok := p[field]; !ok {
		p[field] = rule
	}
}

// Err is nil when nothing was recorded.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Fields: p}
}

// ErrConflict marks a command that is valid but not allowed in the
// aggregate's current state (wrong status, no seat left, duplicate).
var ErrConflict = errors.New("conflict")

// ErrNotFound marks a command that names an aggregate that does not exist.
var ErrNotFound = errors.New("not found")

// RuleError is a refusal by a named business rule. It is a conflict: the
// command is well-formed but the current state does not allow it.
type RuleError struct {
	Rule    string            // stable identifier, e.g. no_seat_left
	Message string            // what a back-office agent reads
	Fields  map[string]string // the fields at fault, when the rule names some
}

func (e *RuleError) Error() string { return e.Message }

// Is makes every refusal an ErrConflict for errors.Is.
func (e *RuleError) Is(target error) bool { return target == ErrConflict }

// Refuse returns a RuleError.
func Refuse(rule, format string, args ...any) error {
	return &RuleError{Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns an error wrapping ErrConflict.
func Conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// NotFoundf returns an error wrapping ErrNotFound.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}
