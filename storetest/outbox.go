package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
)

// Outbox runs the mail outbox cases. open returns an account store and the outbox of one
// fresh, empty database; the outbox must also implement OutboxInspector.
func Outbox(t *testing.T, open func(t *testing.T) (keeper.AccountStore, keeper.Outbox)) {
	run := func(name string, fn func(t *testing.T, s keeper.AccountStore, o outbox)) {
		t.Run(name, func(t *testing.T) {
			s, o := open(t)
			inspector, ok := o.(OutboxInspector)
			if !ok {
				t.Fatalf("got an outbox of type %T, want one that implements OutboxInspector", o)
			}
			fn(t, s, outbox{Outbox: o, OutboxInspector: inspector})
		})
	}
	run("EnqueueAndGet", obEnqueueAndGet)
	run("ClaimDue", obClaimDue)
	run("ClaimOldestFirst", obClaimOldestFirst)
	run("ClaimNothing", obClaimNothing)
	run("NextDue", obNextDue)
	run("Retry", obRetry)
	run("MarkSent", obMarkSent)
	run("MarkFailed", obMarkFailed)
	run("Missing", obMissing)
	run("TxRollback", obTxRollback)
	run("TxCommit", obTxCommit)
	run("ConcurrentClaim", obConcurrentClaim)
	run("Canceled", obCanceled)
}

// outbox is the outbox under test with its inspector.
type outbox struct {
	keeper.Outbox
	OutboxInspector
}

func obEnqueueAndGet(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	m := newMessage(1)
	mustEnqueue(t, s, m, base)

	all, err := o.List(ctx)
	noError(t, err, "list")
	if len(all) != 1 {
		t.Fatalf("got %d messages, want 1", len(all))
	}
	got := all[0]
	if got.Message != m || got.Status != keeper.OutboxPending || got.Attempts != 0 ||
		got.LastError != "" {
		t.Errorf("got %+v, want a pending copy of %+v", got, m)
	}
	wantTime(t, "next attempt", got.NextAttemptAt, base)
	wantTime(t, "sent at", got.SentAt, time.Time{})
	if got.CreatedAt.IsZero() {
		t.Errorf("got a zero CreatedAt, want the time of enqueueing")
	}

	byID, err := o.Get(ctx, got.OutboxID)
	noError(t, err, "get")
	if byID != got {
		t.Errorf("Get: got %+v, want %+v", byID, got)
	}
	wantPending(t, o, 1)
}

// obClaimDue checks that Claim takes due messages only, leases them, and gives them out
// again once the lease runs out.
func obClaimDue(t *testing.T, s keeper.AccountStore, o outbox) {
	msgs := []keeper.Message{newMessage(0), newMessage(1), newMessage(2)}
	for i, m := range msgs {
		mustEnqueue(t, s, m, base.Add(time.Duration(i)*time.Minute))
	}
	lease := 5 * time.Minute
	now := base.Add(time.Minute)

	steps := []struct {
		name         string
		now          time.Time
		want         []keeper.Message
		wantAttempts []int
	}{
		{"due ones", now, msgs[:2], []int{1, 1}},
		{"leased are hidden", now, nil, nil},
		{"lease over", now.Add(lease), msgs, []int{2, 2, 1}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			got := mustClaim(t, o, step.now, 10, lease)
			wantMessages(t, got, step.want)
			for i, m := range got {
				if m.Attempts != step.wantAttempts[i] {
					t.Errorf("%s: got %d attempts, want %d", m.Message.ID, m.Attempts,
						step.wantAttempts[i])
				}
				wantTime(t, "next attempt", m.NextAttemptAt, step.now.Add(lease))
			}
		})
	}
	wantPending(t, o, 3)
}

// obClaimOldestFirst checks that a limited claim takes the messages due earliest.
func obClaimOldestFirst(t *testing.T, s keeper.AccountStore, o outbox) {
	msgs := []keeper.Message{newMessage(0), newMessage(1), newMessage(2)}
	due := []time.Duration{2 * time.Minute, 0, time.Minute}
	for i, m := range msgs {
		mustEnqueue(t, s, m, base.Add(due[i]))
	}

	got := mustClaim(t, o, base.Add(time.Hour), 2, time.Minute)
	wantMessages(t, got, []keeper.Message{msgs[1], msgs[2]})
}

func obClaimNothing(t *testing.T, s keeper.AccountStore, o outbox) {
	mustEnqueue(t, s, newMessage(0), base)

	cases := []struct {
		name  string
		now   time.Time
		limit int
	}{
		{"zero limit", base, 0},
		{"negative limit", base, -1},
		{"not yet due", base.Add(-time.Microsecond), 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustClaim(t, o, c.now, c.limit, time.Minute)
			wantMessages(t, got, nil)
		})
	}

	// Nothing above may have leased the message.
	got := mustClaim(t, o, base, 10, time.Minute)
	if len(got) != 1 || got[0].Attempts != 1 {
		t.Errorf("got %+v, want the message with 1 attempt", got)
	}
}

