package esdbserver

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strings"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
)

// pageSize is how many events one read of the backing store returns; it
// bounds the memory a read or a catching-up subscription holds.
const pageSize = 256

// defaultSearchWindow is the window of a filter that gives none.
const defaultSearchWindow = 32

// filter is a server-side $all filter.
type filter struct {
	onStream bool // match the stream name, else the event type
	prefixes []string
	re       *regexp.Regexp
	interval int // events considered between checkpoints
}

func newFilter(o *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if o == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	switch v := o.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		f.onStream, expr = true, v.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr = v.EventType
	default:
		return nil, status.Error(codes.InvalidArgument, "filter without a stream or event type expression")
	}
	f.prefixes = expr.GetPrefix()
	if r := expr.GetRegex(); r != "" {
		re, err := regexp.Compile(r)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		f.re = re
	}
	window := defaultSearchWindow
	if w, ok := o.GetWindow().(*api.ReadReq_Options_FilterOptions_Max); ok && w.Max > 0 {
		window = int(w.Max)
	}
	mult := int(o.GetCheckpointIntervalMultiplier())
	if mult <= 0 {
		mult = 1
	}
	f.interval = window * mult
	return f, nil
}

func (f *filter) match(e eventstore.RecordedEvent) bool {
	if f == nil {
		return true
	}
	subject := e.Type
	if f.onStream {
		subject = e.Stream
	}
	if f.re != nil && !f.re.MatchString(subject) {
		return false
	}
	if len(f.prefixes) == 0 {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

func (x *streamsService) Read(req *api.ReadReq, stream api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read without options")
	}
	f, err := newFilter(o.GetFilter())
	if err != nil {
		return err
	}
	r := &reader{
		s:            x.s,
		out:          stream,
		uuidAsString: o.GetUuidOption().GetString_() != nil,
		backwards:    o.GetReadDirection() == api.ReadReq_Options_Backwards,
		filter:       f,
	}
	_, subscribe := o.GetCountOption().(*api.ReadReq_Options_Subscription)
	ctx, cancel := x.s.callContext(stream.Context())
	defer cancel()

	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		name := string(so.Stream.GetStreamIdentifier().GetStreamName())
		if name == "" {
			return status.Error(codes.InvalidArgument, "empty stream name")
		}
		if subscribe {
			err = r.subscribeStream(ctx, name, so.Stream)
		} else {
			err = r.readStream(ctx, name, so.Stream, o.GetCount())
		}
	case *api.ReadReq_Options_All:
		if subscribe {
			err = r.subscribeAll(ctx, so.All)
		} else {
			err = r.readAll(ctx, so.All, o.GetCount())
		}
	default:
		return status.Error(codes.InvalidArgument, "read of neither a stream nor $all")
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return x.s.endErr(ctx)
	}
	return x.s.toStatus("read", err, stream.SetTrailer)
}

// reader answers one Read call.
type reader struct {
	s            *Server
	out          api.Streams_ReadServer
	uuidAsString bool
	backwards    bool
	filter       *filter
}

func (r *reader) send(e eventstore.RecordedEvent) error {
	return r.out.Send(eventResp(e, r.uuidAsString))
}

// undeletedMeta is a stream's metadata; a tombstoned stream is an error.
func (s *Server) undeletedMeta(ctx context.Context, name string) (streamMeta, error) {
	m, err := s.meta(ctx, name)
	if err == nil && m.tombstoned {
		err = &streamDeletedError{name}
	}
	return m, err
}

func (r *reader) readStream(ctx context.Context, name string, o *api.ReadReq_Options_StreamOptions, count uint64) error {
	m, err := r.s.undeletedMeta(ctx, name)
	if err != nil {
		return err
	}
	last, err := r.s.lastRevision(ctx, name)
	if err != nil {
		return err
	}
	if last < 0 || !m.visible(uint64(last)) {
		return r.out.Send(streamNotFoundResp(name))
	}
	from, ok := r.streamStart(o, uint64(last), m)
	if !ok {
		return nil
	}
	return r.sendStream(ctx, name, m, from, count)
}

// streamStart is the revision a stream read starts from, given the
// stream's last revision; false: there is nothing to read.
func (r *reader) streamStart(o *api.ReadReq_Options_StreamOptions, last uint64, m streamMeta) (uint64, bool) {
	var from uint64
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = v.Revision
	case *api.ReadReq_Options_StreamOptions_End:
		if !r.backwards {
			return 0, false
		}
		from = last
	}
	if r.backwards {
		return min(from, last), true
	}
	if !m.visible(from) {
		from = m.truncateBefore
	}
	return from, true
}

