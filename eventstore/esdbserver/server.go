package esdbserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"passerelle/eventstore"
)

// DefaultVersion is the server version reported by GetSupportedMethods.
// The client parses it as a dotted number and enables CaughtUp handling
// from 23 on.
const DefaultVersion = "24.10.0"

// maxMessageSize matches the client's receive limit (17 MiB), above the
// 16 MiB a real server accepts in one append.
const maxMessageSize = 17 << 20

type config struct {
	version  string
	logger   *slog.Logger
	grpcOpts []grpc.ServerOption
	faults   CheckpointFaults
	maxSize  int
}

// WithMaxAppendSize sets the largest append accepted, in bytes as
// eventstore.AppendSize counts them (default
// eventstore.DefaultMaxAppendSize, as a real server). A larger append is
// refused as a real server refuses it. The backing store has its own
// limit.
func WithMaxAppendSize(n int) Option { return func(c *config) { c.maxSize = n } }

// CheckpointFaults makes subscriptions to $all send the wrong checkpoints
// some real servers send, so that clients can be tested against them.
type CheckpointFaults struct {
	// MaxUint64 sends a checkpoint at position MaxUint64 before each
	// event, as servers before KurrentDB PR #4892 could.
	MaxUint64 bool
	// AtNextEvent sends a checkpoint at the position of each event just
	// before the event (KurrentDB issue #4970).
	AtNextEvent bool
	// BeyondHead sends checkpoints at MaxInt64-1 then MaxInt64 before
	// each event: increasing, so a client may take the first as
	// confirmed, but beyond any log's head.
	BeyondHead bool
	// DropBefore, if positive, ends each subscription call with
	// Unavailable right after the checkpoints above that precede the
	// DropBefore-th event the call would send.
	DropBefore int
}

// WithCheckpointFaults makes subscriptions to $all send wrong checkpoints
// (for tests of clients; the default sends none).
func WithCheckpointFaults(f CheckpointFaults) Option { return func(c *config) { c.faults = f } }

// Option configures New.
type Option func(*config)

// WithVersion sets the server version reported to clients (default
// DefaultVersion). It must be a dotted number such as "24.10.0".
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithGRPCOptions adds gRPC server options, e.g. grpc.Creds for TLS. They
// come after the server's own (keepalive, message sizes) and can override
// them.
func WithGRPCOptions(opts ...grpc.ServerOption) Option {
	return func(c *config) { c.grpcOpts = append(c.grpcOpts, opts...) }
}

// Server serves the EventStoreDB protocol over a backing eventstore.Store.
// The Server does not own the store: close it after stopping the Server.
type Server struct {
	store    eventstore.Store
	log      *slog.Logger
	version  string
	grpc     *grpc.Server
	instance uuid.UUID
	faults   CheckpointFaults
	maxSize  int

	// quit ends subscriptions on Stop and GracefulStop: gRPC's graceful
	// stop would otherwise wait for them forever.
	quit     context.Context
	quitNow  context.CancelFunc
	stopOnce sync.Once

	// writeMu orders deletions against appends: appends hold it shared,
	// Delete and Tombstone exclusively, so a check of the deletion state
	// and the write that depends on it cannot interleave with a deletion.
	writeMu sync.RWMutex

	metaMu sync.Mutex // serializes loads and updates of metas
	metas  map[string]streamMeta
}

// New returns a Server backed by store: the Streams, ServerFeatures and
// Gossip services on a gRPC server whose keepalive policy accepts the
// client's pings (every 10 s, also without calls). Call Serve to accept
// connections.
func New(store eventstore.Store, opts ...Option) *Server {
	c := config{version: DefaultVersion, logger: slog.Default(), maxSize: eventstore.DefaultMaxAppendSize}
	for _, o := range opts {
		o(&c)
	}
	s := &Server{
		store:    store,
		log:      c.logger,
		version:  c.version,
		instance: uuid.New(),
		faults:   c.faults,
		maxSize:  c.maxSize,
		metas:    make(map[string]streamMeta),
	}
	s.quit, s.quitNow = context.WithCancel(context.Background())
	gopts := []grpc.ServerOption{
		// The client pings every 10 s, with or without active calls; the
		// default policy (5 min) answers such pings with GOAWAY, which
		// drops idle subscriptions after about 30 s.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    time.Minute,
			Timeout: 20 * time.Second,
		}),
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
	}
	s.grpc = grpc.NewServer(append(gopts, c.grpcOpts...)...)
	api.RegisterStreamsServer(s.grpc, &streamsService{s: s})
	featuresapi.RegisterServerFeaturesServer(s.grpc, &featuresService{s: s})
	gossipapi.RegisterGossipServer(s.grpc, &gossipService{s: s})
	return s
}

// Serve accepts connections on lis until Stop or GracefulStop; it then
// returns nil.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Debug("esdbserver: serving", "addr", lis.Addr().String())
	return s.grpc.Serve(lis)
}

// Stop closes the listeners and every connection at once.
func (s *Server) Stop() {
	s.stopOnce.Do(s.quitNow)
	s.grpc.Stop()
}

// GracefulStop ends subscriptions, stops accepting connections and waits
// for the other calls in progress.
func (s *Server) GracefulStop() {
	s.stopOnce.Do(s.quitNow)
	s.grpc.GracefulStop()
}

// callContext is ctx, also canceled when the server stops.
func (s *Server) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.quit, cancel)
	return ctx, func() { stop(); cancel() }
}

// endErr is the status a long call returns when ctx ended.
func (s *Server) endErr(ctx context.Context) error {
	if s.quit.Err() != nil {
		return status.Error(codes.Unavailable, "server is shutting down")
	}
	return status.FromContextError(ctx.Err()).Err()
}

type featuresService struct {
	featuresapi.UnimplementedServerFeaturesServer
	s *Server
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*featuresapi.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	m := func(service, method string) *featuresapi.SupportedMethod {
		return &featuresapi.SupportedMethod{ServiceName: service, MethodName: method}
	}
	return &featuresapi.SupportedMethods{
		EventStoreServerVersion: f.s.version,
		Methods: []*featuresapi.SupportedMethod{
			m(streams, "read"),
			m(streams, "append"),
			m(streams, "delete"),
			m(streams, "tombstone"),
			m("event_store.client.server_features.serverfeatures", "getsupportedmethods"),
			m("event_store.client.gossip.gossip", "read"),
		},
	}, nil
}

type gossipService struct {
	gossipapi.UnimplementedGossipServer
	s *Server
}

// Read describes this node as the only member, at the address the caller
// reached: the client reconnects to the address it is given.
func (g *gossipService) Read(ctx context.Context, _ *shared.Empty) (*gossipapi.ClusterInfo, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.LocalAddr == nil {
		return nil, status.Error(codes.Unavailable, "local address unknown")
	}
	host, portStr, err := net.SplitHostPort(p.LocalAddr.String())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &gossipapi.ClusterInfo{Members: []*gossipapi.MemberInfo{{
		InstanceId:   structuredUUID(g.s.instance),
		TimeStamp:    ticks(time.Now()),
		State:        gossipapi.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossipapi.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}

// internal logs an unexpected backing-store failure and hides its details
// behind an Internal status.
func (s *Server) internal(op string, err error) error {
	s.log.Error("esdbserver: "+op, "err", err)
	return status.Error(codes.Internal, fmt.Sprintf("%s: %v", op, err))
}
