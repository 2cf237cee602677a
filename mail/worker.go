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
	DefaultConcurrency = 2

	// DefaultLease covers one send with the SMTP sender's default timeouts. go-mail gives
	// a session the dial timeout (10 s), then a fresh I/O timeout (30 s) for the greeting,
	// for EHLO to AUTH, and for the message itself: 100 s at worst until the server has
	// accepted. The worker cuts a send off there (Lease less recordMargin) and keeps the
	// rest to record the outcome; what follows the acceptance, RSET and QUIT, can be cut
	// without loss. A crash mid-send therefore delays a message by at most two minutes.
	DefaultLease = 2 * time.Minute

	DefaultBaseDelay    = 30 * time.Second
	DefaultMaxDelay     = time.Hour
	DefaultMaxAttempts  = 8
	DefaultPollInterval = 5 * time.Second
)

// maxPerRound bounds the messages one RunOnce claims, so that a long queue cannot keep it
// going. Run needs no such bound: it checks its context before every claim.
const maxPerRound = 100

// bookkeepingTimeout bounds recording an outcome. The outcome is recorded even when the
// worker is stopping, since a delivery that happened must not be sent again.
const bookkeepingTimeout = 10 * time.Second

// recordMargin is the end of a lease kept for recording the outcome of a send that had
// to be cut off.
const recordMargin = 2 * bookkeepingTimeout

// WorkerConfig tunes a Worker. Zero fields take the defaults above.
type WorkerConfig struct {
	// Concurrency is how many messages are sent at once. A slot that comes free claims
	// the next due message at once, so a slow server holds up only the message in it.
	Concurrency int

	// Lease is how long a claimed message stays reserved for this worker, and so how
	// long a crash mid-send delays it. Each message is claimed when a slot is free for
	// it, and its send is cut off at Lease less 20 s (at least half the Lease), so the
	// lease only has to cover one send; see DefaultLease.
	Lease time.Duration

	BaseDelay   time.Duration // wait after the first failed attempt, doubled each time
	MaxDelay    time.Duration // longest wait between attempts
	MaxAttempts int           // attempts before a message is given up

	// PollInterval is the longest sleep when not notified: Run wakes earlier when a
	// pending message falls due sooner.
	PollInterval time.Duration

	// Now is the clock for due times and outbox records; tests move it instead of
	// sleeping through backoff. The poll interval and send timeouts are real time.
	Now func() time.Time
}

func (c WorkerConfig) withDefaults() WorkerConfig {
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

// sendTimeout bounds one send, so that its outcome is recorded before its lease runs out
// and no other worker sends the message meanwhile.
func (c WorkerConfig) sendTimeout() time.Duration {
	return max(c.Lease-recordMargin, c.Lease/2)
}

// cmpOr returns v, or def when v is zero or negative.
func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Worker drains the outbox: each of its Concurrency slots claims a due message as soon
// as it is free, sends it, and records the outcome. A temporary failure is retried after
// an exponential backoff with jitter; a permanent one (see IsPermanent), or the last
// allowed attempt, marks the message failed.
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

// Notify asks Run to claim now, for example right after a registration has queued a
// message. It never blocks, and several calls before Run wakes count as one; when every
// slot is busy, the next one to come free claims.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers mail until ctx is done, then waits for the sends in flight, which ctx
// interrupts, to record their outcome, and returns nil. A slot that comes free claims
// the next due message at once. With nothing due, Run sleeps until Notify, until the next
// pending message falls due, or for the poll interval, whichever comes first. Failures
// to reach the outbox are logged and tried again when Run next wakes.
func (w *Worker) Run(ctx context.Context) error {
	s := w.newSlots(func(err error) {
		w.logger.ErrorContext(ctx, "mail outbox error", "error", err)
	})
	defer s.wg.Wait()

	timer := time.NewTimer(0) // the first claim happens at once
	defer timer.Stop()
	for {
		claim := true
		select {
		case <-ctx.Done():
			return nil
		case <-s.freed:
			s.free++
			claim = s.backlog // else nothing was waiting for the slot
		case <-timer.C:
		case <-w.wake:
		}

		// select picks at random among ready cases: never claim once ctx is done.
		if ctx.Err() != nil {
			return nil
		}
		timer.Reset(w.step(ctx, s, claim))
	}
}

// step claims a due message for every free slot when claim is set, and returns how long
// Run may sleep before it claims again.
func (w *Worker) step(ctx context.Context, s *slots, claim bool) time.Duration {
	if claim {
		if _, err := w.fill(ctx, s, s.free); err != nil {
			if ctx.Err() == nil {
				s.report(err)
			}
			return w.cfg.PollInterval
		}
	}
	if s.free == 0 {
		return w.cfg.PollInterval // the next slot to come free wakes Run
	}
	return w.untilDue(ctx, s)
}

// untilDue returns how long Run may sleep: until the next pending message falls due
// (a retry, or a dead worker's lease running out), and at most the poll interval, which
// still picks up mail queued without Notify.
func (w *Worker) untilDue(ctx context.Context, s *slots) time.Duration {
	next, err := w.outbox.NextDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.report(fmt.Errorf("read next due mail: %w", err))
		}
		return w.cfg.PollInterval
	}
	if next.IsZero() {
		return w.cfg.PollInterval
	}
	return min(max(next.Sub(w.cfg.Now()), 0), w.cfg.PollInterval)
}

