package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Stats summarise one measured loop.
type Stats struct {
	N        int
	Errors   int
	Err      error // the first error, when any operation failed
	Elapsed  time.Duration
	P50, P99 time.Duration
	// SendP99 (open loops) is how late the generator itself sent, p99:
	// it shares the process and its processors with the service, and
	// this part of the latency is its own
	SendP99 time.Duration
	lat     []time.Duration // sorted, for combine
}

// Rate is the operations per second.
func (s Stats) Rate() float64 { return float64(s.N) / max(s.Elapsed.Seconds(), 1e-9) }

func summarise(lat []time.Duration, errs int, elapsed time.Duration) Stats {
	slices.Sort(lat)
	s := Stats{N: len(lat), Errors: errs, Elapsed: elapsed, lat: lat}
	if len(lat) > 0 {
		s.P50, s.P99 = lat[len(lat)/2], p99(lat)
	}
	return s
}

// combine is the statistics of several runs taken as one: their
// operations over the sum of their times.
func combine(runs ...Stats) Stats {
	var lat []time.Duration
	errs, elapsed := 0, time.Duration(0)
	var first error
	for _, r := range runs {
		lat, errs, elapsed = append(lat, r.lat...), errs+r.Errors, elapsed+r.Elapsed
		first = cmp.Or(first, r.Err)
	}
	s := summarise(lat, errs, elapsed)
	s.Err = first
	return s
}

// p99 is the 99th percentile of sorted, which is not empty.
func p99(sorted []time.Duration) time.Duration {
	return sorted[min(len(sorted)-1, len(sorted)*99/100)]
}

// closedLoop runs op from clients goroutines, each issuing the next as soon
// as the last returned, until d has passed or max operations were issued;
// operations under way at the deadline finish.
func closedLoop(ctx context.Context, clients int, d time.Duration, maxOps int, op func(ctx context.Context) error) Stats {
	var mu sync.Mutex
	var all []time.Duration
	var first error
	errs, issued := 0, 0
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			var mine error // the goroutine's first error
			e := 0
			for ctx.Err() == nil && time.Now().Before(end) {
				mu.Lock()
				if issued >= maxOps {
					mu.Unlock()
					break
				}
				issued++
				mu.Unlock()
				t := time.Now()
				if err := op(ctx); err != nil {
					e, mine = e+1, cmp.Or(mine, err)
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			all, errs, first = append(all, lat...), errs+e, cmp.Or(first, mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	s := summarise(all, errs, time.Since(start))
	s.Err = first
	return s
}

// openLoop issues op at rate per second for d (at most maxOps), each at its
// scheduled time whatever the previous ones are doing; latency counts from
// the scheduled time, so a server that falls behind shows it.
func openLoop(ctx context.Context, rate float64, d time.Duration, maxOps int, op func(ctx context.Context) error) Stats {
	n := min(maxOps, int(rate*d.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	lat, late := make([]time.Duration, n), make([]time.Duration, n)
	failed := make([]error, n)
	sem := make(chan struct{}, 4096) // bounds the requests in flight
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				n = i
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			n = i
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			late[i] = time.Since(at)
			opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			failed[i] = op(opCtx)
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	var ok []time.Duration
	var first error
	errs := 0
	for i := range n {
		if failed[i] != nil {
			errs++
			first = cmp.Or(first, failed[i])
		} else {
			ok = append(ok, lat[i])
		}
	}
	s := summarise(ok, errs, time.Since(start))
	s.Err = first
	if late = late[:n]; len(late) > 0 {
		slices.Sort(late)
		s.SendP99 = p99(late)
	}
	return s
}

// bodies holds the buffers responses are read into. The load generator
// shares the process, and so the collector, with the service it loads:
// reading a near-search page into a fresh slice at every request made
// 18 % of all the bytes a loaded run allocated.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// request sends one request and checks its status; read, when not nil, is
// given the body, which is valid only during the call.
func request(ctx context.Context, c *http.Client, method, url string, body []byte, want int, read func([]byte) error) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	buf := bodies.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bodies.Put(buf) }()
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %.200s", method, url, res.Status, buf.Bytes())
	}
	if read != nil {
		return read(buf.Bytes())
	}
	return nil
}
