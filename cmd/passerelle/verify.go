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
	fmt.Fprintf(stderr, "intact: %d events, %d seals, %d events after the last seal\n", rep.Events, rep.Seals, rep.Unsealed)
	if rep.Unsealed > 0 {
		// their links are checked, but the last event of a stream among
		// them has nothing after it to be checked against
		fmt.Fprintf(stderr, "%d events are not sealed yet: an edit of the last event of a stream among them cannot be detected until they are (the service seals every minute, at start-up and when it stops)\n", rep.Unsealed)
	}
	return nil
}
