package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// safety bounds every wait inside a test handler, so that a broken runner fails the
// test instead of hanging it.
const safety = 5 * time.Second

// newServer starts an httptest server that is closed when the test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// okHandler answers "ok\n".
func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }

// barrier lets handlers wait until n requests have arrived, or safety has passed.
type barrier struct {
	n       int64
	arrived atomic.Int64
	all     chan struct{}
	once    sync.Once
}

func newBarrier(n int) *barrier { return &barrier{n: int64(n), all: make(chan struct{})} }

// wait records one arrival and blocks until all have arrived. It reports whether they
// did before the safety timeout.
func (b *barrier) wait() bool {
	if b.arrived.Add(1) >= b.n {
		b.once.Do(func() { close(b.all) })
	}
	select {
	case <-b.all:
		return true
	case <-time.After(safety):
		return false
	}
}

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestBurstSendsAllAtOnceOnSeparateConnections(t *testing.T) {
	const n = 64
	b := newBarrier(n)
	var mu sync.Mutex
	remotes := map[string]bool{}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		if !b.wait() {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		okHandler(w, r)
	})

	res := mustRun(t, Config{URL: srv.URL, Mode: ModeBurst, Requests: n})

	s := res.Summary()
	if s.Requests != n || s.Statuses[200] != n {
		t.Errorf("got %d requests, %d with 200, want %d and %d (all in flight together)",
			s.Requests, s.Statuses[200], n, n)
	}
	if len(remotes) != n {
		t.Errorf("got %d client connections, want %d", len(remotes), n)
	}
	for i, rec := range res.Records {
		if rec.Index != i || rec.Scheduled != 0 || rec.Bytes != 3 {
			t.Fatalf("got record %+v at %d, want index %d, scheduled 0, 3 bytes", rec, i, i)
		}
	}
}

// TestBurstNeverReusesConnections answers at once, so a request that starts late could
// find an earlier one's connection idle; a burst must dial its own all the same.
func TestBurstNeverReusesConnections(t *testing.T) {
	const n = 50
	var mu sync.Mutex
	remotes := map[string]bool{}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		okHandler(w, r)
	})

	mustRun(t, Config{URL: srv.URL, Mode: ModeBurst, Requests: n})

	if len(remotes) != n {
		t.Errorf("got %d client connections for %d requests, want one each", len(remotes), n)
	}
}

func TestConcurrencyModeCountsAndBoundsWorkers(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		raise(&peak, n)
		time.Sleep(time.Millisecond)
		okHandler(w, r)
	})

	tests := []struct {
		name    string
		cfg     Config
		wantMin int
		wantMax int
	}{
		{"request count", Config{Concurrency: 4, Requests: 200}, 200, 200},
		{"duration", Config{Concurrency: 3, Duration: 200 * time.Millisecond}, 1, MaxRequests},
		{"count reached before duration",
			Config{Concurrency: 2, Requests: 10, Duration: safety}, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak.Store(0)
			tt.cfg.URL, tt.cfg.Mode = srv.URL, ModeConcurrency
			res := mustRun(t, tt.cfg)

			if n := len(res.Records); n < tt.wantMin || n > tt.wantMax {
				t.Errorf("got %d requests, want %d to %d", n, tt.wantMin, tt.wantMax)
			}
			if got := peak.Load(); got > int64(tt.cfg.Concurrency) {
				t.Errorf("got %d requests in flight at once, want at most %d",
					got, tt.cfg.Concurrency)
			}
			for i, rec := range res.Records {
				if rec.Index != i || rec.Status != 200 {
					t.Fatalf("got record %+v at %d, want index %d with status 200", rec, i, i)
				}
			}
		})
	}
}

// raise sets v to n if n is larger.
func raise(v *atomic.Int64, n int64) {
	for p := v.Load(); n > p; p = v.Load() {
		if v.CompareAndSwap(p, n) {
			return
		}
	}
}