// sendStream sends up to count visible events of a stream from revision
// from, in the read's direction.
func (r *reader) sendStream(ctx context.Context, name string, m streamMeta, from, count uint64) error {
	dir := eventstore.Forwards
	if r.backwards {
		dir = eventstore.Backwards
	}
	var sent uint64
	for sent < count {
		evs, err := r.s.store.ReadStream(ctx, name, dir, from, int(min(count-sent, pageSize)))
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, e := range evs {
			if !m.visible(e.Revision) {
				return nil
			}
			if err := r.send(e); err != nil {
				return err
			}
			sent++
		}
		next := evs[len(evs)-1].Revision
		switch {
		case !r.backwards:
			from = next + 1
		case next == 0:
			return nil
		default:
			from = next - 1
		}
	}
	return nil
}

func (r *reader) readAll(ctx context.Context, o *api.ReadReq_Options_AllOptions, count uint64) error {
	if count == 0 {
		return nil
	}
	var sent uint64
	emit := func(e eventstore.RecordedEvent) (bool, error) {
		if !r.filter.match(e) {
			return true, nil
		}
		if err := r.send(e); err != nil {
			return false, err
		}
		sent++
		return sent < count, nil
	}
	if r.backwards {
		before, ok := allBefore(o)
		if !ok {
			return nil
		}
		return r.s.readAllBackwards(ctx, before, emit)
	}
	after, ok := allAfter(o)
	if !ok {
		return nil
	}
	return r.s.eachAfter(ctx, after, emit)
}

// allBefore is the position a backwards read of $all starts before (0:
// from the end); false: there is nothing to read.
func allBefore(o *api.ReadReq_Options_AllOptions) (eventstore.Position, bool) {
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		return 0, false
	case *api.ReadReq_Options_AllOptions_Position:
		p := v.Position.GetCommitPosition()
		return eventstore.Position(p), p != 0
	}
	return 0, true
}

// allAfter is the position a forwards read of $all starts after; false:
// there is nothing to read.
func allAfter(o *api.ReadReq_Options_AllOptions) (eventstore.Position, bool) {
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_End:
		return 0, false
	case *api.ReadReq_Options_AllOptions_Position:
		// A read from a position includes the event at that position.
		if p := v.Position.GetCommitPosition(); p > 0 {
			return eventstore.Position(p - 1), true
		}
	}
	return 0, true
}

// eachAfter calls fn on the events of the global log after position
// after, in order, until fn says stop.
func (s *Server) eachAfter(ctx context.Context, after eventstore.Position, fn func(eventstore.RecordedEvent) (bool, error)) error {
	for {
		evs, err := s.store.ReadAll(ctx, after, pageSize)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if len(evs) < pageSize {
			return nil
		}
		after = evs[len(evs)-1].Position
	}
}

// readAllBackwards calls fn on the events of the global log before
// position before (exclusive; 0: from the end), last first, until fn says
// stop. The port only reads forwards, so it reads forwards through windows
// of positions that widen while they turn out sparse.
func (s *Server) readAllBackwards(ctx context.Context, before eventstore.Position, fn func(eventstore.RecordedEvent) (bool, error)) error {
	if before == 0 {
		head, err := s.store.Head(ctx)
		if err != nil || head == eventstore.Start {
			return err
		}
		before = head + 1
	}
	window := eventstore.Position(pageSize)
	for before > 1 {
		lo := eventstore.Start
		if before > window {
			lo = before - window
		}
		var evs []eventstore.RecordedEvent
		err := s.eachAfter(ctx, lo, func(e eventstore.RecordedEvent) (bool, error) {
			if e.Position >= before {
				return false, nil
			}
			evs = append(evs, e)
			return true, nil
		})
		if err != nil {
			return err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if more, err := fn(evs[i]); err != nil || !more {
				return err
			}
		}
		if len(evs) < pageSize/4 && window < 1<<62 {
			window *= 2
		}
		before = lo + 1
	}
	return nil
}

func (r *reader) confirm() error {
	return r.out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{
		Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()},
	}})
}

