package esdbserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// Event types of the deletion records in metadata streams.
const (
	typeMetadata      = "$metadata"
	typeStreamDeleted = "$streamDeleted"
	keyTruncateBefore = "$tb"
)

// metaStream is the name of the metadata stream of stream.
func metaStream(stream string) string { return "$$" + stream }

// streamMeta is the deletion state of a stream, read from its metadata
// stream.
type streamMeta struct {
	truncated      bool
	truncateBefore uint64 // with truncated: revisions below are hidden
	tombstoned     bool
}

func (m streamMeta) visible(rev uint64) bool { return !m.truncated || rev >= m.truncateBefore }

// streamDeletedError becomes the status the client recognizes as
// "stream deleted": both trailers are required.
type streamDeletedError struct{ stream string }

func (e *streamDeletedError) Error() string {
	return fmt.Sprintf("Event stream '%s' is deleted.", e.stream)
}

// expectedWire renders an expected revision as a real server does in
// error trailers.
func expectedWire(e eventstore.ExpectedRevision) string {
	switch {
	case e.IsNoStream():
		return "-1"
	case e.IsAny():
		return "-2"
	case e.IsStreamExists():
		return "-4"
	}
	rev, _ := e.Revision()
	return strconv.FormatUint(rev, 10)
}

// toStatus maps an error to the status the client expects, setting
// trailers where the protocol carries details in them.
func (s *Server) toStatus(op string, err error, setTrailer func(metadata.MD)) error {
	var deleted *streamDeletedError
	var wrong *eventstore.WrongExpectedVersionError
	switch {
	case errors.As(err, &deleted):
		setTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", deleted.stream))
		return status.Error(codes.FailedPrecondition, deleted.Error())
	case errors.As(err, &wrong):
		setTrailer(metadata.Pairs(
			"exception", "wrong-expected-version",
			"stream-name", wrong.Stream,
			"expected-version", expectedWire(wrong.Expected),
			"actual-version", strconv.FormatInt(wrong.Actual, 10),
		))
		return status.Error(codes.FailedPrecondition, wrong.Error())
	case errors.Is(err, eventstore.ErrAppendTooLarge):
		// As a real server answers, whichever limit refused it.
		setTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(s.maxSize)))
		return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", s.maxSize)
	case errors.Is(err, eventstore.ErrInvalidAppend):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, embedded.ErrClosed), errors.Is(err, eventstore.ErrSubscriptionClosed):
		return status.Error(codes.Unavailable, "event store closed")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return s.internal(op, err)
}

type streamsService struct {
	api.UnimplementedStreamsServer
	s *Server
}

func appendExpected(o *api.AppendReq_Options) eventstore.ExpectedRevision {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		return eventstore.Exact(v.Revision)
	case *api.AppendReq_Options_NoStream:
		return eventstore.NoStream
	case *api.AppendReq_Options_StreamExists:
		return eventstore.StreamExists
	default:
		return eventstore.Any
	}
}

func (x *streamsService) Append(stream api.Streams_AppendServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "empty stream name")
	}
	expected := appendExpected(opts)
	var events []eventstore.EventData
	size := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		e, err := proposedEvent(m)
		if err != nil {
			return err
		}
		// Counted as it arrives, on the event as sent, as a real server
		// does.
		size += len(m.GetData()) + len(m.GetCustomMetadata()) + 2*len(e.Type)
		if size > x.s.maxSize {
			return x.s.toStatus("append", eventstore.ErrAppendTooLarge, stream.SetTrailer)
		}
		events = append(events, e)
	}

	resp, err := x.s.append(ctx, name, expected, events)
	if err != nil {
		return x.s.toStatus("append", err, stream.SetTrailer)
	}
	return stream.SendAndClose(resp)
}

func (s *Server) append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (*api.AppendResp, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	m, err := s.meta(ctx, stream)
	if err != nil {
		return nil, err
	}
	if m.tombstoned {
		return nil, &streamDeletedError{stream}
	}
	if len(events) == 0 {
		// The store refuses empty appends; a real server checks the
		// condition and reports the current revision.
		cur, err := s.lastRevision(ctx, stream)
		if err != nil {
			return nil, err
		}
		if !expected.Check(cur) {
			return wrongVersionResp(expected, cur), nil
		}
		success := &api.AppendResp_Success{PositionOption: &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}}
		if cur < 0 {
			success.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: success}}, nil
	}
	res, err := s.store.Append(ctx, stream, expected, events...)
	var wrong *eventstore.WrongExpectedVersionError
	if errors.As(err, &wrong) {
		return wrongVersionResp(expected, wrong.Actual), nil
	}
	if err != nil {
		return nil, err
	}
	if target, ok := strings.CutPrefix(stream, "$$"); ok {
		s.forgetMeta(target)
	}
	pos := uint64(res.Position)
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: res.LastRevision},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: pos, PreparePosition: pos,
		}},
	}}}, nil
}

// wrongVersionResp fills both the current fields and those of servers
// before 20.6, as a real server does.
func wrongVersionResp(expected eventstore.ExpectedRevision, actual int64) *api.AppendResp {
	empty := &shared.Empty{}
	w := &api.AppendResp_WrongExpectedVersion{}
	if actual < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(actual)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(actual)}
	}
	switch {
	case expected.IsAny():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty}
	case expected.IsNoStream():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty}
	case expected.IsStreamExists():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty}
	default:
		rev, _ := expected.Revision()
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: rev}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: rev}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

