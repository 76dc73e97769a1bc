package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
)

// Erasing a pupil's data from the read models removes it from Redis's
// memory, not from its files: the append-only file keeps every command
// since its last rewrite, and a snapshot keeps the values it was taken
// with. Once a forget is applied by every projection, the runner has
// Redis rewrite the files that it keeps from its present data.

// RewritePersistence rewrites the files Redis persists to: the append-only
// file when appendonly is on (BGREWRITEAOF), the snapshot when Redis saves
// snapshots (BGSAVE, scheduled after a rewrite under way). It returns what
// it asked for; a server that keeps no file gets nothing.
func RewritePersistence(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	cfg := map[string]string{}
	for _, name := range []string{"appendonly", "save"} {
		v, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return nil, fmt.Errorf("read redis's persistence settings: %w", err)
		}
		cfg[name] = v[name]
	}
	var done []string
	if cfg["appendonly"] == "yes" {
		if err := rdb.BgRewriteAOF(ctx).Err(); err != nil {
			return done, fmt.Errorf("BGREWRITEAOF: %w", err)
		}
		done = append(done, "BGREWRITEAOF")
	}
	if cfg["save"] != "" {
		if err := bgsave(ctx, rdb); err != nil {
			return done, fmt.Errorf("BGSAVE: %w", err)
		}
		done = append(done, "BGSAVE")
	}
	return done, nil
}

// bgsave starts a snapshot of the present data. A snapshot under way was
// started before and may hold what was erased: the new one waits for it
// (at most saveWait).
func bgsave(ctx context.Context, rdb redis.UniversalClient) error {
	deadline := time.Now().Add(saveWait)
	for {
		err := rdb.Do(ctx, "BGSAVE", "SCHEDULE").Err()
		if err == nil || !strings.Contains(err.Error(), "in progress") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// saveWait bounds how long a snapshot waits for the one under way.
const saveWait = 5 * time.Minute

// erased notes that a forget at pos was applied by projection name, and
// rewrites Redis's files once every projection has applied it.
func (r *Runner) erased(ctx context.Context, pos eventstore.Position) {
	r.mu.Lock()
	r.purge = max(r.purge, pos)
	due := r.purge > r.purged
	for _, p := range r.projectors {
		due = due && r.applied[p.Name()] >= r.purge
	}
	if due {
		r.purged = r.purge
	}
	r.mu.Unlock()
	if due {
		// in the background: a snapshot may wait for the one under way
		go r.rewritePersistence(context.WithoutCancel(ctx), "a pupil's data was erased")
	}
}

// rewritePersistence rewrites Redis's files, saying in the log why. The
// in-process server (it tells no run_id) keeps no file.
func (r *Runner) rewritePersistence(ctx context.Context, why string) {
	if serverRunID(ctx, r.rdb) == "" {
		return
	}
	done, err := RewritePersistence(ctx, r.rdb)
	switch {
	case err != nil:
		r.log.Warn("could not rewrite redis's files: they may keep erased personal data until their next rewrite", "reason", why, "err", err)
	case len(done) > 0:
		r.log.Info("redis's files rewritten", "reason", why, "commands", done)
	}
}
