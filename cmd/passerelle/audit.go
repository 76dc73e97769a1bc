package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/history"
)

func audit(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flagSet("audit", "audit [--as-of POSITION|TIME] [--format json|csv] [--data-dir DIR] application ID", stderr)
	dataDir, esURL := logFlags(fs)
	asOfFlag := fs.String("as-of", "", "show the placement as it was at this global position or RFC 3339 time")
	format := fs.String("format", "json", "output: json or csv")
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	if pos[0] != "application" {
		fs.Usage()
		return fmt.Errorf("expected: audit application ID, got %q", pos[0])
	}
	if *format != "json" && *format != "csv" {
		return fmt.Errorf("--format: json or csv, not %q", *format)
	}
	asOf, err := history.ParseAsOf(*asOfFlag)
	if err != nil {
		return err
	}
	store, err := openCLIStore(*dataDir, *esURL)
	if err != nil {
		return err
	}
	defer closing(store, &err)
	keys, err := personal.OpenDir(filepath.Join(*dataDir, "keys"))
	if err != nil {
		return err
	}
	trail, err := history.Application(ctx, store, personal.NewCipher(keys), pos[1], asOf)
	if err != nil {
		return err
	}
	if *format == "csv" {
		return trail.WriteCSV(stdout)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(trail)
}

// logFlags are the flags that locate the event log for a one-off tool.
func logFlags(fs *flag.FlagSet) (dataDir, esURL *string) {
	dataDir = fs.String("data-dir", "./passerelle-data", "directory of the embedded event store and the personal-data keys (with the embedded store, serve must be stopped: its file is locked)")
	esURL = fs.String("eventstore", "", "EventStoreDB connection string; empty: the embedded engine in --data-dir")
	return dataDir, esURL
}

// openCLIStore opens the event store for a one-off command.
func openCLIStore(dataDir, esURL string) (eventstore.Store, error) {
	if esURL != "" {
		return openStore(esURL)
	}
	s, err := embedded.Open(dataDir)
	if err != nil {
		return nil, fmt.Errorf("open %s (is `passerelle serve` running on it?): %w", dataDir, err)
	}
	return s, nil
}