func TestExactPercentilesAndSlowCount(t *testing.T) {
	const slowDelay = 200 * time.Millisecond
	var count atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1)%2 == 0 {
			time.Sleep(slowDelay)
		}
		okHandler(w, r)
	})

	res := mustRun(t, Config{
		URL: srv.URL, Mode: ModeConcurrency, Concurrency: 25, Requests: 100,
		Slow: slowDelay * 3 / 4,
	})
	s := res.Summary()

	lat := make([]time.Duration, len(res.Records))
	for i, rec := range res.Records {
		lat[i] = rec.Latency()
	}
	slices.Sort(lat)

	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"p50 is the 50th of 100", s.Latency.P50, lat[49]},
		{"p90 is the 90th of 100", s.Latency.P90, lat[89]},
		{"p99 is the 99th of 100", s.Latency.P99, lat[98]},
		{"p99.9 is the 100th of 100", s.Latency.P999, lat[99]},
		{"min", s.Latency.Min, lat[0]},
		{"max", s.Latency.Max, lat[99]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}

	// Half the requests sleep: the 50th fastest is a quick one, the 51st a slow one.
	if s.Latency.P50 >= slowDelay {
		t.Errorf("got p50 %s, want below the %s delay", s.Latency.P50, slowDelay)
	}
	if s.Latency.P90 < slowDelay || s.Latency.P99 < slowDelay {
		t.Errorf("got p90 %s and p99 %s, want both at least %s",
			s.Latency.P90, s.Latency.P99, slowDelay)
	}
	if s.Slow != 50 {
		t.Errorf("got %d slow requests, want 50", s.Slow)
	}
}

func TestErrorClassification(t *testing.T) {
	hijack := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	stall := make(chan struct{})
	stalled := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		case <-time.After(safety):
		}
	})
	stalledBody := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("0123456789"))
		http.NewResponseController(w).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		case <-time.After(safety):
		}
	})
	t.Cleanup(func() { close(stall) })

	const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		want    ErrorKind
	}{
		{"closed port", closedPortURL(t), time.Second, ErrRefused},
		{"server closes the connection", hijack.URL, time.Second, ErrReset},
		{"no answer within the timeout", stalled.URL, 50 * time.Millisecond, ErrTimeout},
		{"body stalls past the timeout", stalledBody.URL, 50 * time.Millisecond, ErrTimeout},
		{"server breaks off the body", rawServer(t,
			"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"), time.Second, ErrReset},
		{"server breaks off a chunk", rawServer(t, chunked+"a\r\n01234"), time.Second, ErrReset},
		{"server breaks off a chunk size", rawServer(t, chunked+"a\r\n0123456789\r\n0"),
			time.Second, ErrReset},
		{"malformed response", rawServer(t, "not http at all\r\n\r\n"), time.Second, ErrOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, Config{
				URL: tt.url, Mode: ModeBurst, Requests: 3, Timeout: tt.timeout,
			})
			s := res.Summary()
			if s.Errors[tt.want] != 3 || s.Failed() != 3 {
				t.Errorf("got errors %v, want 3 of kind %q", s.Errors, tt.want)
			}
		})
	}
}

// rawServer returns the URL of a server that answers every request with response, sent
// as it is, and then closes the connection.
func rawServer(t *testing.T, response string) string {
	t.Helper()
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = conn.Write([]byte(response))
	})
	return srv.URL
}

// closedPortURL returns a URL on a port that was free a moment ago.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return "http://" + addr + "/"
}

