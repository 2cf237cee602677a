package loadtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Millisecond
	}

	tests := []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"empty", nil, 5000, 0},
		{"single value", []time.Duration{7}, 9990, 7},
		{"p50 of 1..100", hundred, 5000, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 9000, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 9900, 99 * time.Millisecond},
		{"p99.9 of 1..100 rounds up to the max", hundred, 9990, 100 * time.Millisecond},
		{"p99.9 of 1..1000 is exactly the 999th", thousand, 9990, 999 * time.Millisecond},
		{"p0 is the min", hundred, 0, time.Millisecond},
		{"p100 is the max", hundred, 10000, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSummarizeCounts(t *testing.T) {
	ms := time.Millisecond
	records := []Record{
		{Index: 0, Scheduled: 0, Start: 0, End: 5 * ms, Status: 200, Bytes: 3},
		{Index: 1, Scheduled: 0, Start: 1 * ms, End: 20 * ms, Status: 200, Bytes: 3},
		{Index: 2, Scheduled: 10 * ms, Start: 12 * ms, End: 40 * ms, Status: 503},
		{Index: 3, Scheduled: 10 * ms, Start: 10 * ms, End: 60 * ms, Err: ErrTimeout},
		{Index: 4, Scheduled: 20 * ms, Start: 20 * ms, End: 21 * ms, Err: ErrRefused},
		{Index: 5, Scheduled: 20 * ms, Start: 20 * ms, End: 99 * ms, Err: ErrCanceled},
	}
	cfg := Config{URL: "http://127.0.0.1/", Mode: ModeRate, Rate: 100, Slow: 25 * ms}
	s := summarize(cfg, records, 100*ms, true)

	tests := []struct {
		name      string
		got, want any
	}{
		{"requests", s.Requests, 6},
		{"measured leaves out canceled", s.Measured, 5},
		{"failed counts the 503 and the transport errors", s.Failed(), 4},
		{"http 503", s.HTTPErrors[503], 1},
		{"200 is no http error", len(s.HTTPErrors), 1},
		{"timeouts", s.Errors[ErrTimeout], 1},
		{"refused", s.Errors[ErrRefused], 1},
		{"canceled", s.Errors[ErrCanceled], 1},
		{"status 200", s.Statuses[200], 2},
		{"status 503", s.Statuses[503], 1},
		{"slow counts latency over the threshold", s.Slow, 2},
		{"throughput", s.Throughput, 50.0},
		{"min", s.Latency.Min, 1 * ms},
		{"p50 is the 3rd of 5, counted from the schedule", s.Latency.P50, 20 * ms},
		{"max", s.Latency.Max, 50 * ms},
		{"max send lag", s.MaxSendLag, 2 * ms},
		{"interrupted", s.Interrupted, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestSummaryJSONAndText(t *testing.T) {
	records := []Record{
		{Index: 0, End: 2 * time.Millisecond, Status: 200},
		{Index: 1, End: 4 * time.Millisecond, Err: ErrReset},
		{Index: 2, End: 3 * time.Millisecond, Status: 404},
		{Index: 3, End: 3 * time.Millisecond, Status: 302},
	}
	s := summarize(Config{URL: "http://127.0.0.1/x", Mode: ModeBurst}, records, time.Second, false)

	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got summaryJSON
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"mode", got.Mode, "burst"},
		{"method defaults to GET", got.Method, "GET"},
		{"errors keyed by kind name", got.Errors["reset"], 1},
		{"statuses keyed by code", got.Statuses["200"], 1},
		{"statuses keep failed ones", got.Statuses["404"], 1},
		{"http errors keyed by code", got.HTTPErrors["404"], 1},
		{"a redirect is no http error", len(got.HTTPErrors), 1},
		{"errors stay by transport kind", len(got.Errors), 1},
		{"failed sums errors and http errors", got.Failed, 2},
		{"p99 in milliseconds", got.Latency.P99, 4.0},
		{"wall in milliseconds", got.WallMS, 1000.0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}

	t.Run("text", func(t *testing.T) {
		var sb strings.Builder
		if err := s.WriteText(&sb); err != nil {
			t.Fatalf("write text: %v", err)
		}
		for _, want := range []string{"200: 1, 302: 1, 404: 1", "errors      reset: 1, http 404: 1",
			"p99 4ms", "slow        0 over 10s"} {
			if !strings.Contains(sb.String(), want) {
				t.Errorf("got %q, want it to contain %q", sb.String(), want)
			}
		}
	})
}

func TestTimelineBuckets(t *testing.T) {
	var records []Record
	for i := range 30 {
		end := time.Duration(i) * 10 * time.Millisecond // 0 … 290 ms
		records = append(records, Record{Index: i, End: end})
	}
	buckets := timeline(records, 350*time.Millisecond, 100*time.Millisecond)

	if len(buckets) != 3 {
		t.Fatalf("got %d buckets, want 3 (the remainder joins the last)", len(buckets))
	}
	finished := make([]int, len(buckets))
	for i, b := range buckets {
		finished[i] = b.Finished
	}
	if want := []int{10, 10, 10}; !slices.Equal(finished, want) {
		t.Errorf("got finished %v, want %v", finished, want)
	}
	if got, want := buckets[2].Width, 150*time.Millisecond; got != want {
		t.Errorf("got last width %s, want %s", got, want)
	}
	if got, want := buckets[0].Throughput, 100.0; got != want {
		t.Errorf("got throughput %v, want %v", got, want)
	}
	if got, want := buckets[1].P99, 190*time.Millisecond; got != want {
		t.Errorf("got p99 %s, want %s", got, want)
	}
}
