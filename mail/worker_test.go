package mail_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/mail/mailtest"
	"github.com/keeperhq/keeper/sqlite"
)

const (
	testBase = time.Minute
	testMax  = 10 * time.Minute
)

// clock is a settable clock for the worker.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// outboxEnv is a real SQLite file with its account store and outbox.
type outboxEnv struct {
	path   string
	db     *sqlite.DB
	store  *sqlite.AccountStore
	outbox *sqlite.Outbox
}

func openOutbox(t *testing.T, path string) *outboxEnv {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &outboxEnv{path: path, db: db,
		store: sqlite.NewAccountStore(db), outbox: sqlite.NewOutbox(db)}
}

func newOutbox(t *testing.T) *outboxEnv {
	t.Helper()
	return openOutbox(t, filepath.Join(t.TempDir(), "keeper.db"))
}

// enqueue queues m due at the given time the way registration does, and returns its
// outbox id.
func (e *outboxEnv) enqueue(t *testing.T, m keeper.Message, at time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	err := e.store.Tx(ctx, func(tx keeper.AccountTx) error { return tx.Enqueue(ctx, m, at) })
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}

	all, err := e.outbox.List(ctx)
	if err != nil {
		t.Fatalf("list outbox: %v", err)
	}
	for _, om := range all {
		if om.Message.ID == m.ID {
			return om.OutboxID
		}
	}
	t.Fatalf("enqueued message %s not in the outbox", m.ID)
	return 0
}

func (e *outboxEnv) get(t *testing.T, id int64) keeper.OutboxMessage {
	t.Helper()
	om, err := e.outbox.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get outbox message %d: %v", id, err)
	}
	return om
}

// newWorker returns a worker on env's outbox sending through srv, with the test clock.
func newWorker(
	t *testing.T, env *outboxEnv, srv *mailtest.Server, c *clock, logs *logBuffer,
	cfg mail.WorkerConfig,
) *mail.Worker {
	t.Helper()
	return newWorkerWith(t, env, newSender(t, srv.URL("none")), c, logs, cfg)
}

// newWorkerWith returns a worker on env's outbox sending through mailer, with the test
// clock and, unless cfg sets them, the test's backoff delays.
func newWorkerWith(
	t *testing.T, env *outboxEnv, mailer keeper.Mailer, c *clock, logs *logBuffer,
	cfg mail.WorkerConfig,
) *mail.Worker {
	t.Helper()
	cfg.BaseDelay = cmp.Or(cfg.BaseDelay, testBase)
	cfg.MaxDelay = cmp.Or(cfg.MaxDelay, testMax)
	if c != nil {
		cfg.Now = c.Now
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return mail.NewWorker(env.outbox, mailer, logger, cfg)
}

// runWorker runs w in the background until the test ends, and then checks that Run
// returned nil.
func runWorker(t *testing.T, w *mail.Worker) {
	t.Helper()
	t.Cleanup(startRun(t, w))
}

// startRun runs w in the background and returns stop, which cancels Run and checks that
// it returns nil, waiting at most 20 s.
func startRun(t *testing.T, w *mail.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return within 20s of its context being cancelled")
		}
	}
}

func runOnce(t *testing.T, w *mail.Worker, want int) {
	t.Helper()
	sent, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if sent != want {
		t.Fatalf("RunOnce: got %d sent, want %d", sent, want)
	}
}

// checkSent checks that the message is recorded as sent with its body dropped, and that
// the server holds exactly one copy of it.
func checkSent(t *testing.T, env *outboxEnv, srv *mailtest.Server, id int64, m keeper.Message) {
	t.Helper()
	om := env.get(t, id)
	if om.Status != keeper.OutboxSent || om.SentAt.IsZero() {
		t.Errorf("got status %q sent at %v, want sent with a time", om.Status, om.SentAt)
	}
	if om.Message.Text != "" || om.Message.HTML != "" {
		t.Errorf("got body %q/%q kept after sending, want it dropped",
			om.Message.Text, om.Message.HTML)
	}

	copies := 0
	for _, r := range srv.Messages() {
		if strings.Contains(string(r.Data), "Message-ID: <"+m.ID+"@example.com>") {
			copies++
			checkDelivered(t, r, m)
		}
	}
	if copies != 1 {
		t.Errorf("got %d copies of message %s at the server, want 1", copies, m.ID)
	}
}

