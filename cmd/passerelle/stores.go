package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver"
)

// openStore opens EventStoreDB from its connection string and checks it
// answers.
func openStore(url string) (eventstore.Store, error) {
	if !strings.HasPrefix(url, "esdb://") && !strings.HasPrefix(url, "esdb+discover://") {
		return nil, fmt.Errorf("event store %q: expected an esdb:// or esdb+discover:// connection string", url)
	}
	s, err := esdb.Open(url, esdb.WithLogger(slog.Default()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("event store %q does not answer: %w", url, err), s.Close())
	}
	return s, nil
}

func eventstoreServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("eventstore-server", "eventstore-server [--listen HOST:PORT] [--data-dir DIR]", stderr)
	listen := fs.String("listen", "127.0.0.1:2113", "address to serve the EventStoreDB gRPC protocol on (plain text: connect with esdb://HOST:PORT?tls=false)")
	dataDir := fs.String("data-dir", "./passerelle-eventstore", "directory of the embedded store behind the server")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("eventstore-server listening", "addr", *listen, "data_dir", *dataDir)
	fmt.Fprintf(stdout, "serving esdb://%s?tls=false\n", *listen)
	return esdbserver.ListenAndServe(ctx, *listen, *dataDir, esdbserver.WithLogger(log))
}
