package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Mode selects how requests are sent.
type Mode string

// The modes of a single run. A sweep is a series of rate runs, see Sweep.
const (
	ModeBurst       Mode = "burst"       // Requests sent at the same instant
	ModeRate        Mode = "rate"        // Rate per second for Duration, open loop
	ModeConcurrency Mode = "concurrency" // Concurrency workers, closed loop
)

// Defaults and limits that keep every run bounded.
const (
	DefaultTimeout = 30 * time.Second // per-request timeout when Config.Timeout is zero
	DefaultSlow    = 10 * time.Second // slow threshold, as in the original script
	// MaxRequests caps the records of one run (about 56 bytes each) so that a long
	// duration-bound run cannot exhaust memory.
	MaxRequests = 5_000_000
)

// Config describes one run.
type Config struct {
	URL     string
	Method  string      // GET when empty
	Header  http.Header // sent with every request; a Host entry sets the Host
	Body    []byte      // sent with every request when non-empty
	Timeout time.Duration
	Slow    time.Duration // requests slower than this are counted; DefaultSlow when zero

	Mode        Mode
	Requests    int           // burst: how many; concurrency: stop after this many (0: no cap)
	Concurrency int           // concurrency: number of workers
	Rate        int           // rate: requests per second
	Duration    time.Duration // rate: how long; concurrency: stop after this long (0: no cap)

	// Progress, when set, receives a progress bar once the run has lasted a second. The
	// bar writes carriage-return frames, so pass a terminal only.
	Progress io.Writer
}

func (c Config) method() string {
	if c.Method == "" {
		return http.MethodGet
	}
	return c.Method
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) slow() time.Duration {
	if c.Slow <= 0 {
		return DefaultSlow
	}
	return c.Slow
}

// rateTotal returns how many requests a rate run schedules: one every 1/Rate seconds,
// the first one interval after the start, the last one no later than Duration.
func (c Config) rateTotal() int {
	return int(c.Duration / rateInterval(c.Rate))
}

// rateInterval is the gap between two scheduled sends, computed as vegeta's constant
// pacer computes it so that the recorded schedule is the one the pacer follows.
func rateInterval(rate int) time.Duration {
	return time.Second / time.Duration(rate)
}

// Validate reports the first problem with the configuration, or nil.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an absolute http or https URL", c.URL)
	}

	switch c.Mode {
	case ModeBurst:
		return checkRange("request count", c.Requests, 1, MaxRequests)
	case ModeRate:
		if err := checkRange("rate", c.Rate, 1, int(time.Second)); err != nil {
			return err
		}
		if c.Duration <= 0 {
			return fmt.Errorf("duration must be positive, got %s", c.Duration)
		}
		if n := c.rateTotal(); n < 1 || n > MaxRequests {
			return fmt.Errorf("rate %d/s for %s schedules %d requests, want 1 to %d",
				c.Rate, c.Duration, n, MaxRequests)
		}
		return nil
	case ModeConcurrency:
		return c.validateConcurrency()
	default:
		return fmt.Errorf("mode %q: want burst, rate or concurrency", c.Mode)
	}
}

func (c Config) validateConcurrency() error {
	if err := checkRange("concurrency", c.Concurrency, 1, MaxRequests); err != nil {
		return err
	}
	if c.Requests < 0 || c.Duration < 0 {
		return errors.New("request count and duration must not be negative")
	}
	if c.Requests == 0 && c.Duration == 0 {
		return errors.New("concurrency mode needs a request count, a duration or both")
	}
	return checkRange("request count", c.Requests, 0, MaxRequests)
}

// checkRange reports a value outside [lo, hi] in words that name it.
func checkRange(name string, v, lo, hi int) error {
	switch {
	case v < lo && lo == 1:
		return fmt.Errorf("%s must be positive, got %d", name, v)
	case v < lo || v > hi:
		return fmt.Errorf("%s must be between %d and %d, got %d", name, lo, hi, v)
	}
	return nil
}

// Result holds every record of a run, ordered by Index.
type Result struct {
	Config      Config
	Started     time.Time     // wall-clock time of the start, offsets count from it
	Wall        time.Duration // from the start until the last request finished
	Records     []Record
	Interrupted bool // ctx was cancelled before the run finished
}

// Summary condenses the records.
func (r *Result) Summary() Summary {
	return summarize(r.Config, r.Records, r.Wall, r.Interrupted)
}
