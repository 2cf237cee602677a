package loadtest

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressDelay is how long a run must last before a bar appears: shorter runs would
// only flash one on the screen.
const progressDelay = time.Second

// showProgress draws a progress bar on cfg.Progress from the second second of the run on,
// and returns the function that removes it. The bar tracks finished requests when the
// run has a known count, and elapsed time otherwise.
func (r *runner) showProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}

	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		r.drawProgress(quit)
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// drawProgress keeps its own clock rather than reading the runner's start time, which
// the run goroutine sets after this one has started.
func (r *runner) drawProgress(quit <-chan struct{}) {
	began := time.Now()
	delay := time.NewTimer(progressDelay)
	defer delay.Stop()
	select {
	case <-quit:
		return
	case <-delay.C:
	}

	total, timed := r.progressTotal()
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(r.cfg.Progress),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
	update := func() {
		done := r.done.Load()
		if timed {
			_ = bar.Set64(min(time.Since(began).Milliseconds(), total))
		} else {
			_ = bar.Set64(done)
		}
		bar.Describe(fmt.Sprintf("%d requests", done))
	}

	update()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			update()
			_ = bar.Finish()
			return
		case <-tick.C:
			update()
		}
	}
}

// progressTotal returns the bar's full length, and whether it counts milliseconds
// rather than requests.
func (r *runner) progressTotal() (total int64, timed bool) {
	switch {
	case r.cfg.Mode == ModeBurst:
		return int64(r.cfg.Requests), false
	case r.cfg.Mode == ModeRate:
		return int64(r.cfg.rateTotal()), false
	case r.cfg.Requests > 0:
		return int64(r.cfg.Requests), false
	default:
		return r.cfg.Duration.Milliseconds(), true
	}
}
