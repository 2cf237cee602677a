package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/logging"
)

// Worker defaults, used for zero WorkerConfig fields.
const (
	DefaultBatchSize    = 10
	DefaultConcurrency  = 2
	DefaultLease        = 5 * time.Minute
	DefaultBaseDelay    = 30 * time.Second
	DefaultMaxDelay     = time.Hour
	DefaultMaxAttempts  = 8
	DefaultPollInterval = 5 * time.Second
)

// maxBatchesPerWake bounds the work between two sleeps, so that a long queue cannot keep
// Run from noticing that its context is done.
const maxBatchesPerWake = 20

// bookkeepingTimeout bounds recording an outcome. The outcome is recorded even when the
// worker is stopping, since a delivery that happened must not be sent again.
const bookkeepingTimeout = 10 * time.Second

// WorkerConfig tunes a Worker. Zero fields take the defaults above.
type WorkerConfig struct {
	BatchSize   int // messages claimed at once
	Concurrency int // sends in flight at once within a batch

	// Lease is how long claimed messages stay reserved for this worker; a batch that
	// is still sending when it runs out is interrupted and its messages retried. Keep it
	// well above BatchSize/Concurrency times the SMTP timeouts.
	Lease time.Duration

	BaseDelay   time.Duration // wait after the first failed attempt, doubled each time
	MaxDelay    time.Duration // longest wait between attempts
	MaxAttempts int           // attempts before a message is given up

	PollInterval time.Duration // sleep between polls when not notified

	// Now is the clock for due times and outbox records; tests move it instead of
	// sleeping through backoff. The poll interval is real time.
	Now func() time.Time
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.BatchSize = cmpOr(c.BatchSize, DefaultBatchSize)
	c.Concurrency = cmpOr(c.Concurrency, DefaultConcurrency)
	c.Lease = cmpOr(c.Lease, DefaultLease)
	c.BaseDelay = cmpOr(c.BaseDelay, DefaultBaseDelay)
	c.MaxDelay = max(cmpOr(c.MaxDelay, DefaultMaxDelay), c.BaseDelay)
	c.MaxAttempts = cmpOr(c.MaxAttempts, DefaultMaxAttempts)
	c.PollInterval = cmpOr(c.PollInterval, DefaultPollInterval)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// cmpOr returns v, or def when v is zero or negative.
func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Worker drains the outbox: it claims due messages, sends them, and records each outcome.
// A temporary failure is retried after an exponential backoff with jitter; a permanent
// one (see IsPermanent), or the last allowed attempt, marks the message failed.
//
// Delivery is at least once. If the process dies after the SMTP server accepted a
// message but before MarkSent, the lease runs out and the message is sent again. The
// copy carries the same Message-ID as the original, so a receiver or an operator can
// recognise and drop it.
type Worker struct {
	outbox keeper.Outbox
	mailer keeper.Mailer
	logger *slog.Logger
	cfg    WorkerConfig
	wake   chan struct{}
}

// NewWorker returns a worker that delivers outbox messages through mailer. A nil logger
// means slog.Default().
func NewWorker(
	outbox keeper.Outbox, mailer keeper.Mailer, logger *slog.Logger, cfg WorkerConfig,
) *Worker {
	if logger == nil {
		logger = slog.Default()
	}
	return &Worker{
		outbox: outbox,
		mailer: mailer,
		logger: logger,
		cfg:    cfg.withDefaults(),
		wake:   make(chan struct{}, 1),
	}
}

// Notify asks a sleeping Run to poll now, for example right after a registration has
// queued a message. It never blocks, and several calls before Run wakes count as one.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers mail until ctx is done, then returns nil. Each round processes at most a
// bounded number of batches, then sleeps for the poll interval or until Notify. Failures
// to reach the outbox are logged and tried again on the next round.
func (w *Worker) Run(ctx context.Context) error {
	timer := time.NewTimer(0) // the first round starts at once
	defer timer.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-w.wake:
		}

		w.drain(ctx)
		timer.Reset(w.cfg.PollInterval)
	}
}