// follow calls fn on every event appended to the global log after
// position after, until ctx ends or fn fails.
func (s *Server) follow(ctx context.Context, after eventstore.Position, fn func(eventstore.RecordedEvent) error) (err error) {
	live, err := s.store.SubscribeAll(ctx, after, eventstore.Filter{})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := live.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	for {
		e, err := live.Recv(ctx)
		if err != nil {
			return liveErr(ctx, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// liveErr maps the end of the backing store's subscription.
func liveErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, eventstore.ErrSubscriptionClosed) {
		return status.Error(codes.Unavailable, "event store closed")
	}
	return err
}

func (r *reader) subscribeAll(ctx context.Context, o *api.ReadReq_Options_AllOptions) error {
	after := eventstore.Position(0)
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		after = eventstore.Position(v.Position.GetCommitPosition())
	case *api.ReadReq_Options_AllOptions_End:
		head, err := r.s.store.Head(ctx)
		if err != nil {
			return err
		}
		after = head
	}
	// confirmed once its start is taken: a client that appends after the
	// confirmation receives that event, even from the end
	if err := r.confirm(); err != nil {
		return err
	}
	sub := allSubscription{reader: r, last: after, checkpointed: after}
	err := r.s.eachAfter(ctx, after, func(e eventstore.RecordedEvent) (bool, error) {
		return true, sub.emit(e)
	})
	if err != nil {
		return err
	}
	if r.filter != nil && sub.last != sub.checkpointed {
		sub.considered = 0
		if err := r.out.Send(checkpointResp(sub.last)); err != nil {
			return err
		}
	}
	if err := r.out.Send(caughtUpResp()); err != nil {
		return err
	}
	return r.s.follow(ctx, sub.last, sub.emit)
}

// allSubscription sends a subscription's matching events, and with a
// filter a checkpoint every interval events considered.
type allSubscription struct {
	*reader
	last, checkpointed eventstore.Position
	considered         int
	sent               int // events sent
}

func (a *allSubscription) emit(e eventstore.RecordedEvent) error {
	a.last = e.Position
	if a.filter.match(e) {
		if err := a.faults(e); err != nil {
			return err
		}
		if err := a.send(e); err != nil {
			return err
		}
		a.sent++
	}
	if a.filter == nil {
		return nil
	}
	if a.considered++; a.considered >= a.filter.interval {
		a.considered, a.checkpointed = 0, a.last
		return a.out.Send(checkpointResp(a.last))
	}
	return nil
}

// faults sends the wrong checkpoints the server is configured to send
// before event e, and drops the call if configured to.
func (a *allSubscription) faults(e eventstore.RecordedEvent) error {
	f := a.s.faults
	if f.MaxUint64 {
		if err := a.out.Send(checkpointResp(eventstore.Position(math.MaxUint64))); err != nil {
			return err
		}
	}
	if f.BeyondHead {
		for _, p := range []eventstore.Position{math.MaxInt64 - 1, math.MaxInt64} {
			if err := a.out.Send(checkpointResp(p)); err != nil {
				return err
			}
		}
	}
	if f.AtNextEvent {
		if err := a.out.Send(checkpointResp(e.Position)); err != nil {
			return err
		}
	}
	if f.DropBefore > 0 && a.sent+1 == f.DropBefore {
		return status.Error(codes.Unavailable, "subscription dropped on purpose after a wrong checkpoint")
	}
	return nil
}

func (r *reader) subscribeStream(ctx context.Context, name string, o *api.ReadReq_Options_StreamOptions) error {
	m, err := r.s.undeletedMeta(ctx, name)
	if err != nil {
		return err
	}
	// Live events are followed on the global log from the head taken
	// before catching up, so none falls between the two phases; events
	// already sent are recognized by their revision.
	head, err := r.s.store.Head(ctx)
	if err != nil {
		return err
	}
	sub := streamSubscription{reader: r, name: name, meta: m}
	if sub.next, err = r.subscriptionStart(ctx, name, o); err != nil {
		return err
	}
	// confirmed once its start is taken, as for $all
	if err := r.confirm(); err != nil {
		return err
	}
	if err := sub.catchUp(ctx); err != nil {
		return err
	}
	if err := r.out.Send(caughtUpResp()); err != nil {
		return err
	}
	return r.s.follow(ctx, head, func(e eventstore.RecordedEvent) error { return sub.live(ctx, e) })
}

// subscriptionStart is the first revision a stream subscription sends.
func (r *reader) subscriptionStart(ctx context.Context, name string, o *api.ReadReq_Options_StreamOptions) (uint64, error) {
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		return v.Revision + 1, nil
	case *api.ReadReq_Options_StreamOptions_End:
		last, err := r.s.lastRevision(ctx, name)
		return uint64(last + 1), err
	}
	return 0, nil
}

// streamSubscription sends a stream's visible events from revision next.
type streamSubscription struct {
	*reader
	name string
	meta streamMeta
	next uint64
}

// catchUp sends the events the stream holds already.
func (sub *streamSubscription) catchUp(ctx context.Context) error {
	for {
		evs, err := sub.s.store.ReadStream(ctx, sub.name, eventstore.Forwards, sub.next, pageSize)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := sub.sendNext(e); err != nil {
				return err
			}
		}
		if len(evs) < pageSize {
			return nil
		}
	}
}

// sendNext sends the stream's next event if it is visible.
func (sub *streamSubscription) sendNext(e eventstore.RecordedEvent) error {
	sub.next = e.Revision + 1
	if !sub.meta.visible(e.Revision) {
		return nil
	}
	return sub.send(e)
}

// live handles an event of the global log: the stream's own, unless
// already sent, or a change of its metadata (a deletion ends the
// subscription).
func (sub *streamSubscription) live(ctx context.Context, e eventstore.RecordedEvent) error {
	switch e.Stream {
	case sub.name:
		if e.Revision < sub.next {
			return nil
		}
		return sub.sendNext(e)
	case metaStream(sub.name):
		// The deleting call may not have dropped the cached state yet.
		sub.s.forgetMeta(sub.name)
		m, err := sub.s.undeletedMeta(ctx, sub.name)
		if err != nil {
			return err
		}
		sub.meta = m
	}
	return nil
}
