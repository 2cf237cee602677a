package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latencies are exact order statistics of the measured requests' latencies, using the
// nearest-rank definition: the p-th percentile is the smallest latency that at least p%
// of the requests did not exceed.
type Latencies struct {
	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// Summary condenses a run. Requests counts every record; Measured leaves out requests
// cut short by stopping the run, which have no meaningful latency. Latencies, Slow and
// Throughput cover the measured requests, failed ones included, so that timeouts weigh on
// the percentiles as they weigh on users.
type Summary struct {
	Mode        Mode
	URL         string
	Method      string
	Rate        int // target rate in rate mode, requests per second
	Concurrency int // workers in concurrency mode
	Requests    int
	Measured    int
	Errors      map[ErrorKind]int // requests that got no whole response, by kind; ErrNone is absent
	HTTPErrors  map[int]int       // whole responses with a status outside 200–399, by status
	Statuses    map[int]int       // responses by HTTP status, failed statuses included
	Throughput  float64           // measured requests per second of wall time
	Latency     Latencies
	Slow        int           // measured requests whose latency exceeded SlowThreshold
	SlowLimit   time.Duration // the slow threshold
	MaxSendLag  time.Duration // largest delay between a request's slot and its send
	Wall        time.Duration // from the start until the last request finished
	Interrupted bool          // the run was stopped before it finished
}

// Failed returns the number of failed requests: those that got no whole response
// (Errors) and those whose response has a status outside 200–399 (HTTPErrors).
func (s Summary) Failed() int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	for _, c := range s.HTTPErrors {
		n += c
	}
	return n
}

// summarize computes the summary of records; it does not reorder them.
func summarize(cfg Config, records []Record, wall time.Duration, interrupted bool) Summary {
	s := Summary{
		Mode: cfg.Mode, URL: cfg.URL, Method: cfg.method(),
		Requests: len(records), Errors: map[ErrorKind]int{}, HTTPErrors: map[int]int{},
		Statuses: map[int]int{}, SlowLimit: cfg.slow(), Wall: wall, Interrupted: interrupted,
	}
	switch cfg.Mode {
	case ModeRate:
		s.Rate = cfg.Rate
	case ModeConcurrency:
		s.Concurrency = cfg.Concurrency
	}

	lat := make([]time.Duration, 0, len(records))
	for _, r := range records {
		s.count(r)
		if r.Err != ErrCanceled {
			lat = append(lat, r.Latency())
		}
	}

	s.Measured = len(lat)
	s.Latency = latencies(lat)
	if wall > 0 {
		s.Throughput = float64(s.Measured) / wall.Seconds()
	}
	return s
}

// count adds one record to the per-kind, per-status, slow and lag tallies.
func (s *Summary) count(r Record) {
	if r.Err != ErrNone {
		s.Errors[r.Err]++
	}
	if r.HTTPError() {
		s.HTTPErrors[r.Status]++
	}
	if r.Status != 0 {
		s.Statuses[r.Status]++
	}
	if r.Err != ErrCanceled && r.Latency() > s.SlowLimit {
		s.Slow++
	}
	s.MaxSendLag = max(s.MaxSendLag, r.Start-r.Scheduled)
}

// latencies sorts lat in place and reads the order statistics off it.
func latencies(lat []time.Duration) Latencies {
	if len(lat) == 0 {
		return Latencies{}
	}
	slices.Sort(lat)

	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Latencies{
		Min:  lat[0],
		Mean: sum / time.Duration(len(lat)),
		P50:  percentile(lat, 5000),
		P90:  percentile(lat, 9000),
		P99:  percentile(lat, 9900),
		P999: percentile(lat, 9990),
		Max:  lat[len(lat)-1],
	}
}