// obNextDue checks that NextDue follows the earliest pending message through a claim, a
// retry and the end of the queue.
func obNextDue(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	wantNextDue(t, o, "empty", time.Time{})
	mustEnqueue(t, s, newMessage(0), base.Add(2*time.Minute))
	mustEnqueue(t, s, newMessage(1), base.Add(time.Minute))
	wantNextDue(t, o, "two queued", base.Add(time.Minute))

	first := mustClaim(t, o, base.Add(time.Minute), 1, 5*time.Minute)[0]
	wantNextDue(t, o, "first leased", base.Add(2*time.Minute))

	noError(t, o.Retry(ctx, first.OutboxID, base.Add(30*time.Second), "451"), "retry")
	wantNextDue(t, o, "first retried sooner", base.Add(30*time.Second))

	noError(t, o.MarkSent(ctx, first.OutboxID, base), "mark sent")
	second := mustClaim(t, o, base.Add(2*time.Minute), 1, time.Minute)[0]
	wantNextDue(t, o, "second leased", base.Add(3*time.Minute))

	noError(t, o.MarkFailed(ctx, second.OutboxID, base, "550"), "mark failed")
	wantNextDue(t, o, "none pending", time.Time{})
}

func wantNextDue(t *testing.T, o outbox, step string, want time.Time) {
	t.Helper()
	got, err := o.NextDue(context.Background())
	noError(t, err, "next due")
	wantTime(t, step+": next due", got, want)
}

func obRetry(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	m := newMessage(0)
	mustEnqueue(t, s, m, base)
	claimed := mustClaim(t, o, base, 1, time.Minute)[0]
	next := base.Add(10 * time.Minute)

	err := o.Retry(ctx, claimed.OutboxID, next, "451 try again later")
	noError(t, err, "retry")
	got, err := o.Get(ctx, claimed.OutboxID)
	noError(t, err, "get")
	if got.Status != keeper.OutboxPending || got.LastError != "451 try again later" ||
		got.Attempts != 1 || got.Message != m {
		t.Errorf("got %+v, want pending with the error, 1 attempt and its body", got)
	}
	wantTime(t, "next attempt", got.NextAttemptAt, next)

	wantMessages(t, mustClaim(t, o, next.Add(-time.Microsecond), 10, time.Minute), nil)
	again := mustClaim(t, o, next, 10, time.Minute)
	wantMessages(t, again, []keeper.Message{m})
	if again[0].Attempts != 2 {
		t.Errorf("got %d attempts, want 2", again[0].Attempts)
	}
}

func obMarkSent(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	mustEnqueue(t, s, newMessage(0), base)
	claimed := mustClaim(t, o, base, 1, time.Minute)[0]
	at := base.Add(time.Second)

	noError(t, o.MarkSent(ctx, claimed.OutboxID, at), "mark sent")
	got, err := o.Get(ctx, claimed.OutboxID)
	noError(t, err, "get")
	if got.Status != keeper.OutboxSent {
		t.Errorf("got status %s, want %s", got.Status, keeper.OutboxSent)
	}
	wantTime(t, "sent at", got.SentAt, at)
	wantBodiesCleared(t, got)
	wantPending(t, o, 0)
	wantMessages(t, mustClaim(t, o, base.Add(24*time.Hour), 10, time.Minute), nil)
}

func obMarkFailed(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	mustEnqueue(t, s, newMessage(0), base)
	claimed := mustClaim(t, o, base, 1, time.Minute)[0]

	err := o.MarkFailed(ctx, claimed.OutboxID, base.Add(time.Second), "550 no such user")
	noError(t, err, "mark failed")
	got, err := o.Get(ctx, claimed.OutboxID)
	noError(t, err, "get")
	if got.Status != keeper.OutboxFailed || got.LastError != "550 no such user" {
		t.Errorf("got status %s with error %q, want %s with the error", got.Status,
			got.LastError, keeper.OutboxFailed)
	}
	wantTime(t, "sent at", got.SentAt, time.Time{})
	wantBodiesCleared(t, got)
	wantPending(t, o, 0)
	wantMessages(t, mustClaim(t, o, base.Add(24*time.Hour), 10, time.Minute), nil)
}

func obMissing(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	mustEnqueue(t, s, newMessage(0), base)
	const id = 987654

	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := o.Get(ctx, id); return err }},
		{"MarkSent", func() error { return o.MarkSent(ctx, id, base) }},
		{"Retry", func() error { return o.Retry(ctx, id, base, "x") }},
		{"MarkFailed", func() error { return o.MarkFailed(ctx, id, base, "x") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), keeper.CodeNotFound) })
	}
}

// obTxRollback checks that mail enqueued in a transaction that fails is never sent.
func obTxRollback(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	err := s.Tx(ctx, func(tx keeper.AccountTx) error {
		if _, err := tx.CreateUser(ctx, newUser("gone@example.com")); err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, newMessage(0), base); err != nil {
			return err
		}
		return errPlanned
	})
	if !errors.Is(err, errPlanned) {
		t.Fatalf("got error %v, want %v", err, errPlanned)
	}

	_, err = s.UserByEmail(ctx, "gone@example.com")
	wantCode(t, err, keeper.CodeUserNotFound)
	all, err := o.List(ctx)
	noError(t, err, "list")
	wantMessages(t, all, nil)
	wantPending(t, o, 0)
}

