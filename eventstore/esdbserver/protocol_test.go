package esdbserver_test

// These tests pin the protocol through the official client, the way the
// adapter and any other client code use it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/esdbserver"
	"passerelle/eventstore/esdbserver/esdbtest"
)

// waitTimeout bounds every wait for a message.
const waitTimeout = 10 * time.Second

func connect(t *testing.T, url string) *esclient.Client {
	t.Helper()
	conf, err := esclient.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	conf.Logger = esclient.NoopLogging()
	c, err := esclient.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func start(t *testing.T) (*esdbtest.Server, *esclient.Client) {
	t.Helper()
	srv := esdbtest.Start(t)
	return srv, connect(t, srv.URL())
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newStream(category string) string { return category + "-" + uuid.NewString() }

func jsonEvent(typ string, i int) esclient.EventData {
	return esclient.EventData{
		EventID:     uuid.New(),
		EventType:   typ,
		ContentType: esclient.ContentTypeJson,
		Data:        fmt.Appendf(nil, `{"i":%d}`, i),
		Metadata:    fmt.Appendf(nil, `{"command_id":"c-%d"}`, i),
	}
}

func jsonEvents(typ string, n int) []esclient.EventData {
	out := make([]esclient.EventData, n)
	for i := range out {
		out[i] = jsonEvent(typ, i)
	}
	return out
}

func mustAppend(t *testing.T, c *esclient.Client, stream string, exp esclient.ExpectedRevision, evs ...esclient.EventData) *esclient.WriteResult {
	t.Helper()
	res, err := c.AppendToStream(ctxT(t), stream, esclient.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// readStream reads the whole answer of a stream read.
func readStream(t *testing.T, c *esclient.Client, stream string, opts esclient.ReadStreamOptions, count uint64) ([]*esclient.RecordedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(ctxT(t), stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return drain(rs)
}

func readAll(t *testing.T, c *esclient.Client, opts esclient.ReadAllOptions, count uint64) []*esclient.RecordedEvent {
	t.Helper()
	rs, err := c.ReadAll(ctxT(t), opts, count)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	evs, err := drain(rs)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func drain(rs *esclient.ReadStream) ([]*esclient.RecordedEvent, error) {
	var out []*esclient.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.OriginalEvent())
	}
}

func errorCode(err error) (esclient.ErrorCode, bool) {
	var e *esclient.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.Code(), true
}

func wantCode(t *testing.T, what string, err error, want esclient.ErrorCode) {
	t.Helper()
	if code, ok := errorCode(err); !ok || code != want {
		t.Fatalf("%s: error %v, want code %d", what, err, want)
	}
}

func subscribeAll(t *testing.T, c *esclient.Client, opts esclient.SubscribeToAllOptions) *esclient.Subscription {
	t.Helper()
	sub, err := c.SubscribeToAll(ctxT(t), opts)
	if err != nil {
		t.Fatalf("subscribe to $all: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// next waits for the next message of a subscription.
func next(t *testing.T, sub *esclient.Subscription, timeout time.Duration) *esclient.SubscriptionEvent {
	t.Helper()
	got := make(chan *esclient.SubscriptionEvent, 1)
	go func() { got <- sub.Recv() }()
	select {
	case ev := <-got:
		if ev.SubscriptionDropped != nil {
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no subscription message within %v", timeout)
		return nil
	}
}

// nextEvent skips to the next event of a subscription.
func nextEvent(t *testing.T, sub *esclient.Subscription) *esclient.RecordedEvent {
	t.Helper()
	for {
		if ev := next(t, sub, waitTimeout); ev.EventAppeared != nil {
			return ev.EventAppeared.OriginalEvent()
		}
	}
}

func TestServerVersion(t *testing.T) {
	_, c := start(t)
	v, err := c.GetServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if *v != (esclient.ServerVersion{Major: 24, Minor: 10, Patch: 0}) {
		t.Fatalf("server version %+v, want 24.10.0", *v)
	}
}

func TestEventIDRoundTrip(t *testing.T) {
	_, c := start(t)
	stream := newStream("ids")
	evs := jsonEvents("IDed", 3)
	evs[1].EventID = uuid.MustParse("00000000-0000-0000-0000-000000000001")
	evs[2].EventID = uuid.MustParse("ffffffff-ffff-4fff-bfff-ffffffffffff") // negative halves once signed
	mustAppend(t, c, stream, esclient.NoStream{}, evs...)

	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	all := readAll(t, c, esclient.ReadAllOptions{}, 100)
	sub, err := c.SubscribeToStream(ctxT(t), stream, esclient.SubscribeToStreamOptions{From: esclient.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, want := range evs {
		if got[i].EventID != want.EventID {
			t.Fatalf("read stream: event %d id %s, want %s", i, got[i].EventID, want.EventID)
		}
		if all[i].EventID != want.EventID {
			t.Fatalf("read $all: event %d id %s, want %s", i, all[i].EventID, want.EventID)
		}
		if e := nextEvent(t, sub); e.EventID != want.EventID {
			t.Fatalf("subscription: event %d id %s, want %s", i, e.EventID, want.EventID)
		}
	}
}

func TestMetadataAndContentTypeRoundTrip(t *testing.T) {
	_, c := start(t)
	stream := newStream("meta")
	evs := []esclient.EventData{
		jsonEvent("AsJSON", 0),
		{EventID: uuid.New(), EventType: "AsBytes", ContentType: esclient.ContentTypeBinary,
			Data: []byte{0, 1, 2, 0xff}, Metadata: []byte{0xfe, 0, '\n', 7}},
		// Custom metadata that looks like the server's own envelope.
		{EventID: uuid.New(), EventType: "Tricky", ContentType: esclient.ContentTypeJson,
			Data: []byte(`{}`), Metadata: []byte("\x00esdbserver:content-type=x\ny")},
		{EventID: uuid.New(), EventType: "Bare", ContentType: esclient.ContentTypeJson},
	}
	wantCT := []string{"application/json", "application/octet-stream", "application/json", "application/json"}
	mustAppend(t, c, stream, esclient.Any{}, evs...)

	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	for i, want := range evs {
		e := got[i]
		if e.EventType != want.EventType || e.ContentType != wantCT[i] ||
			!bytes.Equal(e.Data, want.Data) || !bytes.Equal(e.UserMetadata, want.Metadata) {
			t.Fatalf("event %d: type %q content type %q data %q metadata %q; want %q %q %q %q", i,
				e.EventType, e.ContentType, e.Data, e.UserMetadata, want.EventType, wantCT[i], want.Data, want.Metadata)
		}
		if e.SystemMetadata["type"] != want.EventType || e.SystemMetadata["content-type"] != wantCT[i] {
			t.Fatalf("event %d: system metadata %v", i, e.SystemMetadata)
		}
	}
}

func TestCreatedPresent(t *testing.T) {
	_, c := start(t)
	stream := newStream("created")
	before := time.Now()
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Timed", 2)...)
	after := time.Now()

	sub := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.Start{}})
	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{Direction: esclient.Backwards, From: esclient.End{}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, readAll(t, c, esclient.ReadAllOptions{}, 10)...)
	got = append(got, nextEvent(t, sub), nextEvent(t, sub))
	for i, e := range got {
		ticks, err := strconv.ParseInt(e.SystemMetadata["created"], 10, 64)
		if err != nil {
			t.Fatalf("event %d: created %q: %v", i, e.SystemMetadata["created"], err)
		}
		if created := time.Unix(0, ticks*100); !created.Equal(e.CreatedDate) {
			t.Fatalf("event %d: created %v, client parsed %v", i, created, e.CreatedDate)
		}
		if e.CreatedDate.Before(before.Truncate(time.Microsecond)) || e.CreatedDate.After(after) {
			t.Fatalf("event %d: created %v, not between %v and %v", i, e.CreatedDate, before, after)
		}
	}
}

func TestWrongExpectedVersion(t *testing.T) {
	_, c := start(t)
	stream := newStream("wev")
	ctx := ctxT(t)
	appendTo := func(exp esclient.ExpectedRevision) error {
		_, err := c.AppendToStream(ctx, stream, esclient.AppendToStreamOptions{ExpectedRevision: exp}, jsonEvent("Versioned", 0))
		return err
	}
	cases := []struct {
		exp     esclient.ExpectedRevision
		current string // in the client's message; "" for success
	}{
		{esclient.Revision(0), "no_stream"},
		{esclient.StreamExists{}, "no_stream"},
		{esclient.NoStream{}, ""},
		{esclient.NoStream{}, "0"},
		{esclient.Revision(0), ""},
		{esclient.Revision(0), "1"},
		{esclient.Revision(7), "1"},
		{esclient.StreamExists{}, ""},
		{esclient.Any{}, ""},
	}
	for i, tc := range cases {
		err := appendTo(tc.exp)
		if tc.current == "" {
			if err != nil {
				t.Fatalf("case %d (%#v): %v", i, tc.exp, err)
			}
			continue
		}
		wantCode(t, fmt.Sprintf("case %d (%#v)", i, tc.exp), err, esclient.ErrorCodeWrongExpectedVersion)
		if !strings.Contains(err.Error(), "but got '"+tc.current+"'") {
			t.Fatalf("case %d: %v does not report current revision %s", i, err, tc.current)
		}
	}
	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("stream holds %d events, want 4", len(got))
	}
}

func TestIdempotentReappend(t *testing.T) {
	_, c := start(t)
	stream := newStream("idem")
	first, second := jsonEvents("Once", 2), jsonEvents("Twice", 2)
	r1 := mustAppend(t, c, stream, esclient.NoStream{}, first...)
	r2 := mustAppend(t, c, stream, esclient.Revision(1), second...)
	mustAppend(t, c, stream, esclient.Revision(3), jsonEvent("Later", 0))

	// Retries at their old expected revisions, after the stream moved on.
	if again := mustAppend(t, c, stream, esclient.NoStream{}, first...); *again != *r1 {
		t.Fatalf("retry of the first append: %+v, want %+v", *again, *r1)
	}
	if again := mustAppend(t, c, stream, esclient.Revision(1), second...); *again != *r2 {
		t.Fatalf("retry of the second append: %+v, want %+v", *again, *r2)
	}
	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("stream holds %d events after retries, want 5", len(got))
	}
	for i, want := range append(first, second...) {
		if got[i].EventID != want.EventID {
			t.Fatalf("event %d is %s, want %s", i, got[i].EventID, want.EventID)
		}
	}
}

func TestReadMissingStream(t *testing.T) {
	_, c := start(t)
	stream := newStream("missing")
	for _, opts := range []esclient.ReadStreamOptions{
		{},
		{Direction: esclient.Backwards, From: esclient.End{}},
		{From: esclient.Revision(5)},
	} {
		got, err := readStream(t, c, stream, opts, 10)
		wantCode(t, fmt.Sprintf("read %+v", opts), err, esclient.ErrorCodeResourceNotFound)
		if len(got) != 0 {
			t.Fatalf("read of a missing stream returned %d events", len(got))
		}
	}
	// A stream that exists, read past its end: no event, no error.
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvent("Now", 0))
	got, err := readStream(t, c, stream, esclient.ReadStreamOptions{From: esclient.Revision(1)}, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("read past the end: %d events, %v", len(got), err)
	}
}

func TestReadTombstonedStream(t *testing.T) {
	srv, c := start(t)
	ctx := ctxT(t)
	stream := newStream("tomb")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Buried", 2)...)

	_, err := c.TombstoneStream(ctx, stream, esclient.TombstoneStreamOptions{ExpectedRevision: esclient.Revision(0)})
	if err == nil {
		t.Fatal("tombstone with a stale expected revision succeeded")
	}
	res, err := c.TombstoneStream(ctx, stream, esclient.TombstoneStreamOptions{ExpectedRevision: esclient.Revision(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit == 0 || res.Position.Prepare == 0 {
		t.Fatalf("tombstone position %+v", res.Position)
	}

	check := func(c *esclient.Client) {
		t.Helper()
		_, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 10)
		wantCode(t, "read", err, esclient.ErrorCodeStreamDeleted)
		if !strings.Contains(err.Error(), stream) {
			t.Fatalf("read error %v does not name the stream", err)
		}
		_, err = readStream(t, c, stream, esclient.ReadStreamOptions{Direction: esclient.Backwards, From: esclient.End{}}, 1)
		wantCode(t, "read backwards", err, esclient.ErrorCodeStreamDeleted)
		_, err = c.AppendToStream(ctx, stream, esclient.AppendToStreamOptions{}, jsonEvent("Late", 0))
		wantCode(t, "append", err, esclient.ErrorCodeStreamDeleted)
		_, err = c.DeleteStream(ctx, stream, esclient.DeleteStreamOptions{})
		wantCode(t, "delete", err, esclient.ErrorCodeStreamDeleted)
		_, err = c.SubscribeToStream(ctx, stream, esclient.SubscribeToStreamOptions{From: esclient.Start{}})
		wantCode(t, "subscribe", err, esclient.ErrorCodeStreamDeleted)
	}
	check(c)

	// The tombstone is a system event in $all.
	var found bool
	for _, e := range readAll(t, c, esclient.ReadAllOptions{}, 100) {
		if e.StreamID == "$$"+stream && e.EventType == "$streamDeleted" {
			found = true
		}
	}
	if !found {
		t.Fatal("no $streamDeleted event in $all")
	}

	// It is durable.
	srv.Restart(t)
	check(connect(t, srv.URL()))
}

func TestSoftDelete(t *testing.T) {
	srv, c := start(t)
	ctx := ctxT(t)
	stream := newStream("soft")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Old", 2)...)
	res, err := c.DeleteStream(ctx, stream, esclient.DeleteStreamOptions{ExpectedRevision: esclient.Revision(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit == 0 {
		t.Fatalf("delete position %+v", res.Position)
	}
	_, err = readStream(t, c, stream, esclient.ReadStreamOptions{}, 10)
	wantCode(t, "read after delete", err, esclient.ErrorCodeResourceNotFound)

	// Appending brings the stream back, continuing its revisions.
	fresh := jsonEvent("New", 0)
	if w := mustAppend(t, c, stream, esclient.Revision(1), fresh); w.NextExpectedVersion != 2 {
		t.Fatalf("append after delete: revision %d, want 2", w.NextExpectedVersion)
	}
	check := func(c *esclient.Client) {
		t.Helper()
		got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].EventID != fresh.EventID || got[0].EventNumber != 2 {
			t.Fatalf("read after recreation: %d events %+v", len(got), got)
		}
		back, err := readStream(t, c, stream, esclient.ReadStreamOptions{Direction: esclient.Backwards, From: esclient.End{}}, 10)
		if err != nil || len(back) != 1 {
			t.Fatalf("read backwards after recreation: %d events, %v", len(back), err)
		}
	}
	check(c)
	srv.Restart(t)
	check(connect(t, srv.URL()))
}

func TestSubscriptionStartIsExclusive(t *testing.T) {
	_, c := start(t)
	stream := newStream("excl")
	var pos []esclient.Position
	for i := range 3 {
		exp := esclient.ExpectedRevision(esclient.Revision(uint64(i - 1)))
		if i == 0 {
			exp = esclient.NoStream{}
		}
		w := mustAppend(t, c, stream, exp, jsonEvent("Excl", i))
		pos = append(pos, esclient.Position{Commit: w.CommitPosition, Prepare: w.PreparePosition})
	}

	all := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: pos[0]})
	for i := 1; i < 3; i++ {
		if e := nextEvent(t, all); e.Position != pos[i] || e.EventNumber != uint64(i) {
			t.Fatalf("$all from %v: got %s@%d at %v, want revision %d at %v", pos[0], e.StreamID, e.EventNumber, e.Position, i, pos[i])
		}
	}

	st, err := c.SubscribeToStream(ctxT(t), stream, esclient.SubscribeToStreamOptions{From: esclient.Revision(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 1; i < 3; i++ {
		if e := nextEvent(t, st); e.EventNumber != uint64(i) {
			t.Fatalf("stream from revision 0: got revision %d, want %d", e.EventNumber, i)
		}
	}

	// From the end: only what comes next.
	end := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.End{}})
	last := mustAppend(t, c, stream, esclient.Revision(2), jsonEvent("Excl", 3))
	if e := nextEvent(t, end); e.Position.Commit != last.CommitPosition {
		t.Fatalf("$all from the end: got event at %v, want %d", e.Position, last.CommitPosition)
	}
	if e := nextEvent(t, all); e.EventNumber != 3 {
		t.Fatalf("$all caught up, then live: revision %d, want 3", e.EventNumber)
	}
}

func TestFilteredCatchUpCheckpoints(t *testing.T) {
	_, c := start(t)
	const window, multiplier = 10, 2 // a checkpoint every 20 events considered
	noise, ours := newStream("noise"), newStream("ours")
	for i := range 10 {
		mustAppend(t, c, noise, esclient.Any{}, jsonEvents("Noise", 10)...)
		if i == 4 {
			mustAppend(t, c, ours, esclient.NoStream{}, jsonEvent("Ours", 0))
		}
	}
	head := readAll(t, c, esclient.ReadAllOptions{Direction: esclient.Backwards, From: esclient.End{}}, 1)[0].Position

	sub := subscribeAll(t, c, esclient.SubscribeToAllOptions{
		From:               esclient.Start{},
		Filter:             &esclient.SubscriptionFilter{Type: esclient.StreamFilterType, Prefixes: []string{"ours-"}},
		MaxSearchWindow:    window,
		CheckpointInterval: multiplier,
	})
	var checkpoints []esclient.Position
	var events []*esclient.RecordedEvent
	for caughtUp := false; !caughtUp; {
		ev := next(t, sub, waitTimeout)
		switch {
		case ev.CheckPointReached != nil:
			checkpoints = append(checkpoints, *ev.CheckPointReached)
		case ev.EventAppeared != nil:
			events = append(events, ev.EventAppeared.OriginalEvent())
		case ev.CaughtUp != nil:
			caughtUp = true
		}
	}
	if len(events) != 1 || events[0].StreamID != ours {
		t.Fatalf("filtered catch-up delivered %d events", len(events))
	}
	// 101 events: checkpoints after 20, 40, 60, 80, 100, then at the end.
	if len(checkpoints) != 6 {
		t.Fatalf("%d checkpoints %v, want 6", len(checkpoints), checkpoints)
	}
	for i := 1; i < len(checkpoints); i++ {
		if checkpoints[i].Commit <= checkpoints[i-1].Commit {
			t.Fatalf("checkpoints not increasing: %v", checkpoints)
		}
	}
	if last := checkpoints[len(checkpoints)-1]; last != head {
		t.Fatalf("last checkpoint %v, want the head %v", last, head)
	}

	// Live: checkpoints keep coming as unmatched events are considered.
	mustAppend(t, c, noise, esclient.Any{}, jsonEvents("Noise", 2*window*multiplier)...)
	n := 0
	for n < 2 {
		if ev := next(t, sub, waitTimeout); ev.CheckPointReached != nil {
			n++
		} else if ev.EventAppeared != nil {
			t.Fatalf("live event %s passed the filter", ev.EventAppeared.OriginalEvent().StreamID)
		}
	}
}

func TestFilters(t *testing.T) {
	_, c := start(t)
	a, b := newStream("alpha"), newStream("beta")
	mustAppend(t, c, a, esclient.Any{}, jsonEvent("OrderPlaced", 0), jsonEvent("OrderShipped", 1))
	mustAppend(t, c, b, esclient.Any{}, jsonEvent("OrderPlaced", 2), jsonEvent("Invoiced", 3))
	mustAppend(t, c, "$$"+a, esclient.Any{}, esclient.EventData{EventID: uuid.New(), EventType: "$metadata", ContentType: esclient.ContentTypeJson, Data: []byte(`{}`)})
	cases := []struct {
		name   string
		filter *esclient.SubscriptionFilter
		want   []string // stream/type of the events delivered
	}{
		{"event type prefix", &esclient.SubscriptionFilter{Type: esclient.EventFilterType, Prefixes: []string{"OrderP", "Inv"}},
			[]string{a + "/OrderPlaced", b + "/OrderPlaced", b + "/Invoiced"}},
		{"event type regex", &esclient.SubscriptionFilter{Type: esclient.EventFilterType, Regex: "^Order(Shipped|Placed)$"},
			[]string{a + "/OrderPlaced", a + "/OrderShipped", b + "/OrderPlaced"}},
		{"stream prefix", &esclient.SubscriptionFilter{Type: esclient.StreamFilterType, Prefixes: []string{"beta-"}},
			[]string{b + "/OrderPlaced", b + "/Invoiced"}},
		{"stream regex", &esclient.SubscriptionFilter{Type: esclient.StreamFilterType, Regex: "^[^$]"},
			[]string{a + "/OrderPlaced", a + "/OrderShipped", b + "/OrderPlaced", b + "/Invoiced"}},
		{"system events excluded", esclient.ExcludeSystemEventsFilter(),
			[]string{a + "/OrderPlaced", a + "/OrderShipped", b + "/OrderPlaced", b + "/Invoiced"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.Start{}, Filter: tc.filter})
			var got []string
			for caughtUp := false; !caughtUp; {
				ev := next(t, sub, waitTimeout)
				if ev.EventAppeared != nil {
					e := ev.EventAppeared.OriginalEvent()
					got = append(got, e.StreamID+"/"+e.EventType)
				}
				caughtUp = ev.CaughtUp != nil
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadAllPositions(t *testing.T) {
	_, c := start(t)
	stream := newStream("pos")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Placed", 5)...)
	all := readAll(t, c, esclient.ReadAllOptions{}, 100)
	if len(all) != 5 {
		t.Fatalf("$all holds %d events, want 5", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position.Commit <= all[i-1].Position.Commit || all[i].Position.Commit != all[i].Position.Prepare {
			t.Fatalf("positions %v then %v", all[i-1].Position, all[i].Position)
		}
	}
	number := func(evs []*esclient.RecordedEvent) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.EventNumber)
		}
		return out
	}
	cases := []struct {
		name  string
		opts  esclient.ReadAllOptions
		count uint64
		want  []uint64
	}{
		{"forwards from a position includes it", esclient.ReadAllOptions{From: all[2].Position}, 10, []uint64{2, 3, 4}},
		{"forwards with a count", esclient.ReadAllOptions{From: esclient.Start{}}, 2, []uint64{0, 1}},
		{"forwards from the end", esclient.ReadAllOptions{From: esclient.End{}}, 10, nil},
		{"backwards from the end", esclient.ReadAllOptions{Direction: esclient.Backwards, From: esclient.End{}}, 2, []uint64{4, 3}},
		{"backwards from a position excludes it", esclient.ReadAllOptions{Direction: esclient.Backwards, From: all[2].Position}, 10, []uint64{1, 0}},
		{"backwards from the start", esclient.ReadAllOptions{Direction: esclient.Backwards, From: esclient.Start{}}, 10, nil},
	}
	for _, tc := range cases {
		if got := number(readAll(t, c, tc.opts, tc.count)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: revisions %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestReadAllBackwardsAcrossPages(t *testing.T) {
	_, c := start(t)
	stream := newStream("many")
	for range 7 {
		mustAppend(t, c, stream, esclient.Any{}, jsonEvents("Many", 100)...)
	}
	got := readAll(t, c, esclient.ReadAllOptions{Direction: esclient.Backwards, From: esclient.End{}}, 1000)
	if len(got) != 700 {
		t.Fatalf("read %d events backwards, want 700", len(got))
	}
	for i, e := range got {
		if e.EventNumber != uint64(699-i) {
			t.Fatalf("event %d has revision %d", i, e.EventNumber)
		}
	}
}

func TestStreamSubscriptionCatchUpThenLive(t *testing.T) {
	_, c := start(t)
	stream := newStream("live")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Before", 3)...)
	sub, err := c.SubscribeToStream(ctxT(t), stream, esclient.SubscribeToStreamOptions{From: esclient.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var caughtUpAfter int
	var revs []uint64
	for caughtUp := false; !caughtUp; {
		ev := next(t, sub, waitTimeout)
		if ev.EventAppeared != nil {
			revs = append(revs, ev.EventAppeared.OriginalEvent().EventNumber)
		}
		if ev.CaughtUp != nil {
			caughtUp, caughtUpAfter = true, len(revs)
		}
	}
	mustAppend(t, c, newStream("other"), esclient.Any{}, jsonEvent("Elsewhere", 0))
	mustAppend(t, c, stream, esclient.Revision(2), jsonEvents("After", 2)...)
	revs = append(revs, nextEvent(t, sub).EventNumber, nextEvent(t, sub).EventNumber)
	if caughtUpAfter != 3 || fmt.Sprint(revs) != "[0 1 2 3 4]" {
		t.Fatalf("revisions %v, caught up after %d", revs, caughtUpAfter)
	}
}

// TestIdleSubscriptionReceivesNextEvent idles longer than gRPC's default
// keepalive enforcement would tolerate the client's 10 s pings.
func TestIdleSubscriptionReceivesNextEvent(t *testing.T) {
	t.Parallel()
	const idle = 45 * time.Second
	_, c := start(t)
	stream := newStream("idle")
	all := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.End{}})
	st, err := c.SubscribeToStream(ctxT(t), stream, esclient.SubscribeToStreamOptions{From: esclient.End{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ev := next(t, all, waitTimeout); ev.CaughtUp == nil {
		t.Fatalf("first message %+v, want CaughtUp", ev)
	}
	if ev := next(t, st, waitTimeout); ev.CaughtUp == nil {
		t.Fatalf("first message %+v, want CaughtUp", ev)
	}

	select {
	case <-time.After(idle):
	case <-t.Context().Done():
		return
	}
	e := jsonEvent("Awake", 0)
	mustAppend(t, c, stream, esclient.NoStream{}, e)
	if got := nextEvent(t, all); got.EventID != e.EventID {
		t.Fatalf("$all subscription got %s, want %s", got.EventID, e.EventID)
	}
	if got := nextEvent(t, st); got.EventID != e.EventID {
		t.Fatalf("stream subscription got %s, want %s", got.EventID, e.EventID)
	}
}

func TestDiscoveryConnectionStrings(t *testing.T) {
	srv := esdbtest.Start(t)
	for _, url := range []string{
		"esdb+discover://" + srv.Addr + "?tls=false",
		"esdb://" + srv.Addr + "," + srv.Addr + "?tls=false&nodePreference=leader",
	} {
		c := connect(t, url)
		stream := newStream("gossip")
		mustAppend(t, c, stream, esclient.NoStream{}, jsonEvent("Discovered", 0))
		if got, err := readStream(t, c, stream, esclient.ReadStreamOptions{}, 10); err != nil || len(got) != 1 {
			t.Fatalf("%s: read %d events, %v", url, len(got), err)
		}
	}
}

// TestStringUUIDs reads with the string UUID option, which the Go client
// never asks for but other clients do.
func TestStringUUIDs(t *testing.T) {
	srv, c := start(t)
	stream := newStream("uuid")
	e := jsonEvent("Stringed", 0)
	mustAppend(t, c, stream, esclient.NoStream{}, e)

	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs, err := api.NewStreamsClient(conn).Read(ctxT(t), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}},
		}},
		CountOption:  &api.ReadReq_Options_Count{Count: 1},
		FilterOption: &api.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:   &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetEvent().GetEvent().GetId().GetString_(); got != e.EventID.String() {
		t.Fatalf("id %q, want %q", got, e.EventID)
	}
	if _, err := rs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the event: %v, want EOF", err)
	}
}

// A live stream subscription follows its stream's deletions: after a soft
// delete the recreated stream's events arrive; a tombstone ends it.
func TestLiveStreamSubscriptionFollowsDeletions(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	stream := newStream("gone")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Before", 2)...)
	sub, err := c.SubscribeToStream(ctx, stream, esclient.SubscribeToStreamOptions{From: esclient.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := uint64(0); want < 2; want++ {
		if got := nextEvent(t, sub).EventNumber; got != want {
			t.Fatalf("event %d, want %d", got, want)
		}
	}
	if _, err := c.DeleteStream(ctx, stream, esclient.DeleteStreamOptions{ExpectedRevision: esclient.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	after := jsonEvent("After", 0)
	mustAppend(t, c, stream, esclient.Revision(1), after)
	if got := nextEvent(t, sub); got.EventID != after.EventID || got.EventNumber != 2 {
		t.Fatalf("after the soft delete: event %d %s, want 2 %s", got.EventNumber, got.EventID, after.EventID)
	}
	if _, err := c.TombstoneStream(ctx, stream, esclient.TombstoneStreamOptions{ExpectedRevision: esclient.Revision(2)}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *esclient.SubscriptionEvent, 1)
	for {
		go func() { got <- sub.Recv() }()
		select {
		case ev := <-got:
			if ev.EventAppeared != nil {
				t.Fatalf("event %d after the tombstone", ev.EventAppeared.OriginalEvent().EventNumber)
			}
			if ev.SubscriptionDropped != nil {
				// the client passes the status on as it came
				if err := ev.SubscriptionDropped.Error; status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), stream+"' is deleted") {
					t.Fatalf("subscription dropped with %v, want the stream deleted", err)
				}
				return
			}
		case <-time.After(waitTimeout):
			t.Fatal("the subscription goes on after the tombstone")
		}
	}
}

// lateHead takes its time to answer Head once armed, as a busy store
// may: long enough for a client to append after it saw its subscription
// confirmed.
type lateHead struct {
	eventstore.Store
	armed atomic.Bool
}

func (s *lateHead) Head(ctx context.Context) (eventstore.Position, error) {
	if s.armed.CompareAndSwap(true, false) {
		time.Sleep(300 * time.Millisecond)
	}
	return s.Store.Head(ctx)
}

// A subscription from the end is confirmed only once its start is taken:
// what a client appends after the confirmation reaches it, however late
// the store answers where the end is.
func TestSubscriptionFromTheEndSeesWhatFollowsItsConfirmation(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	late := &lateHead{Store: store}
	srv := esdbserver.New(late, esdbserver.WithLogger(slog.New(slog.DiscardHandler)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c := connect(t, "esdb://"+lis.Addr().String()+"?tls=false")
	stream := newStream("late")
	mustAppend(t, c, stream, esclient.NoStream{}, jsonEvent("Late", 0))

	for _, sub := range []func() *esclient.Subscription{
		func() *esclient.Subscription {
			return subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.End{}})
		},
		func() *esclient.Subscription {
			s, err := c.SubscribeToStream(ctxT(t), stream, esclient.SubscribeToStreamOptions{From: esclient.End{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	} {
		late.armed.Store(true)
		s := sub()
		w := mustAppend(t, c, stream, esclient.Any{}, jsonEvent("Late", 1))
		if e := nextEvent(t, s); e.Position.Commit != w.CommitPosition {
			t.Fatalf("from the end: got the event at %v, want the one appended after the confirmation, at %d", e.Position, w.CommitPosition)
		}
	}
}
