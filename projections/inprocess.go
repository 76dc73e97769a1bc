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
	"github.com/alicebob/miniredis/v2/geohash"
	"github.com/alicebob/miniredis/v2/server"
)

// InProcess is a RebuildOptions.Write that hands a rebuild's commands
// straight to the in-process server m of the embedded default. Over a
// connection, miniredis writes the reply of every command of a pipeline to
// the socket on its own, a system call each, which bounds a rebuild far
// below what the server itself does; in process, a command costs its work.
// The commands a batch renders are applied with m's own methods (see
// writeDirect), any other through the server's dispatch.
func InProcess(m *miniredis.Miniredis) func(context.Context, [][]any) error {
	var replies bytes.Buffer
	out := bufio.NewWriter(&replies)
	peer := server.NewPeer(out)
	db := m.DB(0) // a new client's database, the one the peer writes to
	var (
		mu   sync.Mutex // one peer, reply buffer and scratch for the rebuild's writers
		strs []string
	)
	return func(ctx context.Context, cmds [][]any) error {
		mu.Lock()
		defer mu.Unlock()
		defer func() { clear(strs[:cap(strs)]) }() // keeps no value until the next call
		for _, c := range cmds {
			if err := ctx.Err(); err != nil {
				return err
			}
			done, scratch, err := writeDirect(db, c, strs[:0])
			if strs = scratch; err != nil {
				return err
			}
			if done {
				continue
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

// writeDirect applies c with db's own methods when it is one of the
// writes a batch renders most (SET, DEL, SADD, SREM, ZADD, ZREM, GEOADD,
// HSET) and writes to db what the command would; done is false, and
// nothing written, for any other command or argument, which the server's
// dispatch then runs (or refuses) as Redis would. Dispatched, a rebuild's
// command had its arguments formatted as strings, parsed back (the
// points' coordinates as well) and its reply written: on a log of offers
// that was a quarter to a third of what the in-process writes cost (in
// profiles of the embedded default's start). strs is scratch, returned
// for the next call.
func writeDirect(db *miniredis.RedisDB, c []any, strs []string) (done bool, _ []string, err error) {
	if len(c) < 2 {
		return false, strs, nil
	}
	name, _ := c[0].(string)
	key, ok := c[1].(string)
	if !ok {
		return false, strs, nil
	}
	args := c[2:]
	switch name {
	case "SET", "DEL":
		done, err = setOrDelete(db, name, key, args)
	case "SADD", "SREM", "ZREM":
		if strs, done = stringArgs(args, strs); done && len(args) > 0 && ofType(db, key, name) {
			err = removeOrAdd(db, name, key, strs)
		} else {
			done = false
		}
	case "ZADD", "GEOADD":
		strs, done, err = addScored(db, name, key, args, strs)
	case "HSET":
		strs, done = setFields(db, key, args, strs)
	}
	if err != nil {
		return true, strs, fmt.Errorf("%s %s: %w", name, key, err)
	}
	return done, strs, nil
}

// setOrDelete runs SET key value or DEL key.
func setOrDelete(db *miniredis.RedisDB, command, key string, args []any) (bool, error) {
	if command == "DEL" {
		if len(args) != 0 {
			return false, nil
		}
		db.Del(key)
		return true, nil
	}
	if len(args) != 1 {
		return false, nil
	}
	var v string
	switch a := args[0].(type) {
	case string:
		v = a
	case []byte:
		v = string(a)
	default:
		return false, nil
	}
	// SET replaces a key of any type, which Set refuses
	if err := db.Set(key, v); errors.Is(err, miniredis.ErrWrongType) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	return true, nil
}

// addScored runs ZADD of score-member pairs or GEOADD of
// longitude-latitude-member triples, scored as the server scores them.
func addScored(db *miniredis.RedisDB, command, key string, args []any, strs []string) ([]string, bool, error) {
	step := 2
	if command == "GEOADD" {
		step = 3
	}
	nums, strs, ok := scoredArgs(args, step, strs)
	if !ok || !ofType(db, key, command) {
		return strs, false, nil
	}
	for i, member := range strs {
		score := nums[i*(step-1)]
		if step == 3 {
			score = float64(geohash.EncodeIntWithPrecision(nums[i*2+1], nums[i*2], 52))
		}
		if _, err := db.ZAdd(key, score, member); err != nil {
			return strs, true, err
		}
	}
	return strs, true, nil
}

// setFields runs HSET of field-value pairs.
func setFields(db *miniredis.RedisDB, key string, args []any, strs []string) ([]string, bool) {
	if len(args) == 0 || len(args)%2 != 0 || !ofType(db, key, "HSET") {
		return strs, false
	}
	for _, a := range args {
		s, err := argString(a)
		if err != nil {
			return strs, false
		}
		strs = append(strs, s)
	}
	db.HSet(key, strs...)
	return strs, true
}

// stringArgs appends args to strs when every one is a string.
func stringArgs(args []any, strs []string) ([]string, bool) {
	for _, a := range args {
		s, ok := a.(string)
		if !ok {
			return strs, false
		}
		strs = append(strs, s)
	}
	return strs, true
}

// scoredArgs reads ZADD's score-member pairs (step 2) or GEOADD's
// longitude-latitude-member triples (step 3): the numbers, and the
// members appended to strs. Not ok when one is of another type, or a
// point out of the range GEOADD takes.
func scoredArgs(args []any, step int, strs []string) (nums []float64, _ []string, ok bool) {
	if len(args) == 0 || len(args)%step != 0 {
		return nil, strs, false
	}
	nums = make([]float64, 0, len(args)/step*(step-1))
	for i := 0; i < len(args); i += step {
		for _, a := range args[i : i+step-1] {
			f, ok := a.(float64)
			if !ok {
				return nil, strs, false
			}
			nums = append(nums, f)
		}
		m, ok := args[i+step-1].(string)
		if !ok {
			return nil, strs, false
		}
		if step == 3 {
			lon, lat := nums[len(nums)-2], nums[len(nums)-1]
			if lat < -85.05112878 || lat > 85.05112878 || lon < -180 || lon > 180 {
				return nil, strs, false
			}
		}
		strs = append(strs, m)
	}
	return nums, strs, true
}

// ofType tells whether key is absent or of the type command writes: the
// commands refuse a key of another type, where some of db's methods
// would replace it or do nothing.
func ofType(db *miniredis.RedisDB, key, command string) bool {
	want := "hash"
	switch command {
	case "SADD", "SREM":
		want = "set"
	case "ZADD", "ZREM", "GEOADD":
		want = "zset"
	}
	t := db.Type(key)
	return t == "" || t == want
}

// removeOrAdd runs SADD, SREM or ZREM of members on key; removing
// from a key that is not there removes nothing, as the commands do.
func removeOrAdd(db *miniredis.RedisDB, command, key string, members []string) error {
	var err error
	switch command {
	case "SADD":
		_, err = db.SetAdd(key, members...)
	case "SREM":
		_, err = db.SRem(key, members...)
	case "ZREM":
		for _, m := range members {
			if _, err = db.ZRem(key, m); err != nil {
				break
			}
		}
	}
	if errors.Is(err, miniredis.ErrKeyNotFound) {
		return nil
	}
	return err
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
