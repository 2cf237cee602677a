package loadtest

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestSweepStopsAtTheFirstFailingRate(t *testing.T) {
	const never = 1 << 30
	tests := []struct {
		name          string
		slowFrom      int64 // requests from this index on answer slowly
		brokenFrom    int64 // requests from this index on get their connection closed
		wantSteps     int
		wantSustained int
		wantBroke     int
	}{
		{"every rate passes", never, never, 3, 150, 0},
		{"third rate too slow", 30, never, 3, 100, 150},
		{"first rate too slow", 0, never, 1, 0, 50},
		{"second rate fails with errors, not latency", never, 10, 2, 50, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var count atomic.Int64
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				i := count.Add(1) - 1
				switch {
				case i >= tt.brokenFrom:
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
					return
				case i >= tt.slowFrom:
					time.Sleep(300 * time.Millisecond)
				}
				okHandler(w, r)
			})

			var seen []int
			res, err := Sweep(context.Background(), SweepConfig{
				// 200 ms at 50, 100, 150 req/s schedules 10, 20 and 30 requests.
				Run:   Config{URL: srv.URL, Duration: 200 * time.Millisecond},
				Start: 50, Step: 50, Max: 150, P99Limit: 150 * time.Millisecond,
				OnStep: func(st SweepStep, r *Result) error {
					seen = append(seen, len(r.Records))
					return nil
				},
			})
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}

			if len(res.Steps) != tt.wantSteps || len(seen) != tt.wantSteps {
				t.Errorf("got %d steps (%d reported), want %d",
					len(res.Steps), len(seen), tt.wantSteps)
			}
			if res.Sustained != tt.wantSustained || res.Broke != tt.wantBroke {
				t.Errorf("got sustained %d, broke %d, want %d and %d",
					res.Sustained, res.Broke, tt.wantSustained, tt.wantBroke)
			}
			for i, n := range seen {
				if want := 10 * (i + 1); n != want {
					t.Errorf("got %d requests at step %d, want %d", n, i, want)
				}
			}
		})
	}
}

func TestSweepValidate(t *testing.T) {
	run := Config{URL: "http://127.0.0.1:1/", Duration: time.Second}
	second := time.Second
	tests := []struct {
		name string
		cfg  SweepConfig
	}{
		{"zero step", SweepConfig{Run: run, Start: 1, Max: 5, P99Limit: time.Second}},
		{"max below start", SweepConfig{Run: run, Start: 5, Step: 1, Max: 4, P99Limit: second}},
		{"too many steps", SweepConfig{Run: run, Start: 1, Step: 1, Max: 1000, P99Limit: second}},
		{"no p99 limit", SweepConfig{Run: run, Start: 1, Step: 1, Max: 2}},
		{"error rate over 1", SweepConfig{Run: run, Start: 1, Step: 1, Max: 2,
			P99Limit: time.Second, MaxErrorRate: 2}},
		{"no duration", SweepConfig{Run: Config{URL: run.URL}, Start: 1, Step: 1, Max: 2,
			P99Limit: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Sweep(context.Background(), tt.cfg); err == nil {
				t.Errorf("got no error for %+v, want one", tt.cfg)
			}
		})
	}
}

// TestSweepFailsOnErrorStatuses answers every request with 503 at once: the latency is
// fine, but every request failed, so the first rate breaks.
func TestSweepFailsOnErrorStatuses(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	res, err := Sweep(context.Background(), SweepConfig{
		Run:   Config{URL: srv.URL, Duration: 200 * time.Millisecond},
		Start: 50, Step: 50, Max: 150, P99Limit: time.Second, MaxErrorRate: 0.01,
	})
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if len(res.Steps) != 1 || res.Sustained != 0 || res.Broke != 50 {
		t.Fatalf("got %d steps, sustained %d, broke %d; want 1 step broken at 50",
			len(res.Steps), res.Sustained, res.Broke)
	}
	s := res.Steps[0].Summary
	if res.Steps[0].Passed || s.Failed() != 10 || s.HTTPErrors[503] != 10 {
		t.Errorf("got passed %v, %d failed, http errors %v; want failed, 10 × 503",
			res.Steps[0].Passed, s.Failed(), s.HTTPErrors)
	}
}
