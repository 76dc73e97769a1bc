package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopsKeepTheFirstError: a run that fails says why, not only how
// often.
func TestLoopsKeepTheFirstError(t *testing.T) {
	var n atomic.Int64
	op := func(context.Context) error {
		if n.Add(1)%3 == 0 {
			return errors.New("refused")
		}
		return nil
	}
	for name, s := range map[string]Stats{
		"closed": closedLoop(t.Context(), 2, time.Second, 30, op),
		"open":   openLoop(t.Context(), 300, 100*time.Millisecond, 30, op),
	} {
		if s.Errors == 0 || s.Err == nil || s.Err.Error() != "refused" {
			t.Errorf("%s loop: %d errors, first %v; want some, the first refused", name, s.Errors, s.Err)
		}
		if c := combine(Stats{}, s); c.Err != s.Err || c.Errors != s.Errors {
			t.Errorf("%s loop combined: %d errors, first %v; want %d, %v", name, c.Errors, c.Err, s.Errors, s.Err)
		}
	}
	if s := closedLoop(t.Context(), 1, time.Second, 2, func(context.Context) error { return nil }); s.Err != nil || s.Errors != 0 {
		t.Errorf("a run without failures: %d errors, first %v", s.Errors, s.Err)
	}
}