func deleteExpected(o *api.DeleteReq_Options) eventstore.ExpectedRevision {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *api.DeleteReq_Options_Revision:
		return eventstore.Exact(v.Revision)
	case *api.DeleteReq_Options_NoStream:
		return eventstore.NoStream
	case *api.DeleteReq_Options_StreamExists:
		return eventstore.StreamExists
	default:
		return eventstore.Any
	}
}

func tombstoneExpected(o *api.TombstoneReq_Options) eventstore.ExpectedRevision {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *api.TombstoneReq_Options_Revision:
		return eventstore.Exact(v.Revision)
	case *api.TombstoneReq_Options_NoStream:
		return eventstore.NoStream
	case *api.TombstoneReq_Options_StreamExists:
		return eventstore.StreamExists
	default:
		return eventstore.Any
	}
}

func (x *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.GetOptions()
	pos, err := x.delete(ctx, "delete", o.GetStreamIdentifier(), deleteExpected(o), false)
	if err != nil {
		return nil, err
	}
	// The client reads the position without checking it is there.
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: uint64(pos), PreparePosition: uint64(pos),
	}}}, nil
}

func (x *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.GetOptions()
	pos, err := x.delete(ctx, "tombstone", o.GetStreamIdentifier(), tombstoneExpected(o), true)
	if err != nil {
		return nil, err
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: uint64(pos), PreparePosition: uint64(pos),
	}}}, nil
}

// delete answers a Delete (hard false) or Tombstone (hard true) call.
func (x *streamsService) delete(ctx context.Context, op string, id *shared.StreamIdentifier, expected eventstore.ExpectedRevision, hard bool) (eventstore.Position, error) {
	name := string(id.GetStreamName())
	if name == "" {
		return 0, status.Error(codes.InvalidArgument, "empty stream name")
	}
	pos, err := x.s.deleteStream(ctx, name, expected, hard)
	if err != nil {
		return 0, x.s.toStatus(op, err, func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) })
	}
	return pos, nil
}

// deleteStream records a soft delete ($tb after the last event) or a
// tombstone in the stream's metadata stream.
func (s *Server) deleteStream(ctx context.Context, stream string, expected eventstore.ExpectedRevision, hard bool) (eventstore.Position, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	m, err := s.meta(ctx, stream)
	if err != nil {
		return 0, err
	}
	if m.tombstoned {
		return 0, &streamDeletedError{stream}
	}
	cur, err := s.lastRevision(ctx, stream)
	if err != nil {
		return 0, err
	}
	if !expected.Check(cur) {
		return 0, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: cur}
	}
	e := eventstore.EventData{ID: uuid.New(), Type: typeStreamDeleted, Data: []byte("{}")}
	if !hard {
		props, err := s.lastMetadata(ctx, stream)
		if err != nil {
			return 0, err
		}
		props[keyTruncateBefore] = json.Number(strconv.FormatInt(cur+1, 10))
		data, err := json.Marshal(props)
		if err != nil {
			return 0, err
		}
		e = eventstore.EventData{ID: uuid.New(), Type: typeMetadata, Data: data}
	}
	res, err := s.store.Append(ctx, metaStream(stream), eventstore.Any, e)
	if err != nil {
		return 0, err
	}
	s.forgetMeta(stream)
	return res.Position, nil
}

// lastRevision is the stream's last revision, -1 if it has no event.
func (s *Server) lastRevision(ctx context.Context, stream string) (int64, error) {
	evs, err := s.store.ReadStream(ctx, stream, eventstore.Backwards, eventstore.End, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(evs[0].Revision), nil
}

// lastMetadata returns the properties of the stream's latest $metadata
// event, so that a soft delete keeps them.
func (s *Server) lastMetadata(ctx context.Context, stream string) (map[string]any, error) {
	props := map[string]any{}
	evs, err := s.store.ReadStream(ctx, metaStream(stream), eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return props, nil
	}
	if err != nil {
		return nil, err
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type != typeMetadata {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(evs[i].Data))
		d.UseNumber()
		if d.Decode(&props) != nil {
			props = map[string]any{}
		}
		break
	}
	return props, nil
}

// meta returns the deletion state of stream, loading it from the metadata
// stream on first use.
func (s *Server) meta(ctx context.Context, stream string) (streamMeta, error) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if m, ok := s.metas[stream]; ok {
		return m, nil
	}
	var m streamMeta
	evs, err := s.store.ReadStream(ctx, metaStream(stream), eventstore.Forwards, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return m, err
	}
	for _, e := range evs {
		switch e.Type {
		case typeStreamDeleted:
			m.tombstoned = true
		case typeMetadata:
			m.truncated, m.truncateBefore = truncateBefore(e.Data)
		}
	}
	s.metas[stream] = m
	return m, nil
}

func truncateBefore(data []byte) (bool, uint64) {
	var props map[string]json.RawMessage
	if json.Unmarshal(data, &props) != nil {
		return false, 0
	}
	raw, ok := props[keyTruncateBefore]
	if !ok {
		return false, 0
	}
	tb, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return false, 0
	}
	return true, tb
}

func (s *Server) forgetMeta(stream string) {
	s.metaMu.Lock()
	delete(s.metas, stream)
	s.metaMu.Unlock()
}
