package app

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"passerelle/projections"
)

// metrics is the service's Prometheus registry. Each App has its own, so
// several can run in one test process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(a *App) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passerelle_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "passerelle_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "method"}),
	}
	m.reg.MustRegister(m.requests, m.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

type statusRecorder struct {
	http.ResponseWriter
	status int
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
		// lets this outer middleware read the matched pattern afterwards
		rctx := chi.NewRouteContext()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
		route := "unmatched"
		if p := rctx.RoutePattern(); p != "" {
			route = p
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}
