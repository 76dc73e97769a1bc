package app

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"passerelle/eventstore"
	"passerelle/projections"
)

// counting counts the events the command layer appends.
type counting struct {
	eventstore.Store
	appended *atomic.Int64
}

func (c counting) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := c.Store.Append(ctx, stream, expected, evs...)
	if err == nil {
		c.appended.Add(int64(len(evs)))
	}
	return res, err
}

// countingMulti is counting over a store that appends to several streams
// at once, which the command layer then uses.
type countingMulti struct {
	counting
	multi eventstore.MultiAppender
}

func (c countingMulti) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	res, err := c.multi.AppendMulti(ctx, parts...)
	if err == nil {
		for _, p := range parts {
			c.appended.Add(int64(len(p.Events)))
		}
	}
	return res, err
}

// countAppends wraps the store the command layer writes to.
func countAppends(s eventstore.Store, n *atomic.Int64) eventstore.Store {
	c := counting{Store: s, appended: n}
	if m, ok := s.(eventstore.MultiAppender); ok {
		return countingMulti{counting: c, multi: m}
	}
	return c
}

// domainCollector reads, at each scrape, what the read models and the log
// say: each projection's lag, readiness, open offers and free seats.
type domainCollector struct {
	a                                           *App
	lagEvents, lagSeconds, ready, offers, seats *prometheus.Desc
}

func newDomainCollector(a *App) *domainCollector {
	return &domainCollector{a: a,
		lagEvents:  prometheus.NewDesc("passerelle_projection_lag_events", "Events of the log a projection has not applied yet (counted up to 10000).", []string{"projection"}, nil),
		lagSeconds: prometheus.NewDesc("passerelle_projection_lag_seconds", "How long the oldest event a projection has not applied has waited.", []string{"projection"}, nil),
		ready:      prometheus.NewDesc("passerelle_ready", "1 when the store and Redis answer and every projection has caught up (as /readyz), else 0.", nil, nil),
		offers:     prometheus.NewDesc("passerelle_offers_open", "Open offers, as the statistics read model counts them.", nil, nil),
		seats:      prometheus.NewDesc("passerelle_seats_available", "Free seat-weeks of open offers, as the statistics read model counts them.", nil, nil),
	}
}

func (d *domainCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{d.lagEvents, d.lagSeconds, d.ready, d.offers, d.seats} {
		ch <- desc
	}
}

func (d *domainCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ready := 0.0
	head, err := d.a.Store.Head(ctx)
	if err == nil {
		if st, err := d.a.projectionStatus(ctx, head); err == nil {
			for _, p := range st {
				ch <- prometheus.MustNewConstMetric(d.lagEvents, prometheus.GaugeValue, float64(p.EventsBehind), p.Name)
				ch <- prometheus.MustNewConstMetric(d.lagSeconds, prometheus.GaugeValue, p.SecondsBehind, p.Name)
			}
			if st.caughtUp() {
				ready = 1
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(d.ready, prometheus.GaugeValue, ready)
	prefix, err := projections.ActivePrefix(ctx, d.a.Redis, projections.StatsName)
	if err != nil || prefix == "" {
		return
	}
	v := projections.View{RDB: d.a.Redis, Prefix: prefix}
	h, err := d.a.Redis.HMGet(ctx, v.Key(projections.StatsCountersKey()), "all:offers_open", "all:seats_available").Result()
	if err != nil {
		return
	}
	for i, desc := range []*prometheus.Desc{d.offers, d.seats} {
		s, _ := h[i].(string)
		n, _ := strconv.ParseFloat(s, 64) // absent: 0
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n)
	}
}
