package esdbserver

import (
	"context"
	"errors"
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

func (r *reader) readStream(ctx context.Context, name string, o *api.ReadReq_Options_StreamOptions, count uint64) error {
	m, err := r.s.meta(ctx, name)
	if err != nil {
		return err
	}
	if m.tombstoned {
		return &streamDeletedError{name}
	}
	last, err := r.s.lastRevision(ctx, name)
	if err != nil {
		return err
	}
	if last < 0 || !m.visible(uint64(last)) {
		return r.out.Send(streamNotFoundResp(name))
	}
	var from uint64
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = v.Revision
	case *api.ReadReq_Options_StreamOptions_End:
		if !r.backwards {
			return nil
		}
		from = uint64(last)
	}
	dir := eventstore.Forwards
	if r.backwards {
		dir = eventstore.Backwards
		from = min(from, uint64(last))
	} else if !m.visible(from) {
		from = m.truncateBefore
	}
	var sent uint64
	for sent < count {
		evs, err := r.s.store.ReadStream(ctx, name, dir, from, int(min(count-sent, pageSize)))
		if err != nil {
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
		if len(evs) == 0 {
			return nil
		}
		next := evs[len(evs)-1].Revision
		if r.backwards {
			if next == 0 {
				return nil
			}
			from = next - 1
		} else {
			from = next + 1
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
		var before eventstore.Position // 0: from the end
		switch v := o.GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Start:
			return nil
		case *api.ReadReq_Options_AllOptions_Position:
			if v.Position.GetCommitPosition() == 0 {
				return nil
			}
			before = eventstore.Position(v.Position.GetCommitPosition())
		}
		return r.s.readAllBackwards(ctx, before, emit)
	}
	var after eventstore.Position
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_End:
		return nil
	case *api.ReadReq_Options_AllOptions_Position:
		// A read from a position includes the event at that position.
		if p := v.Position.GetCommitPosition(); p > 0 {
			after = eventstore.Position(p - 1)
		}
	}
	for {
		evs, err := r.s.store.ReadAll(ctx, after, pageSize)
		if err != nil {
			return err
		}
		for _, e := range evs {
			more, err := emit(e)
			if err != nil || !more {
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
		if err != nil {
			return err
		}
		if head == eventstore.Start {
			return nil
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
		after := lo
	scan:
		for {
			page, err := s.store.ReadAll(ctx, after, pageSize)
			if err != nil {
				return err
			}
			for _, e := range page {
				if e.Position >= before {
					break scan
				}
				evs = append(evs, e)
			}
			if len(page) < pageSize {
				break
			}
			after = page[len(page)-1].Position
		}
		for i := len(evs) - 1; i >= 0; i-- {
			more, err := fn(evs[i])
			if err != nil || !more {
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

func (r *reader) subscribeAll(ctx context.Context, o *api.ReadReq_Options_AllOptions) error {
	if err := r.confirm(); err != nil {
		return err
	}
	var after eventstore.Position
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
	last, checkpointed, considered := after, after, 0
	emit := func(e eventstore.RecordedEvent) error {
		last = e.Position
		if r.filter.match(e) {
			if err := r.send(e); err != nil {
				return err
			}
		}
		if r.filter == nil {
			return nil
		}
		if considered++; considered >= r.filter.interval {
			considered, checkpointed = 0, last
			return r.out.Send(checkpointResp(last))
		}
		return nil
	}

	for {
		evs, err := r.s.store.ReadAll(ctx, last, pageSize)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := emit(e); err != nil {
				return err
			}
		}
		if len(evs) < pageSize {
			break
		}
	}
	if r.filter != nil && last != checkpointed {
		considered = 0
		if err := r.out.Send(checkpointResp(last)); err != nil {
			return err
		}
	}
	if err := r.out.Send(caughtUpResp()); err != nil {
		return err
	}

	live, err := r.s.store.SubscribeAll(ctx, last, eventstore.Filter{})
	if err != nil {
		return err
	}
	defer live.Close()
	for {
		e, err := live.Recv(ctx)
		if err != nil {
			return liveErr(ctx, err)
		}
		if err := emit(e); err != nil {
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

func (r *reader) subscribeStream(ctx context.Context, name string, o *api.ReadReq_Options_StreamOptions) error {
	m, err := r.s.meta(ctx, name)
	if err != nil {
		return err
	}
	if m.tombstoned {
		return &streamDeletedError{name}
	}
	if err := r.confirm(); err != nil {
		return err
	}
	// Live events are followed on the global log from the head taken
	// before catching up, so none falls between the two phases; events
	// already sent are recognized by their revision.
	head, err := r.s.store.Head(ctx)
	if err != nil {
		return err
	}
	var next uint64
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = v.Revision + 1
	case *api.ReadReq_Options_StreamOptions_End:
		last, err := r.s.lastRevision(ctx, name)
		if err != nil {
			return err
		}
		next = uint64(last + 1)
	}
	for {
		evs, err := r.s.store.ReadStream(ctx, name, eventstore.Forwards, next, pageSize)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return err
		}
		for _, e := range evs {
			if m.visible(e.Revision) {
				if err := r.send(e); err != nil {
					return err
				}
			}
			next = e.Revision + 1
		}
		if len(evs) < pageSize {
			break
		}
	}
	if err := r.out.Send(caughtUpResp()); err != nil {
		return err
	}

	live, err := r.s.store.SubscribeAll(ctx, head, eventstore.Filter{})
	if err != nil {
		return err
	}
	defer live.Close()
	meta := metaStream(name)
	for {
		e, err := live.Recv(ctx)
		if err != nil {
			return liveErr(ctx, err)
		}
		switch e.Stream {
		case name:
			if e.Revision < next {
				continue
			}
			next = e.Revision + 1
			if m.visible(e.Revision) {
				if err := r.send(e); err != nil {
					return err
				}
			}
		case meta:
			// The deleting call may not have dropped the cached state yet.
			r.s.forgetMeta(name)
			if m, err = r.s.meta(ctx, name); err != nil {
				return err
			}
			if m.tombstoned {
				return &streamDeletedError{name}
			}
		}
	}
}