func TestStatusCountsAndRequestShape(t *testing.T) {
	statuses := []int{200, 404, 503, 200}
	var count atomic.Int64
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 16)
		n, _ := r.Body.Read(buf)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("X-Test")+" "+r.Host+" "+string(buf[:n]))
		mu.Unlock()
		w.WriteHeader(statuses[(count.Add(1)-1)%int64(len(statuses))])
	})

	res := mustRun(t, Config{
		URL: srv.URL, Mode: ModeConcurrency, Concurrency: 1, Requests: 8, Method: "POST",
		Header: http.Header{"X-Test": {"yes"}, "Host": {"example.test"}}, Body: []byte("hi"),
	})

	s := res.Summary()
	want := map[int]int{200: 4, 404: 2, 503: 2}
	for code, n := range want {
		if s.Statuses[code] != n {
			t.Errorf("got %d responses with %d, want %d", s.Statuses[code], code, n)
		}
	}
	if len(s.Errors) != 0 || s.Failed() != 4 || s.HTTPErrors[404] != 2 || s.HTTPErrors[503] != 2 {
		t.Errorf("got %d failed, errors %v, http errors %v; want 4 failed, no transport"+
			" errors, 2 × 404 and 2 × 503", s.Failed(), s.Errors, s.HTTPErrors)
	}
	if got, want := seen[len(seen)-1], "POST yes example.test hi"; got != want {
		t.Errorf("got request %q, want %q", got, want)
	}
}

func TestRateModeSchedule(t *testing.T) {
	srv := newServer(t, okHandler)
	const rate, d = 200, 500 * time.Millisecond

	res := mustRun(t, Config{URL: srv.URL, Mode: ModeRate, Rate: rate, Duration: d})

	if got, want := len(res.Records), rate*int(d/time.Millisecond)/1000; got != want {
		t.Fatalf("got %d requests, want %d (rate × duration)", got, want)
	}
	interval := time.Second / rate
	for i, rec := range res.Records {
		if want := time.Duration(i+1) * interval; rec.Scheduled != want {
			t.Fatalf("got request %d scheduled at %s, want %s", i, rec.Scheduled, want)
		}
		if rec.Start < rec.Scheduled {
			t.Fatalf("got request %d sent at %s, before its slot at %s",
				i, rec.Start, rec.Scheduled)
		}
		if rec.Latency() != rec.End-rec.Scheduled {
			t.Fatalf("got latency %s, want it counted from the slot", rec.Latency())
		}
	}
	if res.Wall < d {
		t.Errorf("got wall time %s, want at least %s", res.Wall, d)
	}
}

// TestRateModeIsOpenLoop holds every response until all requests have arrived: a
// schedule that waited for responses would never send the later ones.
func TestRateModeIsOpenLoop(t *testing.T) {
	const rate, d = 100, 300 * time.Millisecond
	b := newBarrier(rate * 3 / 10)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !b.wait() {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		okHandler(w, r)
	})

	res := mustRun(t, Config{URL: srv.URL, Mode: ModeRate, Rate: rate, Duration: d})

	s := res.Summary()
	if s.Statuses[200] != 30 {
		t.Fatalf("got statuses %v and errors %v, want 30 × 200", s.Statuses, s.Errors)
	}
	firstEnd, lastStart := res.Records[0].End, time.Duration(0)
	for _, rec := range res.Records {
		firstEnd, lastStart = min(firstEnd, rec.End), max(lastStart, rec.Start)
	}
	if firstEnd < lastStart {
		t.Errorf("got a response at %s before the last send at %s, want all sent first",
			firstEnd, lastStart)
	}
}

func TestCancelStopsAndKeepsRecords(t *testing.T) {
	var arrived atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) > 5 {
			select {
			case <-r.Context().Done():
			case <-time.After(safety):
			}
			return
		}
		okHandler(w, r)
	})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for i := 0; arrived.Load() <= 5 && i < int(safety/time.Millisecond); i++ {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := Run(ctx, Config{URL: srv.URL, Mode: ModeConcurrency, Concurrency: 1,
		Duration: time.Minute})
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	s := res.Summary()
	if !s.Interrupted || s.Statuses[200] != 5 || s.Errors[ErrCanceled] != 1 {
		t.Errorf("got interrupted %v, statuses %v, errors %v; want true, 5 × 200, 1 canceled",
			s.Interrupted, s.Statuses, s.Errors)
	}
	if s.Measured != 5 {
		t.Errorf("got %d measured, want 5: a canceled request has no latency", s.Measured)
	}
}

