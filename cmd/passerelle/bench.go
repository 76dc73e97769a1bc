package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"passerelle/internal/bench"
	"passerelle/internal/seed"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("bench", "bench [--departement CODE…] [--scale F] [--duration D] [--clients N] [--rate R] [--redis-url URL] [--only GROUPS] [--json]", stderr)
	var depts codes
	fs.Var(&depts, "departement", "département code(s) of the seeded instance (default 75, 92, 93, 94)")
	scale := fs.Float64("scale", 0.02, "scale of the seeded instance (see seed)")
	seedN := fs.Uint64("seed", 1, "random seed of the seeded instance")
	duration := fs.Duration("duration", 3*time.Second, "length of each measured loop")
	maxOps := fs.Int("max-ops", 1_000_000, "most operations of each measured loop")
	clients := fs.Int("clients", 32, "closed-loop clients")
	rate := fs.Float64("rate", 200, "open-loop commands per second")
	redisURL := fs.String("redis-url", "", "Redis to serve and replay into (its database is FLUSHED); empty: an in-process one")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	only := fs.String("only", "", "measure only these groups of paths, separated by commas: "+strings.Join(bench.Groups, ", "))
	dir := fs.String("dir", "", "working directory, empty or new, kept with the seeded instance in data/ (default: a temporary one, removed at the end)")
	rest, err := parseEnv(fs, args)
	if err != nil {
		return err
	}
	for _, r := range rest {
		_ = depts.Set(r)
	}
	if len(depts) == 0 {
		depts = codes{"75", "92", "93", "94"}
	}
	serviceRuntime()
	progress := stderr
	if *asJSON {
		progress = io.Discard
	}
	res, err := bench.Run(ctx, bench.Config{Seed: seed.Options{Departments: depts, Scale: *scale, Seed: *seedN},
		Duration: *duration, MaxOps: *maxOps, Clients: *clients, Rate: *rate, RedisURL: *redisURL, Dir: *dir, Log: progress, ReplayGC: replayGC, StartingGC: startingGC,
		Only: strings.FieldsFunc(*only, func(r rune) bool { return r == ',' || r == ' ' })})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "seeded instance: %v at scale %g, %d events; each loop %s, %d clients; %s\n\n", []string(depts), *scale,
		res.Events, *duration, *clients, machine())
	res.Table(stdout)
	return nil
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("host %s, %d CPUs", host, numCPU())
}

func numCPU() int { return runtime.NumCPU() }
