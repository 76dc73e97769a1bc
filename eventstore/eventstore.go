// Package eventstore is the port between Passerelle and its event log.
//
// The log is a set of streams, one per aggregate instance (named
// "<category>-<id>"), whose events also form one global, totally ordered log.
// Two adapters implement Store: the embedded engine (package
// eventstore/embedded, the default) and EventStoreDB (package eventstore/esdb).
// Both must pass the conformance suite in eventstore/conformance.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Position is a place in the global log. Positions of recorded events are
// strictly increasing but not dense. Start (0) lies before every event.
type Position uint64

// Start is the position before the first event of the global log.
const Start Position = 0

// String renders the position as the opaque decimal string used in the API.
func (p Position) String() string { return strconv.FormatUint(uint64(p), 10) }

// ParsePosition parses a position rendered by String.
func ParsePosition(s string) (Position, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q: must be a non-negative integer", s)
	}
	return Position(v), nil
}

// End is the stream revision that, read from, means the stream's last
// event.
const End uint64 = ^uint64(0)

// ExpectedRevision is the optimistic-concurrency condition of an append.
type ExpectedRevision struct {
	kind expectKind
	rev  uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream appends only if the stream has no event yet.
	NoStream = ExpectedRevision{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedRevision{kind: expectStreamExists}
)

// Exact appends only if the stream's last revision is rev.
func Exact(rev uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, rev: rev} }

// IsAny reports whether the condition is Any. IsAny, IsNoStream,
// IsStreamExists and Revision let adapters map the condition.
func (e ExpectedRevision) IsAny() bool { return e.kind == expectAny }

// IsNoStream reports whether the condition is NoStream.
func (e ExpectedRevision) IsNoStream() bool { return e.kind == expectNoStream }

// IsStreamExists reports whether the condition is StreamExists.
func (e ExpectedRevision) IsStreamExists() bool { return e.kind == expectStreamExists }

// Revision returns the exact revision expected and whether one is expected.
func (e ExpectedRevision) Revision() (uint64, bool) { return e.rev, e.kind == expectExact }

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectStreamExists:
		return "stream-exists"
	case expectExact:
		return strconv.FormatUint(e.rev, 10)
	default:
		return "any"
	}
}

// Check reports whether a stream whose last revision is current (-1: no
// stream) satisfies the condition. Adapters that decide locally use it.
func (e ExpectedRevision) Check(current int64) bool {
	switch e.kind {
	case expectNoStream:
		return current < 0
	case expectStreamExists:
		return current >= 0
	case expectExact:
		return current == int64(e.rev)
	default:
		return true
	}
}

// EventData is an event to append.
type EventData struct {
	ID       uuid.UUID // unique; a retried command reuses its IDs
	Type     string    // stable, past tense: OfferPosted
	Data     []byte    // JSON
	Metadata []byte    // JSON, see Metadata
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID       uuid.UUID
	Stream   string
	Revision uint64 // dense from 0 within the stream
	Position Position
	Type     string
	Data     []byte
	Metadata []byte
	Created  time.Time // when the store recorded it, UTC
}

// Category is the part of the stream name before the first '-'.
func (e RecordedEvent) Category() string { return Category(e.Stream) }

// Category returns the category of a stream name "<category>-<id>".
func Category(stream string) string {
	if i := strings.IndexByte(stream, '-'); i >= 0 {
		return stream[:i]
	}
	return stream
}

// AppendResult says where an append landed.
type AppendResult struct {
	LastRevision uint64   // revision of the last event written (or found, on an idempotent retry)
	Position     Position // global position of that event
}

// Direction of a stream read.
type Direction uint8

// Reading directions: from the first event on, or from the last back.
const (
	Forwards Direction = iota
	Backwards
)

// Filter narrows a subscription. Empty fields match everything; when both
// are set an event must match both.
type Filter struct {
	Categories []string // stream categories, e.g. "offer" matches "offer-…"
	EventTypes []string // exact event type names
}

