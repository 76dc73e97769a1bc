package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"passerelle/eventstore"
	"passerelle/reconcile"
)

// checkReport is what check prints.
type checkReport struct {
	Events       int      `json:"events"`
	Applications int      `json:"applications"`
	Unsettled    []string `json:"unsettled"` // applications whose placement process is not finished
	Broken       []string `json:"broken"`    // invariants a settled placement breaks
}

// errBroken makes check exit non-zero.
type errBroken struct{ n int }

func (e errBroken) Error() string { return fmt.Sprintf("%d broken invariants", e.n) }

// check folds the whole log, independently of any read model, and
// reports the placements that do not hold what their status says.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flagSet("check", "check [--data-dir DIR] [--eventstore URL]", stderr)
	dataDir, esURL := logFlags(fs)
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	store, err := openCLIStore(*dataDir, *esURL)
	if err != nil {
		return err
	}
	defer closing(store, &err)
	v, rep := reconcile.NewView(), checkReport{}
	for from := eventstore.Start; ; {
		evs, err := store.ReadAll(ctx, from, 4096)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		for _, re := range evs {
			v.Apply(re)
		}
		rep.Events += len(evs)
		from = evs[len(evs)-1].Position
	}
	rep.Applications, rep.Unsettled, rep.Broken = v.Len(), v.Unsettled(), v.Broken()
	if rep.Unsettled == nil {
		rep.Unsettled = []string{}
	}
	if rep.Broken == nil {
		rep.Broken = []string{}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if len(rep.Broken) > 0 {
		return errBroken{len(rep.Broken)}
	}
	fmt.Fprintf(stderr, "%d placements hold what their status says (%d unsettled)\n", rep.Applications, len(rep.Unsettled))
	return nil
}
