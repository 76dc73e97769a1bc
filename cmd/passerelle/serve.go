package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/ratelimit"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flagSet("serve", "serve [--role all|api|projector] [--data-dir DIR] [--addr HOST:PORT] [--redis-url URL] [--eventstore URL]", stderr)
	dataDir := fs.String("data-dir", "./passerelle-data", "directory of the embedded event store, the personal-data keys and the token key (created if missing)")
	addr := fs.String("addr", "127.0.0.1:8080", "address the HTTP API listens on")
	redisURL := fs.String("redis-url", "", "Redis holding the read models, e.g. redis://127.0.0.1:6379/0; empty: an in-process Redis-compatible server, rebuilt from the log at start")
	esURL := fs.String("eventstore", "", "EventStoreDB connection string, e.g. esdb://127.0.0.1:2113?tls=false; empty: the embedded engine in --data-dir")
	fs.StringVar(esURL, "eventstore-url", "", "same as --eventstore")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	authOn := fs.Bool("auth", true, "require bearer tokens (printed by passerelle token); --auth=false serves without authentication, for development only")
	rateLimit := fs.Float64("rate-limit", 50, "requests per second allowed to each client (token, or address without one); 0: no limit")
	rateBurst := fs.Int("rate-burst", 100, "burst of requests allowed above --rate-limit")
	role := fs.String("role", "all", "what this process does: all; api (commands and queries, several processes may serve one log); projector (projections, reconciler, expiry, seals: one or more beside the API processes). api and projector need --eventstore and --redis-url, and every process the same personal-data keys (--data-dir on shared storage)")
	publicRate := fs.Float64("public-rate-limit", 20, "requests per second allowed to each client address on the routes open without a token (offer search, an offer's page), token or not; 0: no limit")
	publicBurst := fs.Int("public-rate-burst", 100, "burst of requests allowed above --public-rate-limit")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs or addresses of the reverse proxies in front of the service; a request from one of them is counted, for the rate limits, against the rightmost address of X-Forwarded-For that is not a trusted proxy's; empty: the connection's address")
	keyHex := fs.String("token-key", "", "token signing key in hex (at least 32 bytes); empty: a key generated into --data-dir on first start")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	tuneProcs(4)
	startingGC()
	trusted, err := ratelimit.ParseProxies(*proxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}

	cfg := app.Config{DataDir: *dataDir, RedisURL: *redisURL, EventStoreURL: *esURL, Logger: log, OpenStore: openStore,
		RateLimit: *rateLimit, RateBurst: *rateBurst, PublicRateLimit: *publicRate, PublicRateBurst: *publicBurst, Role: *role,
		TrustedProxies: trusted}
	if *authOn {
		key, err := tokenKey(*keyHex, *dataDir, true)
		if err != nil {
			return err
		}
		if cfg.Verifier, err = auth.NewHMAC(key, nil); err != nil {
			return err
		}
	} else {
		log.Warn("authentication is off: every request is accepted")
	}
	warnSeedCutShort(log, *dataDir)
	a, err := app.Open(cfg)
	if err != nil {
		return err
	}
	defer closing(a, &err)
	if err := a.Start(ctx); err != nil {
		return err
	}
	go func() { // the service's collector once the read models are ready
		if a.WaitReady(ctx) == nil {
			serviceGC()
		}
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("passerelle serving", "role", *role, "addr", ln.Addr().String(), "data_dir", *dataDir, "redis", a.RedisAddr(), "eventstore", storeName(*esURL))
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
	return nil // closing a reports what the shutdown left
}

// newLogger is serve's logger, at the level named (debug, info, warn,
// error), and the default one.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
	slog.SetDefault(log)
	return log, nil
}

// warnSeedCutShort logs that dir holds a seed that did not finish.
func warnSeedCutShort(log *slog.Logger, dir string) {
	if seedCutShort(dir) {
		log.Warn("a seed into this instance was cut short: its campaign is partial (see "+seedMarker+" in the data directory)", "data_dir", dir)
	}
}

func storeName(url string) string {
	if url == "" {
		return "embedded"
	}
	return "esdb"
}
