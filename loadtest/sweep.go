package loadtest

import (
	"context"
	"fmt"
	"time"
)

// MaxSweepSteps bounds the runs of one sweep.
const MaxSweepSteps = 100

// SweepConfig describes a series of rate runs at Start, Start+Step, … up to Max
// requests per second, each lasting Run.Duration. The sweep stops at the first rate
// that fails: its p99 latency is over P99Limit, or more than MaxErrorRate of its
// requests failed, by a transport error or a status outside 200–399 (a server that
// refuses connections or answers 503 is fast, not healthy).
type SweepConfig struct {
	Run              Config // the URL, request and Duration; Mode and Rate are set per step
	Start, Step, Max int
	P99Limit         time.Duration
	MaxErrorRate     float64 // fraction in [0, 1]

	// OnStep, when set, is called after each run with its result, for example to save
	// its files or print a line; an error from it ends the sweep.
	OnStep func(SweepStep, *Result) error
}

// SweepStep is the outcome of one rate of a sweep. A step whose run was interrupted
// has Summary.Interrupted set and is neither passed nor failed.
type SweepStep struct {
	Rate    int
	Summary Summary
	Passed  bool
}

// SweepResult is the outcome of a whole sweep. Broke is the first rate that failed and
// Sustained the last one that passed before it; either is zero when there is none.
type SweepResult struct {
	Steps       []SweepStep
	Sustained   int
	Broke       int
	P99Limit    time.Duration
	Interrupted bool
}

// Validate reports the first problem with the sweep, or nil.
func (c SweepConfig) Validate() error {
	switch {
	case c.Start <= 0 || c.Step <= 0 || c.Max <= 0:
		return fmt.Errorf("sweep %d:%d:%d: start, step and max must be positive",
			c.Start, c.Step, c.Max)
	case c.Max < c.Start:
		return fmt.Errorf("sweep %d:%d:%d: max is below start", c.Start, c.Step, c.Max)
	case c.steps() > MaxSweepSteps:
		return fmt.Errorf("sweep %d:%d:%d has %d steps, at most %d allowed",
			c.Start, c.Step, c.Max, c.steps(), MaxSweepSteps)
	case c.P99Limit <= 0:
		return fmt.Errorf("p99 limit must be positive, got %s", c.P99Limit)
	case c.MaxErrorRate < 0 || c.MaxErrorRate > 1:
		return fmt.Errorf("error rate limit must be between 0 and 1, got %g", c.MaxErrorRate)
	}
	return c.step(c.Max).Validate()
}

func (c SweepConfig) steps() int { return (c.Max-c.Start)/c.Step + 1 }

// step returns the run configuration for one rate.
func (c SweepConfig) step(rate int) Config {
	cfg := c.Run
	cfg.Mode, cfg.Rate, cfg.Requests, cfg.Concurrency = ModeRate, rate, 0, 0
	return cfg
}

// Sweep runs the steps in order until one fails, the rates run out or ctx is cancelled.
// It keeps only each step's summary; OnStep sees the full result.
func Sweep(ctx context.Context, c SweepConfig) (*SweepResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}

	out := &SweepResult{P99Limit: c.P99Limit}
	for rate := c.Start; rate <= c.Max; rate += c.Step {
		res, err := Run(ctx, c.step(rate))
		if err != nil {
			return nil, fmt.Errorf("sweep at %d req/s: %w", rate, err)
		}

		// A step cut short is kept and reported but not judged: its p99 covers only
		// part of the run.
		step := SweepStep{Rate: rate, Summary: res.Summary()}
		step.Passed = !res.Interrupted && c.passes(step.Summary)
		out.Steps = append(out.Steps, step)
		if err := c.report(step, res); err != nil {
			return out, err
		}

		switch {
		case res.Interrupted:
			out.Interrupted = true
			return out, nil
		case !step.Passed:
			out.Broke = rate
			return out, nil
		}
		out.Sustained = rate
	}
	return out, nil
}

// report hands a step to OnStep, if any.
func (c SweepConfig) report(step SweepStep, res *Result) error {
	if c.OnStep == nil {
		return nil
	}
	if err := c.OnStep(step, res); err != nil {
		return fmt.Errorf("sweep at %d req/s: %w", step.Rate, err)
	}
	return nil
}

// passes reports whether a step stayed within the latency and error limits.
func (c SweepConfig) passes(s Summary) bool {
	if s.Measured == 0 {
		return false
	}
	errRate := float64(s.Failed()) / float64(s.Measured)
	return s.Latency.P99 <= c.P99Limit && errRate <= c.MaxErrorRate
}
