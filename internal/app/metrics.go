package app

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"passerelle/eventstore/embedded"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/projections"
)

// metrics is the service's Prometheus registry. Each App has its own, so
// several can run in one test process.
type metrics struct {
	reg      *prometheus.Registry
	access   *accessLog
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	commands *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	appended atomic.Int64 // events the command layer appended
}

func newMetrics(a *App) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(), access: newAccessLog(a.log),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "passerelle_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "method"}),
	}
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "passerelle_commands_total", Help: "Commands by route and outcome: accepted, refused (code: the business rule that refused it), invalid (bad input, unknown resource, not allowed), abandoned (the client went away before the answer) or failed.",
	}, []string{"command", "outcome", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "passerelle_command_duration_seconds", Help: "Command latency by route, answers of every outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"command"})
	m.reg.MustRegister(m.requests, m.duration, m.commands, m.latency, newDomainCollector(a),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "passerelle_events_appended_total", Help: "Events the command layer of this process appended to the log.",
	}, func() float64 { return float64(m.appended.Load()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "passerelle_eventstore_head_position", Help: "Global position of the last event in the log.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h, err := a.Store.Head(ctx)
		if err != nil {
			return -1
		}
		return float64(h)
	}))
	if store, ok := a.Store.(interface{ CommitterBusy() time.Duration }); ok {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "passerelle_eventstore_committer_busy_seconds_total",
			Help: "Time the embedded store's committer spent on groups of appends; a rate near 1 means appends queue behind it.",
		}, func() float64 { return store.CommitterBusy().Seconds() }))
	}
	if store, ok := a.Store.(logSyncer); ok {
		m.reg.MustRegister(logSyncCollector{store: store, desc: prometheus.NewDesc("passerelle_eventstore_log_sync_seconds",
			"Time each write and sync of the embedded store's write-ahead log took: every group of appends waits for one, so their tail is the commands' floor.", nil, nil)})
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "passerelle_placements_unsettled", Help: "Placements the log shows unsettled (a command under way, or interrupted and soon settled by the reconciler); -1 while the reconciler catches up.",
	}, func() float64 { return float64(a.Reconciler.Unsettled()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "passerelle_reconciler_repairs_total", Help: "Placements settled by the reconciler in this process.",
	}, func() float64 { done, _ := a.Reconciler.Repairs(); return float64(done) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "passerelle_reconciler_failures_total", Help: "Failed tries of the reconciler in this process (each is retried).",
	}, func() float64 { _, failed := a.Reconciler.Repairs(); return float64(failed) }))
	for _, p := range projections.All() {
		name := p.Name()
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "passerelle_projection_position", Help: "Last global position applied by a projection in this process.",
			ConstLabels: prometheus.Labels{"projection": name},
		}, func() float64 { return float64(a.runner.Applied()[name]) }))
	}
	return m
}

// logSyncer is the embedded store (embedded.Store.LogSyncs).
type logSyncer interface {
	LogSyncs() (counts []uint64, total time.Duration)
}

// logSyncCollector shows the embedded store's log syncs as a histogram.
type logSyncCollector struct {
	store logSyncer
	desc  *prometheus.Desc
}

func (c logSyncCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c logSyncCollector) Collect(ch chan<- prometheus.Metric) {
	counts, total := c.store.LogSyncs()
	buckets, n := map[float64]uint64{}, uint64(0)
	for i, bound := range embedded.SyncBuckets {
		n += counts[i]
		buckets[bound] = n
	}
	n += counts[len(counts)-1]
	ch <- prometheus.MustNewConstHistogram(c.desc, n, total.Seconds(), buckets)
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

type statusRecorder struct {
	http.ResponseWriter
	status int
	code   string // the error's business rule, else its code, when the answer is an error
}

// NoteError implements api.ErrorNoter.
func (s *statusRecorder) NoteError(code, rule string) {
	s.code = code
	if rule != "" {
		s.code = rule
	}
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Flush keeps Server-Sent Events working through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		// the router fills a route context it finds in the request, which
		// lets this outer middleware read the matched pattern afterwards;
		// authentication records the principal in the same way
		rctx := chi.NewRouteContext()
		ctx, who := auth.Observe(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		next.ServeHTTP(rec, r.WithContext(ctx))
		took := time.Since(start)
		route := "unmatched"
		if p := rctx.RoutePattern(); p != "" {
			route = p
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(took.Seconds())
		if r.Method != http.MethodGet && r.Method != http.MethodHead && route != "unmatched" {
			outcome, code := commandOutcome(rec.status, rec.code)
			m.commands.WithLabelValues(route, outcome, code).Inc()
			m.latency.WithLabelValues(route).Observe(took.Seconds())
		}
		if m.access.enabled(r.Context()) {
			role := who.Role
			if role == "" {
				role = "anonymous"
			}
			m.access.add(accessLine{at: start.Add(took), method: r.Method, route: route, status: rec.status, took: took,
				role: role, reqID: middleware.GetReqID(r.Context())})
		}
	})
}

// commandOutcome classifies a command's answer.
func commandOutcome(status int, code string) (outcome, rule string) {
	switch {
	case status < 300:
		return "accepted", ""
	case status == http.StatusConflict || status == http.StatusUnprocessableEntity:
		return "refused", code
	case status == api.StatusClientClosed:
		return "abandoned", "" // whether it was carried out, its events say
	case status < 500:
		return "invalid", ""
	}
	return "failed", ""
}
