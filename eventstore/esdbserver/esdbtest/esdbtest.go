// Package esdbtest runs an in-process EventStoreDB protocol server
// (package esdbserver, backed by the embedded engine) for tests, in the
// manner of net/http/httptest.
package esdbtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"passerelle/eventstore/embedded"
	"passerelle/eventstore/esdbserver"
)

// Server is a running protocol server on 127.0.0.1 over an embedded store
// in a directory of the test.
type Server struct {
	// Addr is host:port; it stays the same across Restart.
	Addr string
	// Dir holds the embedded store; it stays the same across Restart.
	Dir string

	t      testing.TB
	opts   []esdbserver.Option
	store  *embedded.Store
	srv    *esdbserver.Server
	served chan error
}

// Start starts a server on a free port of 127.0.0.1 over a new store in a
// temporary directory, and stops it when the test ends.
func Start(t testing.TB, opts ...esdbserver.Option) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("esdbtest: %v", err)
	}
	s := &Server{Addr: lis.Addr().String(), Dir: t.TempDir(), t: t, opts: opts}
	if s.opts == nil {
		s.opts = []esdbserver.Option{esdbserver.WithLogger(slog.New(slog.DiscardHandler))}
	}
	if err := s.serve(lis); err != nil {
		_ = lis.Close()
		t.Fatalf("esdbtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(lis net.Listener) error {
	store, err := embedded.Open(s.Dir)
	if err != nil {
		return err
	}
	s.store = store
	s.srv = esdbserver.New(store, s.opts...)
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(lis) }()
	return nil
}

// URL is the connection string of the server for the client: insecure,
// single node.
func (s *Server) URL() string { return "esdb://" + s.Addr + "?tls=false" }

// Stop stops the server at once, dropping connections, and closes its
// store. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Stop()
	if err := <-s.served; err != nil && !errors.Is(err, net.ErrClosed) {
		s.t.Errorf("esdbtest: serve: %v", err)
	}
	if err := s.store.Close(); err != nil {
		s.t.Errorf("esdbtest: close the store: %v", err)
	}
	s.srv, s.store = nil, nil
}

// Restart stops the server if it runs and starts it again on the same
// address and store.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var lis net.Listener
	var err error
	// The port was free a moment ago; another process could take it, and
	// on some systems it lingers briefly.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if lis, err = net.Listen("tcp", s.Addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("esdbtest: listen again on %s: %v", s.Addr, err)
	}
	if err := s.serve(lis); err != nil {
		_ = lis.Close()
		t.Fatalf("esdbtest: restart: %v", err)
	}
}

// Store is the backing store of the running server, for inspection. Do
// not close it.
func (s *Server) Store() *embedded.Store { return s.store }

func (s *Server) String() string { return fmt.Sprintf("esdbtest server %s (%s)", s.Addr, s.Dir) }