// drain processes batches until the outbox has no more due messages, the round's limit
// is reached, or ctx is done.
func (w *Worker) drain(ctx context.Context) {
	for range maxBatchesPerWake {
		if ctx.Err() != nil {
			return
		}
		claimed, _, err := w.runBatch(ctx)
		if err != nil && ctx.Err() == nil {
			w.logger.ErrorContext(ctx, "mail outbox round failed", "error", err)
		}
		if err != nil || claimed < w.cfg.BatchSize {
			return
		}
	}
}

// RunOnce claims one batch of due messages and delivers it, for tests and for a last
// round at shutdown (give it a fresh context with a deadline, not the one that stopped
// Run). It returns how many messages were sent, and an error when the
// outbox could not be read or an outcome could not be recorded; delivery failures are
// recorded in the outbox, not returned.
func (w *Worker) RunOnce(ctx context.Context) (sent int, err error) {
	_, sent, err = w.runBatch(ctx)
	return sent, err
}

func (w *Worker) runBatch(ctx context.Context) (claimed, sent int, err error) {
	batch, err := w.outbox.Claim(ctx, w.cfg.Now(), w.cfg.BatchSize, w.cfg.Lease)
	if err != nil {
		return 0, 0, fmt.Errorf("claim mail: %w", err)
	}

	// Past the lease another worker may claim these messages: stop sending by then.
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Lease)
	defer cancel()

	var (
		count atomic.Int64
		mu    sync.Mutex
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, w.cfg.Concurrency)
	)
	for _, m := range batch {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			ok, err := w.deliver(ctx, m)
			if ok {
				count.Add(1)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(batch), int(count.Load()), errors.Join(errs...)
}

// deliver sends one claimed message and records the outcome. It reports whether the
// message was sent, and returns an error only when the outcome could not be recorded.
func (w *Worker) deliver(ctx context.Context, m keeper.OutboxMessage) (bool, error) {
	sendErr := w.mailer.Send(ctx, m.Message)

	record, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	now := w.cfg.Now()
	log := w.logger.With("outbox_id", m.OutboxID, "to", logging.MaskEmail(m.Message.To),
		"attempts", m.Attempts)

	switch {
	case sendErr == nil:
		log.InfoContext(ctx, "mail sent")
		return true, wrapRecord(m, w.outbox.MarkSent(record, m.OutboxID, now))

	case ctx.Err() != nil:
		// Stopping, or out of lease: not the message's fault, so try again soon.
		msg := redact(sendErr, m.Message.To)
		log.WarnContext(ctx, "mail delivery interrupted, will retry", "error", msg)
		return false, wrapRecord(m, w.outbox.Retry(record, m.OutboxID, now, msg))

	case IsPermanent(sendErr) || m.Attempts >= w.cfg.MaxAttempts:
		msg := redact(sendErr, m.Message.To)
		log.ErrorContext(ctx, "mail delivery failed, giving up",
			"permanent", IsPermanent(sendErr), "error", msg)
		return false, wrapRecord(m, w.outbox.MarkFailed(record, m.OutboxID, now, msg))

	default:
		next := now.Add(w.backoff(m.Attempts))
		msg := redact(sendErr, m.Message.To)
		log.WarnContext(ctx, "mail delivery failed, will retry",
			"next_attempt", next, "error", msg)
		return false, wrapRecord(m, w.outbox.Retry(record, m.OutboxID, next, msg))
	}
}

func wrapRecord(m keeper.OutboxMessage, err error) error {
	if err != nil {
		return fmt.Errorf("record outcome of outbox message %d: %w", m.OutboxID, err)
	}
	return nil
}

// backoff returns the wait after the given number of attempts: BaseDelay doubled for
// each attempt after the first, capped at MaxDelay, then drawn uniformly from its upper
// half so that messages that failed together do not all come back together.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.BaseDelay
	for i := 1; i < attempts && d < w.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxDelay)

	half := d / 2
	return half + rand.N(d-half+1)
}

// redact returns the error text with the recipient's address masked: SMTP errors repeat
// it, and the text goes to the log.
func redact(err error, to string) string {
	msg := err.Error()
	if to == "" {
		return msg
	}
	masked := logging.MaskEmail(to)
	msg = strings.ReplaceAll(msg, to, masked)
	return strings.ReplaceAll(msg, keeper.NormalizeEmail(to), masked)
}
