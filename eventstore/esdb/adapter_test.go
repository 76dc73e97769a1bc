package esdb_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver"
	"passerelle/eventstore/esdbserver/esdbtest"
)

func event(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`), Metadata: []byte(`{"command_id":"c"}`)}
}

func rawClient(t *testing.T, url string) *esclient.Client {
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

func TestOpenRejectsBadConnectionStrings(t *testing.T) {
	for _, url := range []string{"", "http://localhost:2113", "esdb://", "esdb://host:port"} {
		if s, err := esdb.Open(url); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

// TestDeletedStreams maps streams deleted by other clients to the port's
// errors.
func TestDeletedStreams(t *testing.T) {
	srv := esdbtest.Start(t)
	s, raw := open(t, srv.URL()), rawClient(t, srv.URL())
	ctx := t.Context()
	tomb, soft := "tomb-"+uuid.NewString(), "soft-"+uuid.NewString()
	for _, stream := range []string{tomb, soft} {
		if _, err := s.Append(ctx, stream, eventstore.NoStream, event("Doomed")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.TombstoneStream(ctx, tomb, esclient.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.DeleteStream(ctx, soft, esclient.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := s.ReadStream(ctx, tomb, eventstore.Forwards, 0, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read tombstoned stream: %v, want ErrStreamDeleted", err)
	}
	if _, err := s.Append(ctx, tomb, eventstore.Any, event("Late")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("append to tombstoned stream: %v, want ErrStreamDeleted", err)
	}
	if _, err := s.ReadStream(ctx, soft, eventstore.Backwards, eventstore.End, 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read soft-deleted stream: %v, want ErrStreamNotFound", err)
	}
}

// TestSystemEventsHidden: $all holds the deletion records of the protocol
// server (as a real server holds its own system events); the adapter's
// global reads never show them.
func TestSystemEventsHidden(t *testing.T) {
	srv := esdbtest.Start(t)
	s, raw := open(t, srv.URL()), rawClient(t, srv.URL())
	ctx := t.Context()
	stream := "sys-" + uuid.NewString()
	res, err := s.Append(ctx, stream, eventstore.NoStream, event("Before"), event("Before"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := raw.DeleteStream(ctx, stream, esclient.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.AppendToStream(ctx, "$$"+stream, esclient.AppendToStreamOptions{}, esclient.EventData{
		EventType: "$metadata", ContentType: esclient.ContentTypeJson, Data: []byte(`{"$maxCount":10}`),
	}); err != nil {
		t.Fatal(err)
	}

	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head != res.Position {
		t.Fatalf("head %d, want the last event of ours at %d", head, res.Position)
	}
	all, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("read all gave %d events, want 2", len(all))
	}
	// Past the system events, the next event of ours comes through.
	after, err := s.Append(ctx, "sys-"+uuid.NewString(), eventstore.NoStream, event("After"))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, want := range []eventstore.Position{all[0].Position, all[1].Position, after.Position} {
		e, err := sub.Recv(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != want {
			t.Fatalf("subscription delivered %s (%s) at %d, want position %d", e.Stream, e.Type, e.Position, want)
		}
	}
}

// TestCallsHonourContextWhileServerDown: the client blocks on node
// discovery without regard to contexts; the adapter must not.
func TestCallsHonourContextWhileServerDown(t *testing.T) {
	srv := esdbtest.Start(t)
	s := open(t, srv.URL())
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		start := time.Now()
		_, err := s.Append(ctx, "down-"+uuid.NewString(), eventstore.Any, event("Lost"))
		cancel()
		if err == nil {
			t.Fatal("append succeeded with the server down")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("append took %v with a 300ms context", d)
		}
	}
	if _, err := s.SubscribeAll(t.Context(), eventstore.Start, eventstore.Filter{}); err == nil {
		t.Fatal("subscribe succeeded with the server down")
	}

	// Back up: the store recovers, whatever happened to its client.
	srv.Restart(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		_, err := s.Append(ctx, "up-"+uuid.NewString(), eventstore.Any, event("Found"))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("store did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(t.Context()); !errors.Is(err, esdb.ErrClosed) {
		t.Fatalf("head on a closed store: %v, want ErrClosed", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 that is its own root.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "esdbtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestTLSAndCredentials connects over TLS with a CA file and credentials
// from the connection string.
func TestTLSAndCredentials(t *testing.T) {
	cert, caFile := selfSigned(t)
	var mu sync.Mutex
	var auth []string
	record := func(ctx context.Context) {
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		auth = append(auth, md.Get("authorization")...)
		mu.Unlock()
	}
	srv := esdbtest.Start(t,
		esdbserver.WithLogger(quiet()),
		esdbserver.WithGRPCOptions(
			grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})),
			grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				record(ss.Context())
				return h(srv, ss)
			}),
		),
	)
	s := open(t, "esdb://admin:changeit@"+srv.Addr+"?tls=true&tlsCAFile="+caFile)
	ctx := t.Context()
	stream := "tls-" + uuid.NewString()
	if _, err := s.Append(ctx, stream, eventstore.NoStream, event("Secured")); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.ReadStream(ctx, stream, eventstore.Forwards, 0, 0); err != nil || len(evs) != 1 {
		t.Fatalf("read %d events, %v", len(evs), err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:changeit"))
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 || auth[0] != want {
		t.Fatalf("authorization headers %q, want %q", auth, want)
	}

	// Without the CA the server is not trusted.
	bad := open(t, "esdb://"+srv.Addr+"?tls=true&maxDiscoverAttempts=1")
	if err := bad.Ping(ctx); err == nil {
		t.Fatal("ping succeeded without trusting the server's certificate")
	}
}
