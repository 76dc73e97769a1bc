package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// accessLog writes the line each request leaves from a goroutine of its
// own. Written by the request itself, the line was formatted and written to
// stderr under the logger's lock, one write each, and the requests queued
// on that lock (the largest share of the service's mutex contention); here
// a request hands its fields over a buffered channel, and one writer
// formats and writes them in order, stamped with the time each request
// ended. Nothing is dropped: when the channel is full (a logger slower than
// the requests) or the log is closed, the request writes its line itself.
type accessLog struct {
	h       slog.Handler
	lines   chan accessLine
	stopped chan struct{} // closed when the writer has returned
	// mu guards closing lines: requests hold it shared (no request waits
	// for another), close exclusively.
	mu     sync.RWMutex
	closed bool
}

// accessLine is what one request's line records.
type accessLine struct {
	at                         time.Time
	method, route, role, reqID string
	status                     int
	took                       time.Duration
	flushed                    chan struct{} // a flush marker, not a line
}

// accessLogQueue is how many lines may wait for the writer.
const accessLogQueue = 4096

func newAccessLog(log *slog.Logger) *accessLog {
	l := &accessLog{h: log.Handler(), lines: make(chan accessLine, accessLogQueue), stopped: make(chan struct{})}
	go l.run()
	return l
}

// enabled reports whether request lines are logged at all.
func (l *accessLog) enabled(ctx context.Context) bool { return l.h.Enabled(ctx, slog.LevelInfo) }

// add logs a request's line.
func (l *accessLog) add(line accessLine) {
	if !l.enqueue(line) {
		l.write(line)
	}
}

// enqueue hands line to the writer, unless the queue is full or closed.
func (l *accessLog) enqueue(line accessLine) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case l.lines <- line:
		return true
	default:
		return false
	}
}

func (l *accessLog) run() {
	defer close(l.stopped)
	for line := range l.lines {
		if line.flushed != nil {
			close(line.flushed)
			continue
		}
		l.write(line)
	}
}

// write formats and writes one line: never the path (it carries ids) nor
// anything of the body.
func (l *accessLog) write(line accessLine) {
	r := slog.NewRecord(line.at, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", line.method), slog.String("route", line.route), slog.Int("status", line.status),
		slog.Duration("duration", line.took), slog.String("actor_role", line.role), slog.String("request_id", line.reqID))
	_ = l.h.Handle(context.Background(), r) // a log that cannot be written has nowhere to say so
}

// flush returns once every line added before it is written.
func (l *accessLog) flush() {
	done := make(chan struct{})
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return
	}
	l.lines <- accessLine{flushed: done} // blocks while the queue is full, never while closed
	l.mu.RUnlock()
	<-done
}

// close writes the lines waiting and stops the writer; lines added later
// are written by their requests.
func (l *accessLog) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.lines)
	}
	l.mu.Unlock()
	<-l.stopped
}
