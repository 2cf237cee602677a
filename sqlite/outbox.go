package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/keeperhq/keeper"
)

const (
	outboxColumns = `id, message_id, recipient, subject, text_body, html_body, status,
		attempts, next_attempt_at, last_error, created_at, sent_at`

	outboxInsert = `INSERT INTO outbox (message_id, recipient, subject, text_body, html_body,
		status, attempts, next_attempt_at, last_error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, '', ?)`

	// outboxClaim leases the due messages in the order they became due. The lease is the
	// next_attempt_at in the future: a worker that dies mid-send leaves the message to be
	// claimed again once the lease runs out.
	outboxClaim = `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?
		WHERE id IN (
			SELECT id FROM outbox
			WHERE status = ? AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id
			LIMIT ?)
		RETURNING ` + outboxColumns

	// outboxMarkSent is unconditional: a delivery that happened is the truth, even when
	// the message's lease ran out and another worker gave up on it meanwhile.
	outboxMarkSent = `UPDATE outbox
		SET status = ?, sent_at = ?, text_body = '', html_body = ''
		WHERE id = ?`

	outboxRetry = `UPDATE outbox SET next_attempt_at = ?, last_error = ?
		WHERE id = ? AND status = ?`

	outboxMarkFailed = `UPDATE outbox
		SET status = ?, failed_at = ?, last_error = ?, text_body = '', html_body = ''
		WHERE id = ? AND status = ?`

	outboxExists = `SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?)`

	outboxPending = `SELECT count(*) FROM outbox WHERE status = ?`

	// outboxNextDue reads the first entry of the partial index outbox_due.
	outboxNextDue = `SELECT min(next_attempt_at) FROM outbox WHERE status = ?`

	outboxGet = `SELECT ` + outboxColumns + ` FROM outbox WHERE id = ?`

	outboxList = `SELECT ` + outboxColumns + ` FROM outbox ORDER BY id`
)

// Outbox is the SQLite implementation of keeper.Outbox. Messages enter it through
// AccountTx.Enqueue, in the same transaction as the change they report.
type Outbox struct {
	db *DB
}

var _ keeper.Outbox = (*Outbox)(nil)

// NewOutbox returns the outbox on db.
func NewOutbox(db *DB) *Outbox {
	return &Outbox{db: db}
}

// Claim leases up to limit pending messages due at now, in one write transaction: each
// one's attempt count goes up by one and it is not due again until now+lease. When more
// are due than limit, those due longest are taken. The result is in outbox-id order. Two
// concurrent claimers never get the same message.
func (o *Outbox) Claim(
	ctx context.Context, now time.Time, limit int, lease time.Duration,
) ([]keeper.OutboxMessage, error) {
	if limit <= 0 {
		return []keeper.OutboxMessage{}, nil
	}

	var claimed []keeper.OutboxMessage
	err := o.db.write(ctx, func(tx *sql.Tx) error {
		var err error
		claimed, err = queryMessages(ctx, tx, outboxClaim,
			micros(now.Add(lease)), string(keeper.OutboxPending), micros(now), limit)
		return err
	})
	if err != nil {
		return nil, wrap("outbox claim", err)
	}

	// RETURNING gives rows in no promised order.
	slices.SortFunc(claimed, func(a, b keeper.OutboxMessage) int {
		return cmp.Compare(a.OutboxID, b.OutboxID)
	})
	return claimed, nil
}

// MarkSent records a delivery at the given time and drops the message body, which may
// hold a token. It returns not_found when there is no such message.
func (o *Outbox) MarkSent(ctx context.Context, outboxID int64, at time.Time) error {
	err := o.db.write(ctx, func(tx *sql.Tx) error {
		return changeMessage(ctx, tx, outboxID, outboxMarkSent,
			string(keeper.OutboxSent), micros(at), outboxID)
	})
	return wrap("outbox mark sent", err)
}

// Retry makes a claimed message due again at next, recording the error. A message that
// is no longer pending (another worker finished it) is left as it is; not_found when there
// is no such message.
func (o *Outbox) Retry(
	ctx context.Context, outboxID int64, next time.Time, lastError string,
) error {
	err := o.db.write(ctx, func(tx *sql.Tx) error {
		return changeMessage(ctx, tx, outboxID, outboxRetry,
			micros(next), lastError, outboxID, string(keeper.OutboxPending))
	})
	return wrap("outbox retry", err)
}