// percentile returns the nearest-rank percentile of sorted values, with p given in
// hundredths of a percent (9990 is p99.9). Integer arithmetic keeps the rank exact where
// a float product such as 0.999*1000 would round the wrong way.
func percentile(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := (p*n + 9999) / 10000
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// lagWarning is the send lag past which the text summary warns that the generator,
// not only the server, was short of time.
const lagWarning = 50 * time.Millisecond

// WriteText prints the summary for people to read.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s", s.Method, s.URL, s.Mode)
	switch s.Mode {
	case ModeRate:
		fmt.Fprintf(&b, ", %d req/s", s.Rate)
	case ModeConcurrency:
		fmt.Fprintf(&b, ", %d workers", s.Concurrency)
	}
	b.WriteString(")\n")
	if s.Interrupted {
		b.WriteString("  interrupted: partial results\n")
	}

	fmt.Fprintf(&b, "  requests    %d in %s, %.1f req/s\n", s.Requests, round(s.Wall), s.Throughput)
	fmt.Fprintf(&b, "  statuses    %s\n", s.statusText())
	fmt.Fprintf(&b, "  errors      %s\n", s.errorText())
	l := s.Latency
	fmt.Fprintf(&b, "  latency     min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		round(l.Min), round(l.P50), round(l.P90), round(l.P99), round(l.P999), round(l.Max))
	fmt.Fprintf(&b, "  slow        %d over %s\n", s.Slow, s.SlowLimit)
	if s.Mode == ModeRate {
		fmt.Fprintf(&b, "  send lag    max %s behind schedule\n", round(s.MaxSendLag))
	}
	if s.Mode == ModeRate && s.MaxSendLag > lagWarning {
		b.WriteString("  warning     the generator fell behind its schedule; latencies include" +
			" that wait, so this machine may be the bottleneck\n")
	}

	_, err := io.WriteString(w, b.String())
	return err
}

// statusText lists status counts in status order, e.g. "200: 990, 503: 10".
func (s Summary) statusText() string {
	if len(s.Statuses) == 0 {
		return "none"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(s.Statuses)) {
		parts = append(parts, fmt.Sprintf("%d: %d", code, s.Statuses[code]))
	}
	return strings.Join(parts, ", ")
}

// errorText lists the failed requests, or "none": transport errors in kind order, then
// failed statuses in status order, e.g. "timeout: 2, http 404: 20, http 503: 1".
func (s Summary) errorText() string {
	if s.Failed() == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, s.Errors[k]))
	}
	for _, code := range slices.Sorted(maps.Keys(s.HTTPErrors)) {
		parts = append(parts, fmt.Sprintf("http %d: %d", code, s.HTTPErrors[code]))
	}
	return strings.Join(parts, ", ")
}

// round shortens a duration for display without hiding sub-millisecond latencies.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// summaryJSON is the JSON shape of a Summary: durations as milliseconds, error kinds and
// statuses keyed by name. It is public output, so its field names stay stable.
//
// failed counts every failed request: errors (no whole response, by transport error
// kind) plus http_errors (a whole response with a status outside 200–399, by status).
// statuses counts every response by status, failed or not.
type summaryJSON struct {
	Mode         string         `json:"mode"`
	URL          string         `json:"url"`
	Method       string         `json:"method"`
	Rate         int            `json:"rate,omitempty"`
	Concurrency  int            `json:"concurrency,omitempty"`
	Requests     int            `json:"requests"`
	Measured     int            `json:"measured"`
	Failed       int            `json:"failed"`      // sum of errors and http_errors
	Errors       map[string]int `json:"errors"`      // no whole response, by error kind
	HTTPErrors   map[string]int `json:"http_errors"` // status outside 200–399, by status
	Statuses     map[string]int `json:"statuses"`    // every response, by status
	Throughput   float64        `json:"throughput_rps"`
	Latency      latencyJSON    `json:"latency_ms"`
	Slow         int            `json:"slow"`
	SlowLimitMS  float64        `json:"slow_threshold_ms"`
	MaxSendLagMS float64        `json:"max_send_lag_ms"`
	WallMS       float64        `json:"wall_ms"`
	Interrupted  bool           `json:"interrupted"`
}

// latencyJSON holds the order statistics in milliseconds.
type latencyJSON struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// MarshalJSON writes the summary in its stable JSON shape.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.toJSON())
}

func (s Summary) toJSON() summaryJSON {
	j := summaryJSON{
		Mode: string(s.Mode), URL: s.URL, Method: s.Method, Rate: s.Rate,
		Concurrency: s.Concurrency, Requests: s.Requests, Measured: s.Measured,
		Failed: s.Failed(), Errors: map[string]int{}, HTTPErrors: map[string]int{},
		Statuses:   map[string]int{},
		Throughput: s.Throughput, Slow: s.Slow, SlowLimitMS: ms(s.SlowLimit),
		MaxSendLagMS: ms(s.MaxSendLag), WallMS: ms(s.Wall), Interrupted: s.Interrupted,
	}
	for k, n := range s.Errors {
		j.Errors[k.String()] = n
	}
	for code, n := range s.HTTPErrors {
		j.HTTPErrors[strconv.Itoa(code)] = n
	}
	for code, n := range s.Statuses {
		j.Statuses[strconv.Itoa(code)] = n
	}

	l := s.Latency
	j.Latency = latencyJSON{
		Min: ms(l.Min), Mean: ms(l.Mean), P50: ms(l.P50), P90: ms(l.P90),
		P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max),
	}
	return j
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