// RunOnce delivers the messages due now, Concurrency at a time, and returns once their
// outcomes are recorded: for tests, and for a last round at shutdown (give it a fresh
// context with a deadline, not the one that stopped Run). It claims at most 100
// messages. It returns how many were sent, and an error when the outbox could not be
// read or an outcome could not be recorded; delivery failures are recorded in the
// outbox, not returned.
func (w *Worker) RunOnce(ctx context.Context) (sent int, err error) {
	var mu sync.Mutex
	var errs []error
	s := w.newSlots(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	})

	for claimed := 0; claimed < maxPerRound && ctx.Err() == nil; {
		if s.free == 0 {
			<-s.freed // sends end by their timeout at the latest
			s.free++
		}
		n, err := w.fill(ctx, s, min(s.free, maxPerRound-claimed))
		if err != nil {
			s.report(err)
			break
		}
		claimed += n
		if !s.backlog {
			break // nothing more is due
		}
	}

	s.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return int(s.sent.Load()), errors.Join(errs...)
}

// slots runs sends in the background, at most Concurrency at once. free and backlog
// belong to the goroutine that claims; a finished send hands its slot back on freed.
type slots struct {
	free    int           // slots without a send
	backlog bool          // the last claim filled every slot asked for: more may be due
	freed   chan struct{} // one value per finished send, never more than Concurrency
	sent    atomic.Int64
	wg      sync.WaitGroup
	report  func(error) // takes errors: claims, and outcomes that could not be recorded
}

func (w *Worker) newSlots(report func(error)) *slots {
	return &slots{
		free:   w.cfg.Concurrency,
		freed:  make(chan struct{}, w.cfg.Concurrency),
		report: report,
	}
}

// fill claims up to n due messages, n at most the free slots, and starts sending each in
// a slot of its own. It sets s.backlog when it got all n, or n is zero, since more may be
// waiting for a slot then.
func (w *Worker) fill(ctx context.Context, s *slots, n int) (int, error) {
	if n == 0 {
		s.backlog = true
		return 0, nil
	}
	claimed, err := w.outbox.Claim(ctx, w.cfg.Now(), n, w.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("claim mail: %w", err)
	}

	s.backlog = len(claimed) == n
	for _, m := range claimed {
		s.free--
		s.wg.Go(func() {
			defer func() { s.freed <- struct{}{} }()
			ok, err := w.deliver(ctx, m)
			if ok {
				s.sent.Add(1)
			}
			if err != nil {
				s.report(err)
			}
		})
	}
	return len(claimed), nil
}

// deliver sends one claimed message and records the outcome. It reports whether the
// message was sent, and returns an error only when the outcome could not be recorded.
func (w *Worker) deliver(ctx context.Context, m keeper.OutboxMessage) (bool, error) {
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.sendTimeout())
	sendErr := w.mailer.Send(sendCtx, m.Message)
	cancel()

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
		// Stopping: not the message's fault, so it is due again at once.
		msg := redact(sendErr, m.Message.To)
		log.WarnContext(ctx, "mail delivery interrupted, will retry", "error", msg)
		return false, wrapRecord(m, w.outbox.Retry(record, m.OutboxID, now, msg))

	case IsPermanent(sendErr) || m.Attempts >= w.cfg.MaxAttempts:
		msg := redact(sendErr, m.Message.To)
		log.ErrorContext(ctx, "mail delivery failed, giving up",
			"permanent", IsPermanent(sendErr), "error", msg)
		return false, wrapRecord(m, w.outbox.MarkFailed(record, m.OutboxID, now, msg))

	default:
		// A send cut off by its timeout lands here too: a stalled server backs off and
		// uses up attempts like any other temporary failure.
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
