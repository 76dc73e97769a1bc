package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("esdb: store closed")

// Defaults of the options.
const (
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

// readPage is how many events one $all read asks for while skipping
// system events.
const readPage = 512

type options struct {
	logger        *slog.Logger
	minBackoff    time.Duration
	maxBackoff    time.Duration
	closeTimeout  time.Duration
	maxAppendSize int
}

// Option configures Open.
type Option func(*options)

// WithLogger sets the logger of the store (default slog.Default()). The
// client's own messages are logged at debug level.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithResubscribeBackoff sets the delay before resubscribing after a drop:
// min the first time, doubling up to max while attempts fail (defaults
// DefaultMinBackoff, DefaultMaxBackoff).
func WithResubscribeBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithMaxAppendSize sets the largest append sent to the server, in bytes
// as eventstore.AppendSize counts them (default
// eventstore.DefaultMaxAppendSize, the server's default MaxAppendSize). A
// larger append is refused with eventstore.ErrAppendTooLarge before it is
// sent. Set it to the server's MaxAppendSize.
func WithMaxAppendSize(n int) Option { return func(o *options) { o.maxAppendSize = n } }

// WithCloseTimeout bounds how long Close waits for calls in progress
// before it leaves them behind (default DefaultCloseTimeout).
func WithCloseTimeout(d time.Duration) Option { return func(o *options) { o.closeTimeout = d } }

// Store is an eventstore.Store on EventStoreDB. It is safe for concurrent
// use.
type Store struct {
	conf esclient.Configuration
	opts options
	log  *slog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	cur    *conn
	closed bool
	subs   sync.WaitGroup
}

var _ eventstore.Store = (*Store)(nil)

// conn is one client and the calls running on it.
type conn struct {
	client *esclient.Client
	calls  sync.WaitGroup

	// gone is closed when the client has shut itself down. Calls blocked
	// in it then give up: the client may have left some blocked for good
	// (a request sent to its connection loop just as the loop ended).
	gone     chan struct{}
	goneOnce sync.Once
}

// errConnLost reports a call abandoned because its client shut down; a
// retry runs on a new client.
var errConnLost = errors.New("esdb: connection lost")

// Open parses the connection string and creates the client. It does not
// contact the server: the first operation does (see Ping).
func Open(connString string, opts ...Option) (*Store, error) {
	o := options{
		logger:        slog.Default(),
		minBackoff:    DefaultMinBackoff,
		maxBackoff:    DefaultMaxBackoff,
		closeTimeout:  DefaultCloseTimeout,
		maxAppendSize: eventstore.DefaultMaxAppendSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.minBackoff <= 0 {
		o.minBackoff = DefaultMinBackoff
	}
	if o.maxBackoff < o.minBackoff {
		o.maxBackoff = o.minBackoff
	}
	conf, err := esclient.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("esdb: connection string: %w", err)
	}
	conf.Logger = clientLogger(o.logger)
	s := &Store{conf: *conf, opts: o, log: o.logger}
	c, err := s.newConn()
	if err != nil {
		return nil, err
	}
	s.cur = c
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func (s *Store) newConn() (*conn, error) {
	conf := s.conf
	client, err := esclient.NewClient(&conf)
	if err != nil {
		return nil, fmt.Errorf("esdb: %w", err)
	}
	return &conn{client: client, gone: make(chan struct{})}, nil
}

func clientLogger(l *slog.Logger) esclient.LoggingFunc {
	return func(level esclient.LogLevel, format string, args ...any) {
		if !l.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		l.Debug("esdb client: "+fmt.Sprintf(format, args...), "client_level", level)
	}
}

// do runs fn (see call) and retries a follower's not-leader answer a few
// times, after a pause: the client reconnects to the leader the answer
// names, and a retried append is deduplicated by its event IDs.
func (s *Store) do(ctx context.Context, fn func(context.Context, *esclient.Client) error) error {
	pause := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.call(ctx, fn)
		var e *esclient.Error
		var partial partialRead
		if attempt == leaderRetries || !errors.As(err, &e) || e.Code() != esclient.ErrorCodeNotLeader || errors.As(err, &partial) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// leaderRetries bounds the attempts of a call answered "not leader".
const leaderRetries = 4

// partialRead is a read that failed after delivering events: it is not
// retried, or they would be delivered twice.
type partialRead struct{ error }

func (p partialRead) Unwrap() error { return p.error }

// call runs fn on the current client in a goroutine of its own: the
// client may block on its internal connection loop regardless of ctx
// (discovery, reconnection requests), and the caller must not wait longer
// than ctx allows. fn's context ends with the call, ctx or Close.
func (s *Store) call(ctx context.Context, fn func(context.Context, *esclient.Client) error) error {
	c, err := s.acquire()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	done := make(chan error, 1)
	go func() {
		defer c.calls.Done()
		err := fn(ctx, c.client)
		// Checked here rather than by the caller, who may have stopped
		// waiting: the call that learns the client is gone must say so.
		if clientGone(err) {
			s.retire(c)
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.gone:
		err = errConnLost
	}
	if err != nil && s.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

func (s *Store) acquire() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.cur.calls.Add(1)
	return s.cur, nil
}

// clientGone reports whether the client has shut itself down, which it
// does for good when node discovery fails.
func clientGone(err error) bool {
	var e *esclient.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == esclient.ErrorCodeConnectionClosed ||
		strings.Contains(e.Error(), "maximum discovery attempt count reached")
}

// retire releases the calls waiting on c and swaps in a new client. The
// old one is left alone rather than closed: its connection loop has
// ended, and closing its channel would panic a call of ours still blocked
// sending to it.
func (s *Store) retire(c *conn) {
	c.goneOnce.Do(func() { close(c.gone) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.cur != c {
		return
	}
	nc, err := s.newConn()
	if err != nil {
		s.log.Error("esdb: cannot create a new client", "err", err)
		return
	}
	s.cur = nc
	s.log.Warn("esdb: client lost its connection for good; using a new client")
}

// Close ends subscriptions, waits for calls in progress (at most the close
// timeout) and closes the client.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c := s.cur
	s.mu.Unlock()
	s.cancel()
	s.subs.Wait()
	idle := make(chan struct{})
	go func() { c.calls.Wait(); close(idle) }()
	select {
	case <-idle:
		// Only now is closing safe: no call can still be sending to the
		// client's internal channel.
		return c.client.Close()
	case <-time.After(s.opts.closeTimeout):
		s.log.Warn("esdb: calls still running at close; leaving the client open")
		return nil
	}
}

// Ping checks that the server answers, by reading the head of $all.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.Head(ctx)
	return err
}

func expectedRevision(e eventstore.ExpectedRevision) esclient.ExpectedRevision {
	switch {
	case e.IsNoStream():
		return esclient.NoStream{}
	case e.IsStreamExists():
		return esclient.StreamExists{}
	}
	if rev, ok := e.Revision(); ok {
		return esclient.Revision(rev)
	}
	return esclient.Any{}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.CheckAppendSize(events, s.opts.maxAppendSize); err != nil {
		return eventstore.AppendResult{}, err
	}
	data := make([]esclient.EventData, len(events))
	for i, e := range events {
		data[i] = esclient.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esclient.ContentTypeJson,
			Data:        e.Data,
			Metadata:    e.Metadata,
		}
	}
	opts := esclient.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}
	var res *esclient.WriteResult
	err := s.do(ctx, func(ctx context.Context, c *esclient.Client) error {
		var err error
		res, err = c.AppendToStream(ctx, stream, opts, data...)
		return err
	})
	if err != nil {
		return eventstore.AppendResult{}, s.appendError(ctx, stream, expected, err)
	}
	out := eventstore.AppendResult{LastRevision: res.NextExpectedVersion, Position: eventstore.Position(res.CommitPosition)}
	if out.Position == 0 {
		// A server may answer an idempotent retry without a position;
		// the port promises the original one.
		evs, err := s.ReadStream(ctx, stream, eventstore.Backwards, out.LastRevision, 1)
		if err == nil && len(evs) == 1 && evs[0].Revision == out.LastRevision {
			out.Position = evs[0].Position
		}
	}
	return out, nil
}

func (s *Store) appendError(ctx context.Context, stream string, expected eventstore.ExpectedRevision, err error) error {
	var e *esclient.Error
	if errors.As(err, &e) && e.Code() == esclient.ErrorCodeWrongExpectedVersion {
		actual, ok := reportedRevision(e)
		if !ok {
			actual = s.currentRevision(ctx, stream)
		}
		return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	if st, ok := grpcStatus(err); ok && st.Code() == codes.InvalidArgument {
		// The client keeps the status but not its trailers; the message
		// tells the size limit from the rest.
		if strings.HasPrefix(st.Message(), "Maximum Append Size") {
			return fmt.Errorf("esdb: append to %s: %w: %s", stream, eventstore.ErrAppendTooLarge, st.Message())
		}
		return fmt.Errorf("esdb: append to %s: %w: %s", stream, eventstore.ErrInvalidAppend, st.Message())
	}
	return mapError("append to "+stream, err)
}

// reportedRevision extracts the actual revision from the client's
// wrong-expected-version error, which carries it only in its message:
// "… expecting '<expected>' but got '<current>'".
func reportedRevision(e *esclient.Error) (int64, bool) {
	if e.Err() == nil {
		return 0, false
	}
	msg := e.Err().Error()
	i := strings.LastIndex(msg, "but got '")
	if i < 0 {
		return 0, false
	}
	v, _, ok := strings.Cut(msg[i+len("but got '"):], "'")
	if !ok {
		return 0, false
	}
	if v == "no_stream" {
		return -1, true
	}
	var n int64
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

// currentRevision reads the stream's last revision, -1 if unknown.
func (s *Store) currentRevision(ctx context.Context, stream string) int64 {
	evs, err := s.ReadStream(ctx, stream, eventstore.Backwards, eventstore.End, 1)
	if err != nil || len(evs) == 0 {
		return -1
	}
	return int64(evs[0].Revision)
}

// mapError maps client errors to the port's.
func mapError(op string, err error) error {
	var e *esclient.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esclient.ErrorCodeStreamDeleted:
			return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrStreamDeleted)
		case esclient.ErrorCodeResourceNotFound:
			return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrStreamNotFound)
		case esclient.ErrorCodeAccessDenied:
			return fmt.Errorf("esdb: %s: %w: %w", op, eventstore.ErrAccessDenied, err)
		case esclient.ErrorCodeNotLeader:
			return fmt.Errorf("esdb: %s: %w: %w", op, eventstore.ErrNotLeader, err)
		}
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

// grpcStatus is the gRPC status the client's error carries, if any.
func grpcStatus(err error) (*status.Status, bool) {
	var e *esclient.Error
	if !errors.As(err, &e) || e.Err() == nil {
		return nil, false
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(e.Err(), &se) {
		return nil, false
	}
	return se.GRPCStatus(), true
}

func toRecorded(e *esclient.RecordedEvent) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:       e.EventID,
		Stream:   e.StreamID,
		Revision: e.EventNumber,
		Position: eventstore.Position(e.Position.Commit),
		Type:     e.EventType,
		Data:     nonEmpty(e.Data),
		Metadata: nonEmpty(e.UserMetadata),
		Created:  e.CreatedDate.UTC(),
	}
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// isSystem reports events that are EventStoreDB's, not ours.
func isSystem(stream, eventType string) bool {
	return strings.HasPrefix(stream, "$") || strings.HasPrefix(eventType, "$")
}

// readEvents runs one read and passes each event to fn until it returns
// false.
func (s *Store) readEvents(ctx context.Context, read func(context.Context, *esclient.Client) (*esclient.ReadStream, error), fn func(*esclient.RecordedEvent) bool) error {
	return s.do(ctx, func(ctx context.Context, c *esclient.Client) error {
		rs, err := read(ctx, c)
		if err != nil {
			return err
		}
		defer rs.Close()
		for delivered := false; ; {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil && delivered {
				return partialRead{err}
			}
			if err != nil {
				return err
			}
			if e := ev.OriginalEvent(); e != nil {
				delivered = true
				if !fn(e) {
					return nil
				}
			}
		}
	})
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	opts := esclient.ReadStreamOptions{From: esclient.Revision(from)}
	switch dir {
	case eventstore.Forwards:
		opts.Direction = esclient.Forwards
	case eventstore.Backwards:
		opts.Direction = esclient.Backwards
	default:
		return nil, fmt.Errorf("esdb: unknown direction %d", dir)
	}
	count := uint64(math.MaxInt64)
	if max > 0 {
		count = uint64(max)
	}
	if from == eventstore.End {
		// End is the last event, in both directions; forwards, that is
		// the last event alone.
		opts.From = esclient.End{}
		if opts.Direction == esclient.Forwards {
			opts.Direction, count = esclient.Backwards, 1
		}
	}
	var out []eventstore.RecordedEvent
	err := s.readEvents(ctx, func(ctx context.Context, c *esclient.Client) (*esclient.ReadStream, error) {
		return c.ReadStream(ctx, stream, opts, count)
	}, func(e *esclient.RecordedEvent) bool {
		out = append(out, toRecorded(e))
		return true
	})
	if err != nil {
		return nil, mapError("read "+stream, err)
	}
	if len(out) == 0 && dir == eventstore.Backwards && from != eventstore.End {
		// A server reads backwards from past the end as nothing when the
		// count is small; the port reads from the last event.
		last, err := s.ReadStream(ctx, stream, eventstore.Backwards, eventstore.End, 1)
		if err == nil && len(last) == 1 && last[0].Revision < from {
			return s.ReadStream(ctx, stream, eventstore.Backwards, eventstore.End, max)
		}
	}
	return out, nil
}

// ReadAll implements eventstore.Store. System events are skipped and do
// not count towards max.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	last := esclient.Position{Commit: uint64(from), Prepare: uint64(from)}
	for {
		var start esclient.AllPosition = last
		if last.Commit == 0 {
			start = esclient.Start{}
		}
		// One more than wanted: the event at the start position comes too.
		want := uint64(readPage)
		if max > 0 {
			want = min(want, uint64(max-len(out))+1)
		}
		n, full := 0, false
		err := s.readEvents(ctx, func(ctx context.Context, c *esclient.Client) (*esclient.ReadStream, error) {
			return c.ReadAll(ctx, esclient.ReadAllOptions{From: start}, want)
		}, func(e *esclient.RecordedEvent) bool {
			n++
			// A read from a position includes the event there.
			if e.Position.Commit <= last.Commit {
				return true
			}
			last = e.Position
			if !isSystem(e.StreamID, e.EventType) {
				out = append(out, toRecorded(e))
				if max > 0 && len(out) == max {
					full = true
					return false
				}
			}
			return true
		})
		if err != nil {
			return nil, mapError("read $all", err)
		}
		if full || uint64(n) < want {
			return out, nil
		}
	}
}

// Head implements eventstore.Store: the position of the last event that is
// not a system event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	// The last event is usually ours: read it alone, then pages.
	page := uint64(1)
	var from esclient.AllPosition = esclient.End{}
	var last *esclient.Position
	for ; ; page = 32 {
		n, head := 0, eventstore.Start
		err := s.readEvents(ctx, func(ctx context.Context, c *esclient.Client) (*esclient.ReadStream, error) {
			return c.ReadAll(ctx, esclient.ReadAllOptions{Direction: esclient.Backwards, From: from}, page)
		}, func(e *esclient.RecordedEvent) bool {
			n++
			if last != nil && e.Position.Commit >= last.Commit {
				return true
			}
			p := e.Position
			last = &p
			if isSystem(e.StreamID, e.EventType) {
				return true
			}
			head = eventstore.Position(p.Commit)
			return false
		})
		if err != nil {
			return 0, mapError("read $all backwards", err)
		}
		if head != eventstore.Start || uint64(n) < page || last == nil {
			return head, nil
		}
		from = *last
	}
}
