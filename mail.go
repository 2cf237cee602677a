package keeper

import (
	"context"
	"time"
)

// Message is an outgoing email. ID is a random identifier chosen when the message is
// created; it becomes the Message-ID, so a receiver can tell a retried delivery from a
// new message.
type Message struct {
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers one message.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// OutboxStatus is the delivery state of a queued message.
type OutboxStatus string

// Outbox states.
const (
	OutboxPending OutboxStatus = "pending"
	OutboxSent    OutboxStatus = "sent"
	OutboxFailed  OutboxStatus = "failed"
)

// OutboxMessage is a message in the outbox with its delivery record.
type OutboxMessage struct {
	OutboxID      int64
	Message       Message
	Status        OutboxStatus
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        time.Time
}

// Outbox is the durable queue of outgoing mail that a delivery worker drains.
type Outbox interface {
	// Claim leases up to limit pending messages that are due at now: each one's
	// attempt count goes up by one and it is not due again until now+lease, so a
	// worker that dies mid-send does not lose it and no other worker takes it meanwhile.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxMessage, error)

	// MarkSent records a delivery and drops the message body, which may hold a token.
	MarkSent(ctx context.Context, outboxID int64, at time.Time) error

	// Retry makes a claimed message due again at next, recording the error.
	Retry(ctx context.Context, outboxID int64, next time.Time, lastError string) error

	// MarkFailed gives up on a message for good, recording the error and dropping the
	// body.
	MarkFailed(ctx context.Context, outboxID int64, at time.Time, lastError string) error

	// NextDue returns the earliest time at which a pending message is due, a leased
	// one's lease end included, or the zero time when none is pending. It is cheap
	// enough to ask after every round, so that a worker can sleep until then.
	NextDue(ctx context.Context) (time.Time, error)

	// Pending returns the number of messages not yet sent or failed.
	Pending(ctx context.Context) (int, error)
}
