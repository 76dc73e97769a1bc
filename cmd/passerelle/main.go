// Command passerelle runs the Passerelle placement backend and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/auth"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commandsByName = map[string]command{
	"serve": {"run the service (HTTP API, projections)", serve},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commandsByName[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "passerelle: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "passerelle %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Passerelle: placement backend for school observation internships.")
	fmt.Fprintln(w, "\nUsage: passerelle COMMAND [flags]    (passerelle COMMAND --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commandsByName))
	for n := range commandsByName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, commandsByName[n].summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set by an environment variable PASSERELLE_<FLAG>, e.g. PASSERELLE_DATA_DIR.")
}

// flagSet builds a subcommand's flags; envDefault lets PASSERELLE_* set them.
func flagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: passerelle %s\n\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nEach flag may be set by PASSERELLE_<FLAG> (upper case, '-' as '_'); a flag given on the command line wins.")
	}
	return fs
}

// parse applies PASSERELLE_* environment variables, then the command line.
func parse(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "PASSERELLE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("serve", "serve [--data-dir DIR] [--addr HOST:PORT] [--redis-url URL] [--eventstore URL]", stderr)
	dataDir := fs.String("data-dir", "./passerelle-data", "directory of the embedded event store, the personal-data keys and the token key (created if missing)")
	addr := fs.String("addr", "127.0.0.1:8080", "address the HTTP API listens on")
	redisURL := fs.String("redis-url", "", "Redis holding the read models, e.g. redis://127.0.0.1:6379/0; empty: an in-process Redis-compatible server, rebuilt from the log at start")
	esURL := fs.String("eventstore", "", "EventStoreDB connection string, e.g. esdb://127.0.0.1:2113?tls=false; empty: the embedded engine in --data-dir")
	fs.StringVar(esURL, "eventstore-url", "", "same as --eventstore")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	authOn := fs.Bool("auth", true, "require bearer tokens (printed by passerelle token); --auth=false serves without authentication, for development only")
	rateLimit := fs.Float64("rate-limit", 50, "requests per second allowed to each client (token, or address without one); 0: no limit")
	rateBurst := fs.Int("rate-burst", 100, "burst of requests allowed above --rate-limit")
	keyHex := fs.String("token-key", "", "token signing key in hex (at least 32 bytes); empty: a key generated into --data-dir on first start")
	if err := parse(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := app.Config{DataDir: *dataDir, RedisURL: *redisURL, EventStoreURL: *esURL, Logger: log, OpenStore: openStore,
		RateLimit: *rateLimit, RateBurst: *rateBurst}
	if *authOn {
		key, err := tokenKey(*keyHex, *dataDir)
		if err != nil {
			return err
		}
		if cfg.Verifier, err = auth.NewHMAC(key, nil); err != nil {
			return err
		}
	} else {
		log.Warn("authentication is off: every request is accepted")
	}
	a, err := app.Open(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("passerelle serving", "addr", ln.Addr().String(), "data_dir", *dataDir, "redis", a.RedisAddr(), "eventstore", storeName(*esURL))
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return a.Close()
}

func storeName(url string) string {
	if url == "" {
		return "embedded"
	}
	return "esdb"
}
