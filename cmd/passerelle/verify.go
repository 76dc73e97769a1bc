package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"passerelle/commands"
	"passerelle/eventstore/chain"
)

// errTampered makes verify exit non-zero when the chain is broken.
type errTampered struct{ b *chain.Break }

func (e errTampered) Error() string { return "the log is not intact: " + e.b.Error() }

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flagSet("verify", "verify [--data-dir DIR] [--eventstore URL]", stderr)
	dataDir, esURL := logFlags(fs)
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	store, err := openCLIStore(*dataDir, *esURL)
	if err != nil {
		return err
	}
	defer closing(store, &err)
	rep, err := chain.Verify(ctx, store, commands.Chained)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if rep.Break != nil {
		return errTampered{rep.Break}
	}
	fmt.Fprintf(stderr, "intact: %d events, %d seals\n", rep.Events, rep.Seals)
	return nil
}
