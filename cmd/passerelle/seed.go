package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"passerelle/commands"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/embedded"
	"passerelle/internal/fsync"
	"passerelle/internal/seed"
)

// codes is a repeatable flag of comma-separated codes.
type codes []string

func (c *codes) String() string { return strings.Join(*c, ",") }

func (c *codes) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*c = append(*c, s)
		}
	}
	return nil
}

// seedFlags are the seed subcommand's settings.
type seedFlags struct {
	opt            seed.Options
	dataDir, esURL string
	workers        int
	dryRun         bool
}

func parseSeedFlags(args []string, stderr io.Writer) (*seedFlags, error) {
	fs := flagSet("seed", "seed [--departement CODE…|--national] [--scale F] [--until DATE] [--seed N] [--data-dir DIR] [--eventstore URL]", stderr)
	f := &seedFlags{}
	var depts codes
	fs.Var(&depts, "departement", "département code(s) to seed: repeat the flag, separate with commas, or list them after it")
	national := fs.Bool("national", false, "seed every département")
	fs.Float64Var(&f.opt.Scale, "scale", 1, "fraction of the real figures (0.01: a hundredth of the pupils, schools and places)")
	until := fs.String("until", seed.DefaultUntil.Format(time.DateOnly), "play the season up to this date (YYYY-MM-DD); the season is the school year holding it")
	fs.Uint64Var(&f.opt.Seed, "seed", 1, "random seed: the same seed and flags issue the same commands")
	fs.StringVar(&f.dataDir, "data-dir", "./passerelle-data", "directory of the embedded event store and the personal-data keys (as for serve)")
	fs.StringVar(&f.esURL, "eventstore", "", "EventStoreDB connection string; empty: the embedded engine in --data-dir")
	fs.StringVar(&f.esURL, "eventstore-url", "", "same as --eventstore")
	fs.IntVar(&f.workers, "workers", 1024, "commands in flight at once (the embedded store groups their appends: one sync per group)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan's figures and stop")
	rest, err := parseEnv(fs, args)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 && len(depts) == 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q", rest[0])
	}
	for _, r := range rest {
		_ = depts.Set(r)
	}
	if *national == (len(depts) > 0) {
		fs.Usage()
		return nil, errors.New("give either --departement CODE… or --national")
	}
	u, err := time.Parse(time.DateOnly, *until)
	if err != nil {
		return nil, fmt.Errorf("--until: %w", err)
	}
	f.opt.Departments, f.opt.Until = depts, u.Add(24*time.Hour-time.Second) // the whole day
	return f, nil
}

func seedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f, err := parseSeedFlags(args, stderr)
	if err != nil {
		return err
	}
	seedGC()
	var store eventstore.Store
	if !f.dryRun { // an instance that is not empty is refused before the plan is made
		if store, err = openEmpty(ctx, f); err != nil {
			return err
		}
		defer closing(store, &err)
	}
	t0 := time.Now()
	plan, err := seed.NewPlan(f.opt)
	if err != nil {
		return err
	}
	printPlan(stdout, plan, time.Since(t0))
	if f.dryRun {
		return nil
	}
	if err := markSeed(f.dataDir, args); err != nil {
		return err
	}
	keys, err := seed.OpenBulkKeys(filepath.Join(f.dataDir, "keys"))
	if err != nil {
		return fmt.Errorf("personal data keys: %w", err)
	}
	// sealed as it is written, as a running service seals its log: the
	// walk that checks each event's link is spread over the run rather
	// than made once at its end
	sealer := chain.NewSealer(store, commands.Chained, nil)
	stopSealing := sealAlong(ctx, sealer, sealEvery)
	rep, runErr := playPlan(ctx, plan, store, keys, f.workers, stdout)
	stopSealing()
	if err := errors.Join(keys.Sync(), keys.Close()); err != nil {
		return errors.Join(runErr, fmt.Errorf("sync personal data keys: %w", err))
	}
	fmt.Fprintf(stdout, "seeded %d events (%d of %d commands) in %s: %.0f events/s; peak memory %s; Go heap %s\n",
		rep.Events, rep.Done, rep.Total, rep.Elapsed.Round(time.Millisecond), float64(rep.Events)/rep.Elapsed.Seconds(), peakRSS(), heapInUse())
	if runErr != nil {
		if rep.Cut > 0 {
			fmt.Fprintf(stdout, "interrupted: %d commands cut short (their events may or may not be in the log), %d refused before\n", rep.Cut, rep.Failed)
		}
		return runErr // interrupted: what was seeded is said above
	}
	// the rest sealed, so that the first start has nothing to walk
	t1 := time.Now()
	seals, err := sealer.SealAll(ctx)
	if err != nil {
		return fmt.Errorf("seal the seeded log: %w", err)
	}
	fmt.Fprintf(stdout, "sealed the log's last %d seals in %s\n", seals, time.Since(t1).Round(time.Millisecond))
	if err := unmarkSeed(f.dataDir); err != nil {
		return err
	}
	if rep.Failed > 0 {
		for _, f := range rep.First {
			fmt.Fprintln(stderr, "  ", f)
		}
		return fmt.Errorf("%d commands refused: %v", rep.Failed, rep.Failures)
	}
	return nil
}