func TestWorkerRetriesUntilServerIsUp(t *testing.T) {
	env, srv, c, logs := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock(),
		&logBuffer{}
	w := newWorker(t, env, srv, c, logs, mail.WorkerConfig{})
	msg := activation(t, "ada@example.org")
	id := env.enqueue(t, msg, c.Now())
	srv.Stop()

	runOnce(t, w, 0)
	om := env.get(t, id)
	if om.Status != keeper.OutboxPending || om.Attempts != 1 || om.LastError == "" {
		t.Fatalf("got %q after %d attempts with error %q, want pending after 1 with an error",
			om.Status, om.Attempts, om.LastError)
	}
	checkBackoff(t, om.NextAttemptAt.Sub(c.Now()), testBase/2, testBase)
	checkLog(t, logs.String(), "WARN", "will retry", "a***@example.org", "ada@example.org")

	srv.Restart()
	runOnce(t, w, 0) // not due yet: backoff holds even though the server is back
	c.Advance(testBase)
	runOnce(t, w, 1)
	checkSent(t, env, srv, id, msg)
	if got := env.get(t, id).SentAt; !got.Equal(c.Now()) {
		t.Errorf("got sent at %v, want the worker clock's %v", got, c.Now())
	}

	c.Advance(testMax)
	runOnce(t, w, 0) // nothing left: no second copy
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("got %d messages at the server, want 1", n)
	}
}

func checkBackoff(t *testing.T, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("got next attempt in %v, want between %v and %v", got, lo, hi)
	}
}

// checkLog checks that some line has level and all of wants, and that no line has secret.
func checkLog(t *testing.T, logs, level, want, masked, secret string) {
	t.Helper()
	found := false
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, want) &&
			strings.Contains(line, `"to":"`+masked+`"`) && strings.Contains(line, `"outbox_id":`) &&
			strings.Contains(line, `"attempts":`) && strings.Contains(line, `"error":`) {
			found = true
		}
	}
	if !found {
		t.Errorf("got no %s line with %q, outbox_id, to %s, attempts and error in:\n%s",
			level, want, masked, logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("got logs containing %q:\n%s", secret, logs)
	}
}

func TestWorkerBackoffGrowsAndIsCapped(t *testing.T) {
	env, srv, c := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock()
	srv.SetReplies(mailtest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "Try later"), nil)
	w := newWorker(t, env, srv, c, &logBuffer{}, mail.WorkerConfig{MaxAttempts: 20})
	id := env.enqueue(t, activation(t, "bea@example.org"), c.Now())

	// Attempt n waits base·2^(n-1), capped at max, drawn from the upper half.
	for attempt := 1; attempt <= 7; attempt++ {
		runOnce(t, w, 0)
		om := env.get(t, id)
		if om.Attempts != attempt {
			t.Fatalf("got %d attempts, want %d", om.Attempts, attempt)
		}
		want := min(testBase<<(attempt-1), testMax)
		checkBackoff(t, om.NextAttemptAt.Sub(c.Now()), want/2, want)
		c.Advance(om.NextAttemptAt.Sub(c.Now()))
	}
}

func TestWorkerDeliversAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keeper.db")
	srv, c := mailtest.Start(t, mailtest.Config{}), newClock()
	msg := activation(t, "cy@example.org")

	// A first process queues the message, claims it and dies before sending.
	first := openOutbox(t, path)
	id := first.enqueue(t, msg, c.Now())
	claimed, err := first.outbox.Claim(context.Background(), c.Now(), 10, mail.DefaultLease)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: got %d messages (err %v), want 1", len(claimed), err)
	}
	if err := first.db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	// A new process reopens the file with a new worker.
	env := openOutbox(t, path)
	w := newWorker(t, env, srv, c, &logBuffer{}, mail.WorkerConfig{})
	runOnce(t, w, 0) // still leased to the dead worker
	c.Advance(mail.DefaultLease)
	runOnce(t, w, 1)

	checkSent(t, env, srv, id, msg)
	if got := env.get(t, id).Attempts; got != 2 {
		t.Errorf("got %d attempts, want 2 (the lost one and the delivery)", got)
	}
}

func TestWorkerGivesUp(t *testing.T) {
	tests := []struct {
		name         string
		reply        error
		maxAttempts  int
		wantAttempts int
		wantError    string
		wantLog      string
	}{
		{name: "permanent failure at once",
			reply:       mailtest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user"),
			maxAttempts: 5, wantAttempts: 1, wantError: "550", wantLog: `"permanent":true`},
		{name: "temporary failures up to the limit",
			reply:       mailtest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "Try later"),
			maxAttempts: 3, wantAttempts: 3, wantError: "451", wantLog: `"permanent":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, srv, c, logs := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock(),
				&logBuffer{}
			srv.SetReplies(tt.reply, nil)
			cfg := mail.WorkerConfig{MaxAttempts: tt.maxAttempts}
			w := newWorker(t, env, srv, c, logs, cfg)
			id := env.enqueue(t, activation(t, "dee@example.org"), c.Now())

			for range tt.maxAttempts + 2 {
				runOnce(t, w, 0)
				c.Advance(testMax)
			}

			om := env.get(t, id)
			if om.Status != keeper.OutboxFailed || om.Attempts != tt.wantAttempts {
				t.Errorf("got %q after %d attempts, want failed after %d",
					om.Status, om.Attempts, tt.wantAttempts)
			}
			if !strings.Contains(om.LastError, tt.wantError) {
				t.Errorf("got last error %q, want it to contain %s", om.LastError, tt.wantError)
			}
			if om.Message.Text != "" || om.Message.HTML != "" {
				t.Error("got the body kept after giving up, want it dropped")
			}
			checkLog(t, logs.String(), "ERROR", tt.wantLog, "d***@example.org", "dee@example.org")
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("got %d messages at the server, want 0", n)
			}
		})
	}
}

// TestWorkerRunOnceDeliversAllDue checks that one RunOnce delivers every due message,
// more than there are slots, each exactly once.
func TestWorkerRunOnceDeliversAllDue(t *testing.T) {
	env, srv, c := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock()
	w := newWorker(t, env, srv, c, &logBuffer{}, mail.WorkerConfig{Concurrency: 2})
	ids := map[int64]keeper.Message{}
	for range 5 {
		m := activation(t, "eve@example.org")
		ids[env.enqueue(t, m, c.Now())] = m
	}

	runOnce(t, w, 5)
	runOnce(t, w, 0)
	for id, m := range ids {
		checkSent(t, env, srv, id, m)
	}
}

func TestWorkerNotifyWakesRun(t *testing.T) {
	env, srv := newOutbox(t), mailtest.Start(t, mailtest.Config{})
	// An hour between polls: only Notify can make the second message go out in time.
	idle := newWorker(t, env, srv, nil, &logBuffer{}, mail.WorkerConfig{})
	for range 100 {
		idle.Notify() // never blocks, even with nobody listening
	}
	w := newWorker(t, env, srv, nil, &logBuffer{}, mail.WorkerConfig{PollInterval: time.Hour})

	first := activation(t, "fay@example.org")
	firstID := env.enqueue(t, first, time.Now())
	stop := startRun(t, w)
	defer stop()

	// Once the first message is recorded sent, Run's first round is over and it sleeps.
	waitStatus(t, env, firstID, keeper.OutboxSent)
	second := activation(t, "gus@example.org")
	secondID := env.enqueue(t, second, time.Now())
	w.Notify()
	waitStatus(t, env, secondID, keeper.OutboxSent)
	checkSent(t, env, srv, secondID, second)
}

// waitStatus polls the outbox until the message has the status, for at most 20 s.
func waitStatus(t *testing.T, env *outboxEnv, id int64, want keeper.OutboxStatus) {
	t.Helper()
	for range 2000 {
		if env.get(t, id).Status == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("message %d: got status %q after 20s, want %q", id, env.get(t, id).Status, want)
}

func TestWorkerRunStopsWithContext(t *testing.T) {
	env, srv := newOutbox(t), mailtest.Start(t, mailtest.Config{})
	w := newWorker(t, env, srv, nil, &logBuffer{}, mail.WorkerConfig{PollInterval: time.Hour})
	stop := startRun(t, w)
	stop()
}

// stallMailer passes sends on to next, except that a send to stall waits until release
// is closed or its context ends, the way a server that takes its time to reply does.
type stallMailer struct {
	next    keeper.Mailer
	stall   string
	started chan struct{} // closed when the stalled send begins
	release chan struct{}
	once    sync.Once
}

func newStallMailer(next keeper.Mailer, stall string) *stallMailer {
	return &stallMailer{next: next, stall: stall,
		started: make(chan struct{}), release: make(chan struct{})}
}

func (m *stallMailer) Send(ctx context.Context, msg keeper.Message) error {
	if msg.To == m.stall {
		m.once.Do(func() { close(m.started) })
		select {
		case <-m.release:
		case <-ctx.Done():
			return fmt.Errorf("stalled send: %w", ctx.Err())
		}
	}
	return m.next.Send(ctx, msg)
}

// waitStarted waits for the stalled send to begin, for at most 20 s.
func (m *stallMailer) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-m.started:
	case <-time.After(20 * time.Second):
		t.Fatalf("got no send to %s within 20s, want one", m.stall)
	}
}

// TestWorkerSlowSendHoldsUpOnlyItsMessage checks that while one message is stuck in a
// slow exchange, the free slot claims and delivers the messages queued behind it, and
// that the stuck one is leased for one send only.
func TestWorkerSlowSendHoldsUpOnlyItsMessage(t *testing.T) {
	env, srv, c := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock()
	stall := newStallMailer(newSender(t, srv.URL("none")), "slow@example.org")
	w := newWorkerWith(t, env, stall, c, &logBuffer{},
		mail.WorkerConfig{Concurrency: 2, PollInterval: time.Hour})
	slow := activation(t, "slow@example.org")
	slowID := env.enqueue(t, slow, c.Now())
	runWorker(t, w)
	stall.waitStarted(t)

	queued := map[int64]keeper.Message{}
	for i := range 5 {
		m := activation(t, fmt.Sprintf("user%d@example.org", i))
		queued[env.enqueue(t, m, c.Now())] = m
	}
	w.Notify()
	for id, m := range queued {
		waitStatus(t, env, id, keeper.OutboxSent)
		checkSent(t, env, srv, id, m)
	}

	om := env.get(t, slowID)
	if om.Status != keeper.OutboxPending || om.Attempts != 1 {
		t.Errorf("got the slow message %q after %d attempts, want pending in its first",
			om.Status, om.Attempts)
	}
	if want := c.Now().Add(mail.DefaultLease); !om.NextAttemptAt.Equal(want) {
		t.Errorf("got the slow message leased until %v, want %v (one lease from its claim)",
			om.NextAttemptAt, want)
	}

	close(stall.release)
	waitStatus(t, env, slowID, keeper.OutboxSent)
	checkSent(t, env, srv, slowID, slow)
}

// TestWorkerDeliversWhenLeaseRunsOut simulates a worker that died mid-send: the message
// was claimed and its outcome never recorded. A running worker delivers it once the
// lease has passed on the worker's clock, and not before.
func TestWorkerDeliversWhenLeaseRunsOut(t *testing.T) {
	env, srv, c := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock()
	w := newWorker(t, env, srv, c, &logBuffer{},
		mail.WorkerConfig{PollInterval: 10 * time.Millisecond})
	msg := activation(t, "hal@example.org")
	id := env.enqueue(t, msg, c.Now())

	claimed, err := env.outbox.Claim(context.Background(), c.Now(), 1, mail.DefaultLease)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: got %d messages (err %v), want 1", len(claimed), err)
	}
	if lease := claimed[0].NextAttemptAt.Sub(c.Now()); lease > 2*time.Minute {
		t.Errorf("got a default lease of %v, want at most 2m", lease)
	}
	runOnce(t, w, 0) // still leased to the dead worker

	runWorker(t, w)
	c.Advance(mail.DefaultLease)
	waitStatus(t, env, id, keeper.OutboxSent)
	checkSent(t, env, srv, id, msg)
	if got := env.get(t, id).Attempts; got != 2 {
		t.Errorf("got %d attempts, want 2 (the lost one and the delivery)", got)
	}
}

// failFirst fails the first send with a temporary error and passes the others on.
type failFirst struct {
	next   keeper.Mailer
	failed atomic.Bool
}

func (m *failFirst) Send(ctx context.Context, msg keeper.Message) error {
	if m.failed.CompareAndSwap(false, true) {
		return errors.New("451 4.3.0 try again later")
	}
	return m.next.Send(ctx, msg)
}

// TestWorkerRetriesWhenDue checks that Run wakes for a retry that falls due before the
// next poll.
func TestWorkerRetriesWhenDue(t *testing.T) {
	env, srv := newOutbox(t), mailtest.Start(t, mailtest.Config{})
	mailer := &failFirst{next: newSender(t, srv.URL("none"))}
	// The retry is due 25–50 ms after the failure; the next poll is an hour away.
	w := newWorkerWith(t, env, mailer, nil, &logBuffer{}, mail.WorkerConfig{
		BaseDelay: 50 * time.Millisecond, PollInterval: time.Hour})
	msg := activation(t, "ida@example.org")
	id := env.enqueue(t, msg, time.Now())

	runWorker(t, w)
	waitStatus(t, env, id, keeper.OutboxSent)
	checkSent(t, env, srv, id, msg)
	if got := env.get(t, id).Attempts; got != 2 {
		t.Errorf("got %d attempts, want 2 (the refused one and the delivery)", got)
	}
}

// TestWorkerStopRecordsInterruptedSend checks that stopping Run interrupts a send in
// flight and records it, due again at once.
func TestWorkerStopRecordsInterruptedSend(t *testing.T) {
	env, srv, c := newOutbox(t), mailtest.Start(t, mailtest.Config{}), newClock()
	stall := newStallMailer(newSender(t, srv.URL("none")), "jo@example.org")
	w := newWorkerWith(t, env, stall, c, &logBuffer{}, mail.WorkerConfig{})
	id := env.enqueue(t, activation(t, "jo@example.org"), c.Now())

	stop := startRun(t, w)
	stall.waitStarted(t)
	stop()

	om := env.get(t, id)
	if om.Status != keeper.OutboxPending || !strings.Contains(om.LastError, "context canceled") {
		t.Errorf("got %q with error %q, want pending with the interruption recorded",
			om.Status, om.LastError)
	}
	if !om.NextAttemptAt.Equal(c.Now()) {
		t.Errorf("got next attempt at %v, want at once (%v)", om.NextAttemptAt, c.Now())
	}
	if om.Message.Text == "" {
		t.Error("got the body dropped, want it kept for the next attempt")
	}
}
