package esdb_test

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	streamsapi "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver"
	"passerelle/eventstore/esdbserver/esdbtest"
)

// bigEvent is an event of size bytes as eventstore.AppendSize counts them.
func bigEvent(size int) eventstore.EventData {
	e := event("Big")
	e.Metadata = nil
	e.Data = []byte(`"` + strings.Repeat("x", size-2-2*len(e.Type)) + `"`)
	return e
}

// TestServerRefusesLargeAppend: an adapter allowed more than the server
// takes reports the server's refusal as ErrAppendTooLarge, as a real
// server gives it; within both limits the append goes through.
func TestServerRefusesLargeAppend(t *testing.T) {
	srv := esdbtest.Start(t, esdbserver.WithLogger(quiet()), esdbserver.WithMaxAppendSize(1000))
	s := open(t, srv.URL(), esdb.WithMaxAppendSize(eventstore.DefaultMaxAppendSize))
	ctx := t.Context()
	stream := "big-" + uuid.NewString()
	if _, err := s.Append(ctx, stream, eventstore.NoStream, bigEvent(1000)); err != nil {
		t.Fatalf("append at the server's limit: %v", err)
	}
	_, err := s.Append(ctx, stream, eventstore.Any, bigEvent(600), bigEvent(401))
	if !errors.Is(err, eventstore.ErrAppendTooLarge) {
		t.Fatalf("append over the server's limit: %v, want ErrAppendTooLarge", err)
	}
	if evs, err := s.ReadStream(ctx, stream, eventstore.Forwards, 0, 0); err != nil || len(evs) != 1 {
		t.Fatalf("read %d events (%v), want the first append only", len(evs), err)
	}

	// The adapter's own limit refuses before sending.
	small := open(t, srv.URL(), esdb.WithMaxAppendSize(500))
	if _, err := small.Append(ctx, stream, eventstore.Any, bigEvent(501)); !errors.Is(err, eventstore.ErrAppendTooLarge) {
		t.Fatalf("append over the adapter's limit: %v, want ErrAppendTooLarge", err)
	}
}

// TestProtocolServerMaxAppendSize: the protocol server refuses a large
// append from the official client as a real server does, by default at
// 1 MiB.
func TestProtocolServerMaxAppendSize(t *testing.T) {
	srv := esdbtest.Start(t)
	raw := rawClient(t, srv.URL())
	e := bigEvent(eventstore.DefaultMaxAppendSize + 1)
	_, err := raw.AppendToStream(t.Context(), "big-"+uuid.NewString(), esclient.AppendToStreamOptions{}, esclient.EventData{
		EventID: e.ID, EventType: e.Type, ContentType: esclient.ContentTypeJson, Data: e.Data,
	})
	if err == nil || !strings.Contains(err.Error(), "Maximum Append Size of 1048576 Exceeded") {
		t.Fatalf("raw append of 1 MiB + 1: %v, want the maximum append size error", err)
	}
}

// TestServerErrorsMapped: access denied and not-leader answers become the
// port's errors.
func TestServerErrorsMapped(t *testing.T) {
	var answer atomic.Pointer[func(grpc.ServerStream) error]
	srv := esdbtest.Start(t,
		esdbserver.WithLogger(quiet()),
		esdbserver.WithGRPCOptions(grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if f := answer.Load(); f != nil && strings.HasSuffix(info.FullMethod, "/Append") {
				// Read the whole request first, as a real server does:
				// the client reports an early answer as EOF.
				for ss.RecvMsg(new(streamsapi.AppendReq)) == nil {
				}
				return (*f)(ss)
			}
			return h(srv, ss)
		})),
	)
	s := open(t, srv.URL())
	host, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		answer func(grpc.ServerStream) error
		want   error
	}{
		{"access denied", func(grpc.ServerStream) error {
			return status.Error(codes.PermissionDenied, "Access Denied")
		}, eventstore.ErrAccessDenied},
		{"not leader", func(ss grpc.ServerStream) error {
			ss.SetTrailer(metadata.Pairs("exception", "not-leader", "leader-endpoint-host", host, "leader-endpoint-port", port))
			return status.Error(codes.NotFound, "Leader info available")
		}, eventstore.ErrNotLeader},
		{"invalid argument", func(grpc.ServerStream) error {
			return status.Error(codes.InvalidArgument, "bad request")
		}, eventstore.ErrInvalidAppend},
	}
	for _, c := range cases {
		answer.Store(&c.answer)
		_, err := s.Append(t.Context(), "mapped-"+uuid.NewString(), eventstore.Any, event("Mapped"))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	answer.Store(nil)
	if _, err := s.Append(t.Context(), "mapped-"+uuid.NewString(), eventstore.Any, event("Mapped")); err != nil {
		t.Fatalf("append once the server answers normally: %v", err)
	}
}

// TestNotLeaderRetried: a follower answers "not leader" to the first
// attempts of an append; the adapter tries again, a bounded number of
// times, and the event is stored once.
func TestNotLeaderRetried(t *testing.T) {
	var refusals atomic.Int32
	var leader atomic.Pointer[[2]string]
	srv := esdbtest.Start(t,
		esdbserver.WithLogger(quiet()),
		esdbserver.WithGRPCOptions(grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if strings.HasSuffix(info.FullMethod, "/Append") && refusals.Add(-1) >= 0 {
				for ss.RecvMsg(new(streamsapi.AppendReq)) == nil {
				}
				at := leader.Load()
				ss.SetTrailer(metadata.Pairs("exception", "not-leader", "leader-endpoint-host", at[0], "leader-endpoint-port", at[1]))
				return status.Error(codes.NotFound, "Leader info available")
			}
			return h(srv, ss)
		})),
	)
	host, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	leader.Store(&[2]string{host, port})
	s := open(t, srv.URL())
	refusals.Store(2)
	stream := "leader-" + uuid.NewString()
	if _, err := s.Append(t.Context(), stream, eventstore.NoStream, event("Retried")); err != nil {
		t.Fatalf("append refused twice by a follower, then taken: %v", err)
	}
	if evs, err := s.ReadStream(t.Context(), stream, eventstore.Forwards, 0, 0); err != nil || len(evs) != 1 {
		t.Fatalf("stored %d events (%v), want 1", len(evs), err)
	}
	refusals.Store(100)
	if _, err := s.Append(t.Context(), "leader-"+uuid.NewString(), eventstore.Any, event("Refused")); !errors.Is(err, eventstore.ErrNotLeader) {
		t.Fatalf("a follower that never lets go: %v, want ErrNotLeader", err)
	}
	if left := refusals.Load(); left != 100-esdb.LeaderRetries {
		t.Fatalf("%d attempts, want %d", 100-left, esdb.LeaderRetries)
	}
}