// MarkFailed gives up on a pending message for good, recording the time and the error
// and dropping the body. A message already sent stays sent; not_found when there is no
// such message.
func (o *Outbox) MarkFailed(
	ctx context.Context, outboxID int64, at time.Time, lastError string,
) error {
	err := o.db.write(ctx, func(tx *sql.Tx) error {
		return changeMessage(ctx, tx, outboxID, outboxMarkFailed,
			string(keeper.OutboxFailed), micros(at), lastError, outboxID,
			string(keeper.OutboxPending))
	})
	return wrap("outbox mark failed", err)
}

// NextDue returns the earliest time at which a pending message is due, a leased one's
// lease end included, or the zero time when none is pending.
func (o *Outbox) NextDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	row := o.db.reader.QueryRowContext(ctx, outboxNextDue, string(keeper.OutboxPending))
	if err := row.Scan(&next); err != nil {
		return time.Time{}, wrap("outbox next due", err)
	}
	return fromNullMicros(next), nil
}

// Pending returns the number of messages not yet sent or failed.
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	row := o.db.reader.QueryRowContext(ctx, outboxPending, string(keeper.OutboxPending))
	if err := row.Scan(&n); err != nil {
		return 0, wrap("outbox pending", err)
	}
	return n, nil
}

// Get returns one message with its delivery record, or not_found.
func (o *Outbox) Get(ctx context.Context, outboxID int64) (keeper.OutboxMessage, error) {
	m, err := scanMessage(o.db.reader.QueryRowContext(ctx, outboxGet, outboxID))
	if errors.Is(err, sql.ErrNoRows) {
		return keeper.OutboxMessage{}, outboxNotFound(outboxID)
	}
	if err != nil {
		return keeper.OutboxMessage{}, wrap("outbox get", err)
	}
	return m, nil
}

// List returns every message in the outbox, oldest first. It is meant for tests and the
// command line, not for a busy queue.
func (o *Outbox) List(ctx context.Context) ([]keeper.OutboxMessage, error) {
	messages, err := queryMessages(ctx, o.db.reader, outboxList)
	if err != nil {
		return nil, wrap("outbox list", err)
	}
	return messages, nil
}

// changeMessage runs an update of one message and tells a missing message from one that
// the update's condition left alone.
func changeMessage(
	ctx context.Context, tx *sql.Tx, id int64, query string, args ...any,
) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := rowsAffected(res)
	if err != nil || n > 0 {
		return err
	}

	var exists bool
	if err := tx.QueryRowContext(ctx, outboxExists, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return outboxNotFound(id)
	}
	return nil
}

// enqueue inserts a pending message due at the given time.
func enqueue(ctx context.Context, q querier, m keeper.Message, at time.Time) error {
	_, err := q.ExecContext(ctx, outboxInsert,
		m.ID, m.To, m.Subject, m.Text, m.HTML, string(keeper.OutboxPending),
		micros(at), micros(time.Now()))
	return err
}

// queryMessages runs a query that returns rows of outboxColumns.
func queryMessages(
	ctx context.Context, q querier, query string, args ...any,
) ([]keeper.OutboxMessage, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	messages := []keeper.OutboxMessage{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		messages = append(messages, m)
	}
	return messages, rows.Err()
}

// scanMessage reads one row of outboxColumns.
func scanMessage(row scanner) (keeper.OutboxMessage, error) {
	var m keeper.OutboxMessage
	var status string
	var next, created int64
	var sent sql.NullInt64
	err := row.Scan(&m.OutboxID, &m.Message.ID, &m.Message.To, &m.Message.Subject,
		&m.Message.Text, &m.Message.HTML, &status, &m.Attempts, &next, &m.LastError,
		&created, &sent)
	if err != nil {
		return keeper.OutboxMessage{}, err
	}

	m.Status = keeper.OutboxStatus(status)
	m.NextAttemptAt = fromMicros(next)
	m.CreatedAt = fromMicros(created)
	m.SentAt = fromNullMicros(sent)
	return m, nil
}

// outboxNotFound uses the generic not_found code: the domain has no outbox-specific one,
// and no client ever names an outbox message.
func outboxNotFound(id int64) error {
	return keeper.Errorf(keeper.CodeNotFound, "outbox message %d not found", id)
}
