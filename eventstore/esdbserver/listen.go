package esdbserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"passerelle/eventstore/embedded"
)

// stopGrace bounds how long ListenAndServe waits for calls in progress
// when ctx ends before it closes connections.
const stopGrace = 10 * time.Second

// ListenAndServe opens the embedded store in dataDir, listens on addr and
// serves until ctx ends; it then stops the server gracefully and closes the
// store. It returns nil after a stop requested through ctx.
func ListenAndServe(ctx context.Context, addr, dataDir string, opts ...Option) (err error) {
	store, err := embedded.Open(dataDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("esdbserver: %w", err)
	}
	srv := New(store, opts...)
	srv.log.Info("esdbserver: listening", "addr", lis.Addr().String(), "data_dir", dataDir)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		srv.Stop()
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		srv.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
