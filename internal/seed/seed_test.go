package seed_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"passerelle/eventstore/embedded"
	"passerelle/internal/seed"
)

// seedInto plays a plan into a fresh embedded store in dir.
func seedInto(t *testing.T, dir string, opt seed.Options) (*seed.Plan, seed.Report) {
	t.Helper()
	plan, err := seed.NewPlan(opt)
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	keys, err := seed.OpenBulkKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Sync(); err != nil {
		t.Fatal(err)
	}
	if rep.Failed > 0 {
		t.Fatalf("%d of %d commands failed: %v, first: %v", rep.Failed, rep.Total, rep.Failures, rep.First)
	}
	return plan, rep
}

func TestRunSmall(t *testing.T) {
	plan, rep := seedInto(t, t.TempDir(), seed.Options{Departments: []string{"94"}, Scale: 0.03, Seed: 7})
	t.Logf("%d commands, %d events in %s; %+v", rep.Total, rep.Events, rep.Elapsed, plan.Stats)
}
