package projections

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

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
	return func(ctx context.Context, cmds [][]any) error {
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
