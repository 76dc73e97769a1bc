package projections

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// InProcess is a RebuildOptions.Write that hands a rebuild's commands
// straight to the in-process server m of the embedded default. Over a
// connection, miniredis writes the reply of every command of a pipeline to
// the socket on its own, a system call each, which bounds a rebuild far
// below what the server itself does; in process, a command costs its work.
func InProcess(m *miniredis.Miniredis) func(context.Context, [][]any) error {
	var replies bytes.Buffer
	out := bufio.NewWriter(&replies)
	peer := server.NewPeer(out)
	var mu sync.Mutex // one peer and reply buffer for the rebuild's writers
	return func(ctx context.Context, cmds [][]any) error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cmds {
			if err := ctx.Err(); err != nil {
				return err
			}
			args := make([]string, len(c))
			for i, a := range c {
				s, err := argString(a)
				if err != nil {
					return err
				}
				args[i] = s
			}
			m.Server().Dispatch(peer, args)
			_ = out.Flush() // into replies: cannot fail
			if r := replies.Bytes(); len(r) > 0 && r[0] == '-' {
				return fmt.Errorf("%s %s: %s", args[0], args[1], strings.TrimSpace(string(r[1:])))
			}
			replies.Reset()
		}
		return nil
	}
}

// InProcessApply is a Runner.Apply for the in-process server m of the
// embedded default: the apply script's checks and writes, dispatched
// straight to m, atomic as the script is. The script would cost a
// connection round trip, and inside the server a parse and a reply for
// every write it makes; here the writes go in one MULTI whose EXEC is
// voided (and the checks made again) if the checkpoint or the served
// generation changed meanwhile (WATCH).
func InProcessApply(m *miniredis.Miniredis) func(ctx context.Context, keys []string, args []any) (int, error) {
	var (
		mu   sync.Mutex
		strs []string // the arguments as strings, one call at a time
	)
	do := dispatcher(m)
	return func(ctx context.Context, keys []string, args []any) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		defer func() { clear(strs) }() // keeps no value until the next call
		strs = slices.Grow(strs[:0], len(args))
		for _, a := range args {
			s, err := argString(a)
			if err != nil {
				return 0, err
			}
			strs = append(strs, s)
		}
		for ctx.Err() == nil {
			n, done, err := applyOnce(do, keys, strs)
			if done || err != nil {
				return n, err
			}
		}
		return 0, ctx.Err()
	}
}

// InProcessMGet is a Runner.MGet for the in-process server m: MGET
// dispatched straight to it, without a connection round trip.
func InProcessMGet(m *miniredis.Miniredis) func(ctx context.Context, keys []string) ([]any, error) {
	var mu sync.Mutex
	do := dispatcher(m)
	return func(_ context.Context, keys []string) ([]any, error) {
		mu.Lock()
		defer mu.Unlock()
		v, err := do(append([]string{"MGET"}, keys...)...)
		vals, _ := v.([]any)
		return vals, err
	}
}

// dispatcher runs one command on m as a client of its own and returns the
// parsed reply; one caller at a time.
func dispatcher(m *miniredis.Miniredis) func(args ...string) (any, error) {
	var replies bytes.Buffer
	out := bufio.NewWriter(&replies)
	in := bufio.NewReader(&replies)
	peer := server.NewPeer(out)
	return func(args ...string) (any, error) {
		replies.Reset()
		in.Reset(&replies)
		m.Server().Dispatch(peer, args)
		_ = out.Flush() // into replies: cannot fail
		return server.ParseReply(in)
	}
}

// applyOnce is one try of the apply script (readmodel.go) through do; not
// done: a watched key changed before the writes, try again.
func applyOnce(do func(args ...string) (any, error), keys, args []string) (int, bool, error) {
	checkpoint, active := keys[0], keys[1]
	pos, gen, prev := args[0], args[1], args[2]
	if _, err := do("WATCH", checkpoint, active); err != nil {
		return 0, false, err
	}
	outcome, err := applyCheck(do, checkpoint, active, pos, gen, prev)
	if err != nil || outcome <= 0 {
		_, uerr := do("UNWATCH")
		return outcome, true, errors.Join(err, uerr)
	}
	if _, err := do("MULTI"); err != nil {
		return 0, false, err
	}
	for i := 3; i < len(args); {
		n, err := strconv.Atoi(args[i])
		if err != nil || i+1+n > len(args) {
			_, derr := do("DISCARD")
			return 0, false, errors.Join(fmt.Errorf("apply: malformed writes at argument %d", i), derr)
		}
		if _, err := do(args[i+1 : i+1+n]...); err != nil {
			_, derr := do("DISCARD")
			return 0, false, errors.Join(err, derr)
		}
		i += 1 + n
	}
	if _, err := do("SET", checkpoint, pos); err != nil {
		return 0, false, err
	}
	res, err := do("EXEC")
	if err != nil {
		return 0, false, err
	}
	return 1, res != nil, nil // nil: voided by a watched key
}

// applyCheck makes the apply script's checks: 1 to write, else its outcome.
func applyCheck(do func(args ...string) (any, error), checkpoint, active, pos, gen, prev string) (int, error) {
	served, err := do("GET", active)
	if err != nil {
		return 0, err
	}
	if served != gen {
		return staleWriter, nil
	}
	cp, err := do("GET", checkpoint)
	if err != nil {
		return 0, err
	}
	at, _ := cp.(string)
	if at == "" {
		at = padPosition(0)
	}
	switch {
	case at >= pos:
		return 0, nil
	case at < prev:
		return lostWrites, nil
	case at > prev:
		return overtaken, nil
	}
	return 1, nil
}

// argString renders a command argument as go-redis sends it.
func argString(a any) (string, error) {
	switch v := a.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("command argument of type %T", a)
}