func TestValidate(t *testing.T) {
	const u = "http://127.0.0.1:1/"
	tests := []struct {
		name string
		cfg  Config
	}{
		{"relative URL", Config{URL: "/x", Mode: ModeBurst, Requests: 1}},
		{"ftp URL", Config{URL: "ftp://h/", Mode: ModeBurst, Requests: 1}},
		{"no mode", Config{URL: u}},
		{"burst of zero", Config{URL: u, Mode: ModeBurst}},
		{"rate without duration", Config{URL: u, Mode: ModeRate, Rate: 5}},
		{"rate too low for the duration", Config{URL: u, Mode: ModeRate, Rate: 1,
			Duration: time.Millisecond}},
		{"workers without a bound", Config{URL: u, Mode: ModeConcurrency, Concurrency: 2}},
		{"no workers", Config{URL: u, Mode: ModeConcurrency, Requests: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil {
				t.Errorf("got nil error for %+v, want one", tt.cfg)
			}
			if _, err := Run(context.Background(), tt.cfg); err == nil {
				t.Errorf("got Run to accept %+v, want an error", tt.cfg)
			}
		})
	}
}

// TestClosedLoopRecoversAfterTimeout checks that a worker whose request timed out
// sends its next requests under a fresh timeout rather than an expired one.
func TestClosedLoopRecoversAfterTimeout(t *testing.T) {
	var count atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) == 2 {
			select {
			case <-r.Context().Done():
			case <-time.After(safety):
			}
			return
		}
		okHandler(w, r)
	})

	res := mustRun(t, Config{URL: srv.URL, Mode: ModeConcurrency, Concurrency: 1, Requests: 5,
		Timeout: 100 * time.Millisecond})

	var kinds []ErrorKind
	for _, rec := range res.Records {
		kinds = append(kinds, rec.Err)
	}
	want := []ErrorKind{ErrNone, ErrTimeout, ErrNone, ErrNone, ErrNone}
	if !slices.Equal(kinds, want) {
		t.Errorf("got kinds %v, want %v", kinds, want)
	}
}

// TestErrorStatusesFail checks, in every mode, that a response with a status outside
// 200–399 counts as failed and that 2xx and 3xx responses do not.
func TestErrorStatusesFail(t *testing.T) {
	modes := []struct {
		name string
		cfg  Config
		n    int // requests the run sends
	}{
		{"burst", Config{Mode: ModeBurst, Requests: 10}, 10},
		{"concurrency", Config{Mode: ModeConcurrency, Concurrency: 2, Requests: 10}, 10},
		{"rate", Config{Mode: ModeRate, Rate: 100, Duration: 100 * time.Millisecond}, 10},
	}
	statuses := []struct {
		code   int
		failed bool
	}{
		{http.StatusOK, false},
		{http.StatusNoContent, false},
		{http.StatusNotModified, false},
		{http.StatusNotFound, true},
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, true},
	}
	for _, m := range modes {
		for _, st := range statuses {
			t.Run(fmt.Sprintf("%s %d", m.name, st.code), func(t *testing.T) {
				srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(st.code)
				})
				cfg := m.cfg
				cfg.URL = srv.URL
				res := mustRun(t, cfg)

				s := res.Summary()
				wantFailed, wantHTTP := 0, 0
				if st.failed {
					wantFailed, wantHTTP = m.n, m.n
				}
				if s.Requests != m.n || s.Statuses[st.code] != m.n || len(s.Errors) != 0 {
					t.Fatalf("got %d requests, statuses %v, errors %v; want %d × %d",
						s.Requests, s.Statuses, s.Errors, m.n, st.code)
				}
				if s.Failed() != wantFailed || s.HTTPErrors[st.code] != wantHTTP {
					t.Errorf("got %d failed, http errors %v; want %d failed",
						s.Failed(), s.HTTPErrors, wantFailed)
				}
				for _, rec := range res.Records {
					if rec.Failed() != st.failed || rec.Err != ErrNone {
						t.Fatalf("got record %+v failed %v, want %v with no error kind",
							rec, rec.Failed(), st.failed)
					}
				}
			})
		}
	}
}
