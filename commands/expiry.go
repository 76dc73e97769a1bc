package commands

import (
	"context"
	"log/slog"
	"time"

	"passerelle/eventstore"
)

// DueFunc lists applications whose deadline has passed at now (at most
// limit). The read model finds candidates; each application's own
// aggregate decides, with the injected clock, whether it really expires.
type DueFunc func(ctx context.Context, now time.Time, limit int64) ([]string, error)

// Expirer issues ordinary Expire commands for overdue applications.
type Expirer struct {
	svc   *Service
	due   DueFunc
	clock func() time.Time
	log   *slog.Logger
}

// NewExpirer builds the expiry scheduler.
func NewExpirer(svc *Service, due DueFunc, clock func() time.Time, log *slog.Logger) *Expirer {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Expirer{svc: svc, due: due, clock: clock, log: log}
}

// RunOnce expires every application due now and returns how many it
// handled.
func (e *Expirer) RunOnce(ctx context.Context) (int, error) {
	now := e.clock().UTC()
	ids, err := e.due(ctx, now, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		// one expiry per application: a retried run writes nothing twice
		m := Meta{CommandID: "expire/" + id, CorrelationID: "expire/" + id, Now: now,
			Actor: eventstore.Actor{Role: "system", Subject: "expiry-scheduler"}}
		if _, err := e.svc.Expire(ctx, m, id); err != nil {
			e.log.Warn("expiry failed", "application", id, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// Run calls RunOnce every interval until ctx ends.
func (e *Expirer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := e.RunOnce(ctx); err != nil {
				e.log.Warn("expiry run failed", "err", err)
			} else if n > 0 {
				e.log.Info("overdue applications handled", "count", n)
			}
		}
	}
}
