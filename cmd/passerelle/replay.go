package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	bolterrors "go.etcd.io/bbolt/errors"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/projections"
)

func replay(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flagSet("replay", "replay [--projection NAME] [--data-dir DIR] [--redis-url URL] [--eventstore URL]", stderr)
	only := fs.String("projection", "", "projection to rebuild: "+strings.Join(projectionNames(), ", ")+", or several separated by commas (default: all)")
	dataDir, esURL := logFlags(fs)
	redisURL := fs.String("redis-url", "", "Redis holding the read models, e.g. redis://127.0.0.1:6379/0 (required)")
	batch := fs.Int("batch", 500, "events read and folded at a time")
	grace := fs.Duration("grace", 2*time.Second, "pause between the swap and the deletion of the old keys, for queries under way")
	keepOld := fs.Bool("keep-old", false, "keep the previous generation's keys")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	defer replayGC()()
	if *redisURL == "" {
		return errors.New("--redis-url is required: without it `passerelle serve` keeps its read models in an in-process Redis, which it rebuilds from the log at every start anyway")
	}
	ps, err := selectProjections(*only)
	if err != nil {
		return err
	}
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer closing(rdb, &err)
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s does not answer: %w", opts.Addr, err)
	}
	// the read models hold personal data opened with the service's keys;
	// without them every sealed field would read as erased
	keysDir := filepath.Join(*dataDir, "keys")
	if fi, err := os.Stat(keysDir); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "warning: no personal-data keys in %s: sealed personal data, if the log holds any, will read as erased (is --data-dir the service's?)\n", keysDir)
	}
	keys, err := personal.OpenDir(keysDir)
	if err != nil {
		return fmt.Errorf("personal-data keys: %w", err)
	}
	store, err := openReplayStore(*dataDir, *esURL, stderr)
	if err != nil {
		return err
	}
	defer closing(store, &err)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bar := newProgressBar(stderr)
	every := 5 * time.Second
	if bar.tty {
		every = 200 * time.Millisecond
	}
	out, err := projections.RebuildAll(ctx, store, rdb, ps, projections.RebuildOptions{
		Batch: *batch, Grace: *grace, KeepOld: *keepOld, Log: log, Progress: bar.show, ProgressEvery: every,
		Opener: personal.NewCipher(keys),
	})
	bar.end()
	if err != nil {
		return err
	}
	for _, r := range out {
		prev := r.Previous
		if prev == "" {
			prev = "none"
		}
		fmt.Fprintf(stdout, "%s: generation %s is served (was %s), position %s, %d old keys deleted\n", r.Name, r.Generation, prev, r.Position, r.Deleted)
	}
	rewriteRedisFiles(ctx, rdb, stdout, stderr)
	return nil
}

// rewriteRedisFiles has Redis rewrite its files from what it holds now:
// the generations deleted may hold data erased since they were written.
func rewriteRedisFiles(ctx context.Context, rdb redis.UniversalClient, stdout, stderr io.Writer) {
	if done, err := projections.RewritePersistence(ctx, rdb); err != nil {
		fmt.Fprintf(stderr, "warning: redis's files were not rewritten, they may keep erased personal data until their next rewrite: %v\n", err)
	} else if len(done) > 0 {
		fmt.Fprintf(stdout, "redis's files rewritten: %s\n", strings.Join(done, ", "))
	}
}

func projectionNames() []string {
	var names []string
	for _, p := range projections.All() {
		names = append(names, p.Name())
	}
	return names
}

func selectProjections(only string) ([]projections.Projector, error) {
	if only == "" {
		return projections.All(), nil
	}
	var ps []projections.Projector
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(projections.All(), func(p projections.Projector) bool { return p.Name() == name })
		if i < 0 {
			return nil, fmt.Errorf("--projection: no projection %q (have %s)", name, strings.Join(projectionNames(), ", "))
		}
		if !slices.ContainsFunc(ps, func(p projections.Projector) bool { return p.Name() == name }) {
			ps = append(ps, projections.All()[i])
		}
	}
	return ps, nil
}

// openReplayStore opens the log. The embedded store is one process's at a
// time: beside a running `passerelle serve`, its file lock wait gives up
// after 5 s.
func openReplayStore(dataDir, esURL string, stderr io.Writer) (eventstore.Store, error) {
	if esURL != "" {
		return openStore(esURL)
	}
	fmt.Fprintf(stderr, "opening the event store in %s (if `passerelle serve` holds it, this gives up after 5 s)\n", dataDir)
	s, err := embedded.Open(dataDir)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("the event store in %s is held by another process, most likely `passerelle serve`: the embedded store admits one process at a time and the lock wait timed out after 5 s; stop the service first, or serve from EventStoreDB (--eventstore) and a Redis server (--redis-url) to rebuild while it serves", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dataDir, err)
	}
	return s, nil
}

// progressBar draws the rebuild's progress on a terminal, or logs it as
// plain lines when stderr is a file or a pipe.
type progressBar struct {
	w     io.Writer
	tty   bool
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (b *progressBar) show(p projections.Progress) {
	frac := p.Fraction()
	switch p.Phase {
	case "done":
		b.end()
		for _, name := range strings.Split(p.Projection, ",") {
			fmt.Fprintf(b.w, "replay %s: 100%% %d events in %s, %.0f events/s\n", name, p.Events, p.Elapsed.Round(time.Millisecond), p.Rate())
		}
		return
	case "replaying":
	default:
		b.end()
		fmt.Fprintf(b.w, "replay: %s\n", p.Phase)
		return
	}
	if !b.tty {
		fmt.Fprintf(b.w, "replay %s: %.1f%% %d events, position %s of %s, %.0f events/s, ETA %s\n",
			p.Projection, 100*frac, p.Events, p.Position, p.Head, p.Rate(), p.ETA().Round(time.Second))
		return
	}
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(b.w, "\r\033[K%s %5.1f%%  %d events  %.0f ev/s  ETA %s", bar, 100*frac, p.Events, p.Rate(), formatETA(p.ETA()))
	b.drawn = true
}

func (b *progressBar) end() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
