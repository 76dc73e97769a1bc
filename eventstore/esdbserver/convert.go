package esdbserver

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
)

// System metadata keys of proposed and recorded events.
const (
	keyType        = "type"
	keyContentType = "content-type"
	keyCreated     = "created"
)

const contentTypeJSON = "application/json"

// envelopeMagic starts the stored metadata of events whose content type is
// not JSON, since the backing store has no content-type field:
//
//	magic content-type '\n' custom-metadata
//
// JSON metadata is stored as is. Custom metadata that itself starts with
// the magic is always wrapped, so decoding is unambiguous.
var envelopeMagic = []byte("\x00esdbserver:content-type=")

func wrapMetadata(contentType string, custom []byte) []byte {
	if contentType == contentTypeJSON && !bytes.HasPrefix(custom, envelopeMagic) {
		return custom
	}
	b := make([]byte, 0, len(envelopeMagic)+len(contentType)+1+len(custom))
	b = append(b, envelopeMagic...)
	b = append(b, contentType...)
	b = append(b, '\n')
	return append(b, custom...)
}

func unwrapMetadata(stored []byte) (contentType string, custom []byte) {
	if !bytes.HasPrefix(stored, envelopeMagic) {
		return contentTypeJSON, stored
	}
	rest := stored[len(envelopeMagic):]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return contentTypeJSON, stored
	}
	return string(rest[:i]), rest[i+1:]
}

// ticks renders t as .NET ticks (100 ns) since the Unix epoch.
func ticks(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano() / 100
}

func structuredUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func protoUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return structuredUUID(id)
}

func parseUUID(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, nil
	case *shared.UUID_String_:
		return uuid.Parse(v.String_)
	default:
		return uuid.Nil, status.Error(codes.InvalidArgument, "event without id")
	}
}

// proposedEvent converts a proposed message into an event for the store.
func proposedEvent(m *api.AppendReq_ProposedMessage) (eventstore.EventData, error) {
	id, err := parseUUID(m.GetId())
	if err != nil {
		return eventstore.EventData{}, status.Errorf(codes.InvalidArgument, "event id: %v", err)
	}
	typ, ok := m.GetMetadata()[keyType]
	if !ok {
		return eventstore.EventData{}, status.Error(codes.InvalidArgument, "required metadata property is missing: type")
	}
	ct, ok := m.GetMetadata()[keyContentType]
	if !ok {
		return eventstore.EventData{}, status.Error(codes.InvalidArgument, "required metadata property is missing: content-type")
	}
	if strings.ContainsRune(ct, '\n') {
		return eventstore.EventData{}, status.Error(codes.InvalidArgument, "invalid content-type")
	}
	return eventstore.EventData{
		ID:       id,
		Type:     typ,
		Data:     m.GetData(),
		Metadata: wrapMetadata(ct, m.GetCustomMetadata()),
	}, nil
}

// eventResp renders a stored event as a read response.
func eventResp(e eventstore.RecordedEvent, uuidAsString bool) *api.ReadResp {
	ct, custom := unwrapMetadata(e.Metadata)
	pos := uint64(e.Position)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               protoUUID(e.ID, uuidAsString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.Stream)},
			StreamRevision:   e.Revision,
			PreparePosition:  pos,
			CommitPosition:   pos,
			Metadata: map[string]string{
				keyType:        e.Type,
				keyContentType: ct,
				keyCreated:     strconv.FormatInt(ticks(e.Created), 10),
			},
			CustomMetadata: custom,
			Data:           e.Data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: pos},
	}}}
}

func checkpointResp(p eventstore.Position) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: uint64(p), PreparePosition: uint64(p),
	}}}
}

func streamNotFoundResp(stream string) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
	}}}
}

func caughtUpResp() *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}
}