// Match reports whether the event passes the filter.
func (f Filter) Match(stream, eventType string) bool {
	if len(f.Categories) > 0 {
		cat, ok := Category(stream), false
		for _, c := range f.Categories {
			if c == cat {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if t == eventType {
				return true
			}
		}
		return false
	}
	return true
}

// Store is the event store port.
type Store interface {
	// Append writes events atomically at the end of stream if expected holds.
	// Appending events whose IDs are already stored right after the expected
	// revision returns the original result and writes nothing.
	//
	// An event ID already stored in another stream is not deduplicated, and
	// the port promises no more than this: the embedded store (and the
	// protocol server over it) refuses the append with ErrInvalidAppend,
	// EventStoreDB writes it as a new event. Callers give every new event a
	// new ID.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...EventData) (AppendResult, error)

	// ReadStream reads up to max events (max <= 0: all) of stream starting
	// at revision from (inclusive; End = the last event) in direction dir.
	// A stream with no event gives ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, dir Direction, from uint64, max int) ([]RecordedEvent, error)

	// ReadAll reads up to max events (max <= 0: all) of the global log
	// after position from (exclusive), forwards.
	ReadAll(ctx context.Context, from Position, max int) ([]RecordedEvent, error)

	// SubscribeAll follows the global log after position from (exclusive):
	// it delivers the past, then new events as they are committed.
	SubscribeAll(ctx context.Context, from Position, filter Filter) (Subscription, error)

	// Head is the position of the last event of the global log (Start when empty).
	Head(ctx context.Context) (Position, error)

	Close() error
}

// StreamAppend is one stream's part of an atomic append to several
// streams (MultiAppender).
type StreamAppend struct {
	Stream   string
	Expected ExpectedRevision
	Events   []EventData
}

// Counter is a Store that counts events without reading them. Callers
// check for it and fall back to reading the events.
type Counter interface {
	// CountAfter counts the events after from, up to max.
	CountAfter(ctx context.Context, from Position, max int) (int, error)
}

// MultiAppender is a Store that can also append to several streams in one
// atomic, durable write. Callers check for it and fall back to one Append
// per stream when the store does not offer it.
type MultiAppender interface {
	// AppendMulti writes every part or none. Each part follows Append's
	// rules, its own expected revision and deduplication included: a part
	// whose events are all stored right after its expected revision writes
	// nothing and gives its original result, while the other parts are
	// written. When a part is refused, the error is that part's (a
	// *WrongExpectedVersionError names its stream) and nothing is
	// written. Streams must be distinct and event IDs unique across parts;
	// the maximum append size applies to all the events together. The
	// results are in the order of the parts.
	AppendMulti(ctx context.Context, parts ...StreamAppend) ([]AppendResult, error)
}

// Subscription delivers events in global order.
type Subscription interface {
	// Recv blocks until the next event, the subscription is closed
	// (ErrSubscriptionClosed), or ctx ends.
	Recv(ctx context.Context) (RecordedEvent, error)
	Close() error
}

var (
	// ErrWrongExpectedVersion means the stream's revision did not satisfy
	// the expected revision. The error is a *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrStreamNotFound means the stream has no event.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrStreamDeleted means the stream was deleted or tombstoned.
	ErrStreamDeleted = errors.New("stream deleted")
	// ErrSubscriptionClosed is Recv's answer on a closed subscription.
	ErrSubscriptionClosed = errors.New("subscription closed")
	// ErrInvalidAppend means the append itself is malformed (no event,
	// empty stream name or type, the same event ID twice).
	ErrInvalidAppend = errors.New("invalid append")
	// ErrAccessDenied means the store refused the caller the operation
	// (EventStoreDB ACLs).
	ErrAccessDenied = errors.New("access denied")
	// ErrNotLeader means the store's node cannot take the operation as it
	// is not the cluster's leader; a retry may reach the new leader.
	ErrNotLeader = errors.New("not leader")
	// ErrAppendTooLarge means the append is larger (AppendSize) than the
	// store's maximum append size. Nothing is written.
	ErrAppendTooLarge = errors.New("append too large")
)

// DefaultMaxAppendSize is the maximum append size of every store unless
// configured otherwise: EventStoreDB's default (1 MiB).
const DefaultMaxAppendSize = 1 << 20

// AppendSize is the size of an append as EventStoreDB counts it against
// its maximum append size: the data and metadata of each event, plus twice
// the length of its type.
func AppendSize(events []EventData) int {
	n := 0
	for _, e := range events {
		n += len(e.Data) + len(e.Metadata) + 2*len(e.Type)
	}
	return n
}

// CheckAppendSize refuses an append larger than max bytes (AppendSize)
// with ErrAppendTooLarge.
func CheckAppendSize(events []EventData, max int) error {
	if n := AppendSize(events); n > max {
		return fmt.Errorf("%w: %d bytes, more than the maximum of %d", ErrAppendTooLarge, n, max)
	}
	return nil
}

// WrongExpectedVersionError carries the stream's actual revision.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedRevision
	Actual   int64 // -1: the stream does not exist
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("stream %s: expected revision %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes the error an ErrWrongExpectedVersion for errors.Is.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// ValidateMultiAppend checks an AppendMulti as ValidateAppend checks an
// Append, and that its streams are distinct and its event IDs unique
// across parts.
func ValidateMultiAppend(parts []StreamAppend) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: no stream", ErrInvalidAppend)
	}
	streams := make(map[string]struct{}, len(parts))
	ids := map[uuid.UUID]struct{}{}
	for _, p := range parts {
		if err := ValidateAppend(p.Stream, p.Events); err != nil {
			return err
		}
		if _, dup := streams[p.Stream]; dup {
			return fmt.Errorf("%w: stream %s given twice", ErrInvalidAppend, p.Stream)
		}
		streams[p.Stream] = struct{}{}
		for _, e := range p.Events {
			if _, dup := ids[e.ID]; dup {
				return fmt.Errorf("%w: event ID %s given twice", ErrInvalidAppend, e.ID)
			}
			ids[e.ID] = struct{}{}
		}
	}
	return nil
}

// ValidateAppend checks what every adapter refuses: no event, an empty
// stream name or type, a nil event ID (the EventStoreDB client would
// replace it with a random one, losing deduplication), an ID given twice.
func ValidateAppend(stream string, events []EventData) error {
	switch {
	case len(events) == 0:
		return fmt.Errorf("%w: no event", ErrInvalidAppend)
	case stream == "":
		return fmt.Errorf("%w: empty stream name", ErrInvalidAppend)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		switch _, dup := seen[e.ID]; {
		case e.Type == "":
			return fmt.Errorf("%w: event %d has an empty type", ErrInvalidAppend, i)
		case e.ID == uuid.Nil:
			return fmt.Errorf("%w: event %d has no ID", ErrInvalidAppend, i)
		case dup:
			return fmt.Errorf("%w: event ID %s given twice", ErrInvalidAppend, e.ID)
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}