// seedMarker is the file a seed keeps in its --data-dir from its first
// command until it has played its whole plan: an instance holding it
// holds a campaign cut short (by a crash, a kill or an interruption),
// which a seed refuses to complete and serve says it serves.
const seedMarker = "seed-incomplete"

// seedCutShort reports whether dir holds a seed that did not finish.
func seedCutShort(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, seedMarker))
	return err == nil
}

// markSeed writes the marker, synced with its directory before any
// command runs: a crash of the machine after the first events were
// synced still leaves it.
func markSeed(dir string, args []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, seedMarker), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("mark the seed under way: %w", err)
	}
	_, err = fmt.Fprintf(f, "passerelle seed %s\nstarted %s; removed once every command has run\n",
		strings.Join(args, " "), time.Now().UTC().Format(time.RFC3339))
	if err = errors.Join(err, f.Sync(), f.Close()); err == nil {
		err = fsync.Dir(dir)
	}
	if err != nil {
		return fmt.Errorf("mark the seed under way: %w", err)
	}
	return nil
}

// unmarkSeed removes the marker once the seed is complete.
func unmarkSeed(dir string) error {
	if err := os.Remove(filepath.Join(dir, seedMarker)); err != nil {
		return fmt.Errorf("the seed is complete, but its marker stays: %w", err)
	}
	return fsync.Dir(dir)
}

// openEmpty opens the event store a seed fills, and refuses one that
// holds events.
func openEmpty(ctx context.Context, f *seedFlags) (store eventstore.Store, err error) {
	if f.esURL != "" {
		store, err = openStore(f.esURL)
	} else {
		store, err = embedded.Open(f.dataDir, seed.StoreOptions...)
	}
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	head, err := store.Head(ctx)
	if err == nil && head != eventstore.Start {
		err = notEmpty(f, head)
	}
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return store, nil
}

// notEmpty is seed's refusal of an instance that holds events already.
func notEmpty(f *seedFlags, head eventstore.Position) error {
	where := "a new --data-dir (or remove " + f.dataDir + " first)"
	if f.esURL != "" {
		where = "an empty event store and a new --data-dir"
	}
	if seedCutShort(f.dataDir) {
		return fmt.Errorf("a seed into this instance was cut short (its event store holds events up to position %s): its campaign is partial and cannot be completed; seed again into %s", head, where)
	}
	return fmt.Errorf("the event store already holds events (head %s): seed fills an empty instance; give it %s", head, where)
}

// seedGC makes the collector run less often than the default during a
// seed: at GOGC=100 collection took a third of its CPU. The heap may grow
// to four times what is live, within a soft limit of 3 GiB. A national
// season's live heap grows as it goes (its plan, the cached aggregates,
// the sealer's heads, the store's recent entries), and the collector runs
// the more often the closer it is to the limit: a national season took
// 17m13s under 3 GiB and 18m38s under 2 GiB (one run each), with 3.0 and
// 2.1 GB of anonymous memory. GOGC and GOMEMLIMIT, when set, decide
// instead.
func seedGC() { tuneGC(400, 3<<30) }

// sealEvery is how often a seed seals what it wrote.
var sealEvery = 5 * time.Second

