package loadtest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Run sends the requests cfg describes and returns their records. It returns an error
// only when cfg is invalid; failed requests are records, not errors. Cancelling ctx
// stops the run: requests in flight are abandoned and recorded as ErrCanceled, and the
// result holds everything measured until then.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()

	r := &runner{cfg: cfg, client: c, ctx: ctx}
	stopProgress := r.showProgress()
	records := r.run()
	stopProgress()

	slices.SortFunc(records, func(a, b Record) int { return a.Index - b.Index })
	return &Result{
		Config: cfg, Started: r.start, Wall: time.Since(r.start),
		Records: records, Interrupted: ctx.Err() != nil,
	}, nil
}

// runner carries one run's state. start is set once, before any request is sent.
type runner struct {
	cfg    Config
	client *client
	ctx    context.Context
	start  time.Time
	done   atomic.Int64 // finished requests, for the progress bar
}

func (r *runner) run() []Record {
	switch r.cfg.Mode {
	case ModeBurst:
		return r.burst()
	case ModeRate:
		return r.openLoop()
	default:
		return r.closedLoop()
	}
}

// fire sends request i, due at sched, through s and records what happened.
func (r *runner) fire(s *sender, i int, sched time.Duration) Record {
	rec := Record{Index: i, Scheduled: sched, Start: time.Since(r.start)}

	status, n, err := s.send()

	rec.End = time.Since(r.start)
	rec.Status, rec.Bytes = status, n
	// The timeout is a deadline set after Start, so a request that failed past it timed
	// out, whatever error fasthttp wrapped the deadline in.
	timedOut := err != nil && rec.End-rec.Start >= r.client.timeout
	rec.Err = classify(err, r.ctx.Err() != nil, timedOut)
	r.done.Add(1)
	return rec
}

// fireOnce sends request i with a sender of its own, for modes where every request
// has its own goroutine.
func (r *runner) fireOnce(i int, sched time.Duration) Record {
	s := newSender(r.client)
	defer s.close()
	return r.fire(s, i, sched)
}

// burst starts one goroutine per request, each parked on the same channel, and then
// releases them all at once: every request is due at offset zero, like the original
// script's 1000 simultaneous GETs.
func (r *runner) burst() []Record {
	records := make([]Record, r.cfg.Requests)
	release := make(chan struct{})

	var wg sync.WaitGroup
	for i := range records {
		wg.Go(func() {
			<-release
			records[i] = r.fireOnce(i, 0)
		})
	}

	r.start = time.Now()
	close(release)
	wg.Wait()
	return records
}

// openLoop sends at a constant rate paced by vegeta's ConstantPacer, each request in its
// own goroutine so that the timetable never waits for a response. Request i is due at
// (i+1)/Rate seconds, the slot the pacer aims for; if the generator falls behind, the
// pacer sends at once and the lag counts in the latency.
func (r *runner) openLoop() []Record {
	pacer := vegeta.ConstantPacer{Freq: r.cfg.Rate, Per: time.Second}
	interval := rateInterval(r.cfg.Rate)
	records := make([]Record, r.cfg.rateTotal())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	var wg sync.WaitGroup
	r.start = time.Now()
	sent := 0
	for i := range records {
		wait, stop := pacer.Pace(time.Since(r.start), uint64(i))
		if stop || !r.sleep(timer, wait) {
			break
		}
		sched := time.Duration(i+1) * interval
		wg.Go(func() { records[i] = r.fireOnce(i, sched) })
		sent++
	}
	wg.Wait()
	return records[:sent]
}

// sleep waits for d unless the run is stopped first, which it reports as false.
func (r *runner) sleep(timer *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// closedLoop runs Concurrency workers that each send the next request as soon as the
// previous one finishes, until the request count or the duration is reached.
func (r *runner) closedLoop() []Record {
	limit := int64(r.cfg.Requests)
	if limit == 0 {
		limit = MaxRequests
	}
	perWorker := make([][]Record, r.cfg.Concurrency)

	var next atomic.Int64
	var wg sync.WaitGroup
	r.start = time.Now()
	for w := range perWorker {
		wg.Go(func() { perWorker[w] = r.work(&next, limit) })
	}
	wg.Wait()
	return slices.Concat(perWorker...)
}

// work is one closed-loop worker. It checks the clock before taking an index, so the
// indexes handed out have no gaps.
func (r *runner) work(next *atomic.Int64, limit int64) []Record {
	s := newSender(r.client)
	defer s.close()

	var records []Record
	for r.ctx.Err() == nil {
		now := time.Since(r.start)
		if r.cfg.Duration > 0 && now >= r.cfg.Duration {
			break
		}
		i := next.Add(1) - 1
		if i >= limit {
			break
		}
		records = append(records, r.fire(s, int(i), now))
	}
	return records
}
