package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/personal"
	"passerelle/projections"
)

func init() {
	commandsByName["replay"] = command{"rebuild read models from the log into fresh keys and swap them in: replay [--projection NAME]", replay}
}

func replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("replay", "replay [--projection NAME] --redis-url URL [--data-dir DIR] [--eventstore URL]", stderr)
	name := fs.String("projection", "", "the projection to rebuild ("+strings.Join(projectionNames(), ", ")+"); empty: all")
	redisURL := fs.String("redis-url", "", "Redis holding the read models (the in-process default is rebuilt at every start of serve)")
	dataDir, esURL := logFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *redisURL == "" {
		return errors.New("--redis-url is required: the in-process read models of serve are rebuilt from the log at every start")
	}
	var selected []projections.Projector
	for _, p := range projections.All() {
		if *name == "" || p.Name() == *name {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return fmt.Errorf("--projection: no projection %q (have %s)", *name, strings.Join(projectionNames(), ", "))
	}
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store, err := openCLIStore(*dataDir, *esURL)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := personal.OpenDir(filepath.Join(*dataDir, "keys"))
	if err != nil {
		return err
	}
	cipher := personal.NewCipher(keys)
	bar := newProgressBar(stderr)
	for _, p := range selected {
		gen, err := projections.Rebuild(ctx, store, rdb, cipher, p, bar.report)
		bar.done()
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", p.Name(), err)
		}
		fmt.Fprintf(stdout, "%s: generation %s is served\n", p.Name(), gen)
	}
	return nil
}

func projectionNames() []string {
	var out []string
	for _, p := range projections.All() {
		out = append(out, p.Name())
	}
	return out
}

// progressBar draws a bar with events/s and ETA on a terminal, and writes
// plain lines every few seconds elsewhere (logs, CI).
type progressBar struct {
	w        io.Writer
	terminal bool
	last     time.Time
	printed  int64
	drawn    bool
}

func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

func (b *progressBar) report(p projections.Progress) {
	frac := 1.0
	if p.Head > 0 {
		frac = min(1, float64(p.Position)/float64(p.Head))
	}
	rate := float64(p.Events) / max(p.Elapsed.Seconds(), 1e-3)
	eta := time.Duration(0)
	if frac > 0 && frac < 1 {
		eta = time.Duration(float64(p.Elapsed) * (1 - frac) / frac).Round(time.Second)
	}
	if b.terminal {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(b.w, "\r%-10s [%s%s] %3.0f%% %d events %.0f events/s ETA %v   ",
			p.Projection, strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, p.Events, rate, eta)
		b.drawn = true
		return
	}
	if p.Events != b.printed && (time.Since(b.last) >= 2*time.Second || frac >= 1) {
		b.printed = p.Events
		fmt.Fprintf(b.w, "replay %s: %.0f%% %d events %.0f events/s ETA %v\n", p.Projection, frac*100, p.Events, rate, eta)
		b.last = time.Now()
	}
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
	b.last, b.printed = time.Time{}, 0
}