// sealAlong seals the log every interval until the returned function is
// called; that function waits for a seal under way to end. A failure is
// left to the final seal, which reports it.
func sealAlong(ctx context.Context, sealer *chain.Sealer, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = sealer.SealAll(ctx)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// playPlan runs the plan with a progress bar on a terminal, a line every
// ten seconds otherwise.
func playPlan(ctx context.Context, plan *seed.Plan, store eventstore.Store, keys *seed.BulkKeys, workers int, stdout io.Writer) (seed.Report, error) {
	bar := isTerminal(stdout)
	every := 10 * time.Second
	if bar {
		every = 500 * time.Millisecond
	}
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: workers, Every: every,
		Progress: func(p seed.Progress) {
			sampleAnon()
			if bar {
				fmt.Fprintf(stdout, "\r%s\x1b[K", seed.FormatProgress(p, true))
			} else {
				fmt.Fprintln(stdout, seed.FormatProgress(p, false))
			}
		}})
	if bar {
		fmt.Fprintln(stdout)
	}
	return rep, err
}

// parseEnv is parse for a subcommand whose positional arguments extend a
// flag: it returns them instead of refusing them.
func parseEnv(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	return parseInterspersed(fs, args)
}

func printPlan(w io.Writer, p *seed.Plan, took time.Duration) {
	s := p.Stats
	colleges := max(s.Colleges, 1)
	fmt.Fprintf(w, "plan (seed %d, %d département(s), scale %g, until %s) decided in %s:\n", p.Options.Seed, s.Departments,
		p.Options.Scale, p.Options.Until.Format(time.DateOnly), took.Round(time.Millisecond))
	fmt.Fprintf(w, "  schools    %d collèges (%.1f%% REP, %.1f%% REP+), %d lycées (%.1f%% near a QPV)\n", s.Colleges,
		100*float64(s.CollegesREP)/float64(colleges), 100*float64(s.CollegesRP)/float64(colleges), s.Lycees,
		100*float64(s.LyceesQPV)/float64(max(s.Lycees, 1)))
	fmt.Fprintf(w, "  pupils     %d: %d in 4e, %d in 3e, %d in 2de\n", s.PupilsTotal(), s.Pupils[0], s.Pupils[1], s.Pupils[2])
	fmt.Fprintf(w, "  employers  %d companies, %d public administrations, %d associations\n", s.Employers[0], s.Employers[1], s.Employers[2])
	fmt.Fprintf(w, "  offers     %d posted, %d places (%.3f per pupil), %d withdrawn\n", s.OffersPosted, s.PlacesPosted,
		float64(s.PlacesPosted)/float64(max(s.PupilsTotal(), 1)), s.Commands[seed.WithdrawOffer])
	fmt.Fprintf(w, "  campaign   %d applications (%.2f per pupil), %d accepted, %d rejected, %d confirmed, %d withdrawn, %d expired, %d conventions signed\n",
		s.Commands[seed.Apply], float64(s.Commands[seed.Apply])/float64(max(s.PupilsTotal(), 1)), s.Commands[seed.Accept],
		s.Commands[seed.Reject], s.Commands[seed.Confirm], s.Commands[seed.Withdraw], s.Commands[seed.Expire], s.Signed)
	fmt.Fprintf(w, "  commands   %d\n", s.CommandsTotal())
}

// peakRSS is the process's peak resident memory (VmHWM), where the system
// reports it, and the highest anonymous part of it seen by sampleAnon: the
// rest is the embedded store's file, mapped into memory to be read, whose
// pages the system may drop at any time.
func peakRSS() string {
	status := procStatus()
	hwm, ok := status["VmHWM"]
	if !ok {
		return "unknown"
	}
	sampleAnon()
	return fmt.Sprintf("%s (anonymous: %d kB at the highest sample)", hwm, peakAnon.Load())
}

// peakAnon is the highest RssAnon sampleAnon saw, in kB.
var peakAnon atomic.Int64

// sampleAnon records the process's anonymous resident memory.
func sampleAnon() {
	var kb int64
	if _, err := fmt.Sscanf(procStatus()["RssAnon"], "%d kB", &kb); err == nil && kb > peakAnon.Load() {
		peakAnon.Store(kb)
	}
}

// procStatus reads /proc/self/status into its fields (none elsewhere).
func procStatus() map[string]string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	fields := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

func heapInUse() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("%d MiB", ms.HeapInuse>>20)
}
