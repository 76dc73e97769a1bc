package chain_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"passerelle/eventstore"
	"passerelle/eventstore/chain"
)

// logStore serves a fixed log: Verify reads it whole, and reads an event
// of a stream again to name its type in a Break.
type logStore struct {
	eventstore.Store
	evs []eventstore.RecordedEvent
}

func (s logStore) ReadAll(_ context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	var page []eventstore.RecordedEvent
	for _, e := range s.evs {
		if e.Position > from && len(page) < max {
			page = append(page, e)
		}
	}
	return page, nil
}

func (s logStore) ReadStream(_ context.Context, stream string, _ eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	var page []eventstore.RecordedEvent
	for _, e := range s.evs {
		if e.Stream == stream && e.Revision >= from && len(page) < max {
			page = append(page, e)
		}
	}
	return page, nil
}

// logBuilder writes well-linked events, for the cases to break.
type logBuilder struct {
	evs   []eventstore.RecordedEvent
	heads map[string]eventstore.RecordedEvent
}

func (l *logBuilder) add(stream, typ string, data any) *eventstore.RecordedEvent {
	if l.heads == nil {
		l.heads = map[string]eventstore.RecordedEvent{}
	}
	rev, prev := uint64(0), ""
	if h, ok := l.heads[stream]; ok {
		rev, prev = h.Revision+1, chain.Of(h)
	}
	b, _ := json.Marshal(data)
	md, _ := json.Marshal(map[string]string{"prev_hash": prev})
	l.evs = append(l.evs, eventstore.RecordedEvent{ID: uuid.New(), Stream: stream, Revision: rev,
		Position: eventstore.Position(len(l.evs) + 1), Type: typ, Data: b, Metadata: md})
	e := &l.evs[len(l.evs)-1]
	l.heads[stream] = *e
	return e
}

// seal records the heads of streams as they are now.
func (l *logBuilder) seal(prev string, streams ...string) *eventstore.RecordedEvent {
	s := chain.Seal{Heads: map[string]chain.Head{}, Previous: prev}
	for _, st := range streams {
		h := l.heads[st]
		s.Heads[st] = chain.Head{Revision: h.Revision, Hash: chain.Of(h)}
	}
	return l.add(chain.SealStream, chain.SealType, s)
}

// Each kind of damage is reported, on the event it concerns.
func TestVerifyReportsEachBreak(t *testing.T) {
	for _, c := range []struct {
		name   string
		build  func(l *logBuilder)
		stream string
		rev    uint64
		reason string
	}{
		{"intact", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add("a-1", "E", 2)
			first := chain.Of(*l.seal("", "a-1"))
			l.add("a-1", "E", 3)
			l.seal(first, "a-1")
		}, "", 0, ""},
		{"unreadable metadata", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add("a-1", "E", 2).Metadata = []byte("{")
		}, "a-1", 1, "its metadata is not readable"},
		{"first events missing", func(l *logBuilder) {
			l.add("a-1", "E", 1).Revision = 1
		}, "a-1", 1, "the stream's earlier events are missing"},
		{"revision gap", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add("a-1", "E", 2).Revision = 2
		}, "a-1", 2, "revisions are not dense"},
		{"predecessor changed", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add("a-1", "E", 2)
			l.evs[0].Data = []byte("7")
		}, "a-1", 0, "its hash no longer matches the one recorded by its successor"},
		{"predecessor's hash spelt otherwise", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			e := l.add("a-1", "E", 2)
			e.Metadata = []byte(strings.ToUpper(string(e.Metadata)))
		}, "a-1", 0, "its hash no longer matches the one recorded by its successor"},
		{"unreadable seal", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add(chain.SealStream, chain.SealType, "not a seal")
		}, chain.SealStream, 0, "the seal is not readable"},
		{"seal out of sequence", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.seal("")
			l.add("a-1", "E", 2)
			l.seal("", "a-1")
		}, chain.SealStream, 1, "the seal does not follow the previous seal"},
		{"sealed event missing", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.add("a-1", "E", 2)
			l.seal("", "a-1")
			l.evs = append(l.evs[:1], l.evs[2:]...)
		}, "a-1", 1, "an event recorded by a seal is missing"},
		{"stream head changed", func(l *logBuilder) {
			l.add("a-1", "E", 1)
			l.seal("", "a-1")
			l.evs[0].Data = []byte("7")
		}, "a-1", 0, "its hash no longer matches the one recorded by a seal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var l logBuilder
			c.build(&l)
			rep, err := chain.Verify(context.Background(), logStore{evs: l.evs}, func(string) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			b := rep.Break
			switch {
			case c.reason == "" && (b != nil || rep.Events != 5 || rep.Seals != 2):
				t.Fatalf("intact log: %+v", rep)
			case c.reason == "":
			case b == nil || b.Stream != c.stream || b.Revision != c.rev || b.Reason != c.reason:
				t.Fatalf("break %+v, want %s@%d: %s", b, c.stream, c.rev, c.reason)
			case b.Type != typeIn(l.evs, b.Stream, b.Revision):
				t.Fatalf("break %+v names type %q, want the event's, %q", b, b.Type, typeIn(l.evs, b.Stream, b.Revision))
			}
		})
	}
}

// typeIn is the type of a log's event ("" when it is not there).
func typeIn(evs []eventstore.RecordedEvent, stream string, rev uint64) string {
	for _, e := range evs {
		if e.Stream == stream && e.Revision == rev {
			return e.Type
		}
	}
	return ""
}
