package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keeperhq/keeper"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// querier is what a *sql.DB and a *sql.Tx have in common, so one query helper serves
// reads on the reader pool and reads inside a write transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// write runs fn in a transaction on the writer connection and commits it when fn returns
// nil. The DSN makes the transaction BEGIN IMMEDIATE: it takes the write lock up front, so
// a read-then-write inside fn cannot fail halfway on a lock upgrade.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// After Commit, Rollback does nothing; after a failure, fn's error is the one to report.
	defer func() { _ = tx.Rollback() }()

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// wrap adds context to an unexpected error. Domain errors pass through unchanged, and a
// file held locked by another process for longer than the busy timeout becomes
// service_unavailable, since retrying later can succeed.
func wrap(op string, err error) error {
	var ke *keeper.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke):
		return err
	case resultCode(err)&0xff == sqlite3.SQLITE_BUSY:
		return &keeper.Error{
			Code:    keeper.CodeServiceUnavailable,
			Message: "the database is busy",
			Err:     fmt.Errorf("%s: %w", op, err),
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// resultCode returns the extended SQLite result code of a driver error, or 0 when err
// does not come from SQLite.
func resultCode(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	code := resultCode(err)
	return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY constraint failure.
func isForeignKeyViolation(err error) bool {
	return resultCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// micros is the stored form of a timestamp.
func micros(t time.Time) int64 {
	return t.UnixMicro()
}

// nullMicros is the stored form of a timestamp that may not have happened: NULL for the
// zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros turns a stored timestamp back into a time in UTC.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// fromNullMicros turns a nullable stored timestamp back into a time, zero for NULL.
func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// truncate rounds t down to the precision that is stored, in UTC, so that a value a store
// returns after a write equals what a later read returns.
func truncate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return fromMicros(micros(t))
}

// rowsAffected returns how many rows a statement changed.
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}