func obTxCommit(t *testing.T, s keeper.AccountStore, o outbox) {
	ctx := context.Background()
	m := newMessage(0)
	err := s.Tx(ctx, func(tx keeper.AccountTx) error {
		if _, err := tx.CreateUser(ctx, newUser("kept@example.com")); err != nil {
			return err
		}
		return tx.Enqueue(ctx, m, base)
	})
	noError(t, err, "tx")

	_, err = s.UserByEmail(ctx, "kept@example.com")
	noError(t, err, "user by email")
	all, err := o.List(ctx)
	noError(t, err, "list")
	wantMessages(t, all, []keeper.Message{m})
}

// obConcurrentClaim drains the outbox with several claimers at once: every message is
// handed out exactly once.
func obConcurrentClaim(t *testing.T, s keeper.AccountStore, o outbox) {
	const messages, claimers, batch = 60, 6, 4
	for i := range messages {
		mustEnqueue(t, s, newMessage(i), base)
	}

	var mu sync.Mutex
	counts := make(map[int64]int)
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			for range messages {
				got, err := o.Claim(context.Background(), base, batch, time.Hour)
				if err != nil {
					t.Errorf("claim: got error %v, want none", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					counts[m.OutboxID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if len(counts) != messages {
		t.Errorf("got %d distinct messages claimed, want %d", len(counts), messages)
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("message %d: claimed %d times, want once", id, n)
		}
	}
}

func obCanceled(t *testing.T, s keeper.AccountStore, o outbox) {
	mustEnqueue(t, s, newMessage(0), base)
	ctx := canceled()

	calls := []struct {
		name string
		call func() error
	}{
		{"Claim", func() error { _, err := o.Claim(ctx, base, 10, time.Minute); return err }},
		{"Pending", func() error { _, err := o.Pending(ctx); return err }},
		{"NextDue", func() error { _, err := o.NextDue(ctx); return err }},
		{"MarkSent", func() error { return o.MarkSent(ctx, 1, base) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("got error %v, want context.Canceled", err)
			}
		})
	}
	wantPending(t, o, 1)
}

// newMessage returns the n-th test message; its bodies hold a token-like secret, as
// activation mail does.
func newMessage(n int) keeper.Message {
	return keeper.Message{
		ID:      fmt.Sprintf("<msg-%d@keeper.test>", n),
		To:      fmt.Sprintf("user%d@example.com", n),
		Subject: fmt.Sprintf("Activate your account (%d) — Keeper", n),
		Text:    fmt.Sprintf("Open http://127.0.0.1/activate?token=secret-%d", n),
		HTML:    fmt.Sprintf(`<a href="http://127.0.0.1/activate?token=secret-%d">Ä</a>`, n),
	}
}

func mustEnqueue(t *testing.T, s keeper.AccountStore, m keeper.Message, due time.Time) {
	t.Helper()
	err := s.Tx(context.Background(), func(tx keeper.AccountTx) error {
		return tx.Enqueue(context.Background(), m, due)
	})
	noError(t, err, "enqueue")
}

// mustClaim claims and returns the messages ordered by outbox id.
func mustClaim(
	t *testing.T, o outbox, now time.Time, limit int, lease time.Duration,
) []keeper.OutboxMessage {
	t.Helper()
	got, err := o.Claim(context.Background(), now, limit, lease)
	noError(t, err, "claim")
	slices.SortFunc(got, func(a, b keeper.OutboxMessage) int {
		return cmp.Compare(a.OutboxID, b.OutboxID)
	})
	return got
}

// wantMessages fails unless got holds exactly the want messages, in enqueue order.
func wantMessages(t *testing.T, got []keeper.OutboxMessage, want []keeper.Message) {
	t.Helper()
	ids := make([]string, len(got))
	for i, m := range got {
		ids[i] = m.Message.ID
	}
	wantIDs := make([]string, len(want))
	for i, m := range want {
		wantIDs[i] = m.ID
	}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("got messages %q, want %q", ids, wantIDs)
	}
	for i, m := range got {
		if m.Message != want[i] {
			t.Errorf("got %+v, want %+v", m.Message, want[i])
		}
	}
}

func wantBodiesCleared(t *testing.T, m keeper.OutboxMessage) {
	t.Helper()
	if m.Message.Text != "" || m.Message.HTML != "" {
		t.Errorf("got bodies %q and %q, want both cleared", m.Message.Text, m.Message.HTML)
	}
}

func wantPending(t *testing.T, o outbox, want int) {
	t.Helper()
	got, err := o.Pending(context.Background())
	noError(t, err, "pending")
	if got != want {
		t.Errorf("got %d pending, want %d", got, want)
	}
}
