// Package sqlite stores Keeper's state in one SQLite file through the pure-Go driver
// modernc.org/sqlite: the key–value entries, user accounts, tokens and the mail outbox.
//
// Open keeps two connection pools on the file. Every write goes through a writer pool of
// exactly one connection whose transactions begin IMMEDIATE, so Keeper's own writers queue
// in Go instead of failing with SQLITE_BUSY; the busy timeout still covers another process
// using the same file. Reads outside a transaction go to a reader pool of several
// query-only connections, which WAL mode lets run beside the writer.
//
// Timestamps are stored as INTEGER microseconds since the Unix epoch in UTC, NULL where a
// moment has not happened yet, and come back as time.Time in UTC (the zero time for NULL).
// The schema is created and upgraded by the versioned migrations embedded from
// migrations/.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// writerPragmas configure the one writing connection. busy_timeout is how long, in
// milliseconds, it waits for another process's lock on the file before SQLITE_BUSY.
// synchronous(NORMAL) is safe in WAL mode: a crash of the process loses nothing committed;
// a power cut may lose the last transactions but never corrupts the file.
const writerPragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// readerPragmas configure the reading connections; query_only makes an accidental write
// through them fail instead of competing with the writer.
const readerPragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=query_only(1)"

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open Keeper database file. It is safe for concurrent use; the stores built on
// it share its pools.
type DB struct {
	writer *sql.DB
	reader *sql.DB

	// The key–value queries run on every request, so they are prepared once at Open
	// instead of parsed on every call; each map is keyed by the query's text.
	readStmts  map[string]*sql.Stmt
	writeStmts map[string]*sql.Stmt
}

// Open opens the database file at path, creating it and its parent folder when missing,
// and applies any pending migrations before it returns.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite: path %q must name a file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: create folder: %w", err)
	}
	// The file holds password hashes and, until they are sent, mails with one-time
	// links: create it readable by its owner only. SQLite gives the -wal and -shm files
	// the main file's mode, and leaves the mode of an existing file alone.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("open sqlite: create file: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("open sqlite: create file: %w", err)
	}

	writer, err := openPool(ctx, path, writerPragmas, 1)
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	if err := migrate(ctx, writer); err != nil {
		return nil, errors.Join(fmt.Errorf("migrate sqlite: %w", err), writer.Close())
	}

	reader, err := openPool(ctx, path, readerPragmas, readerConns())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite reader: %w", err), writer.Close())
	}

	db := &DB{writer: writer, reader: reader}
	if err := db.prepare(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("prepare sqlite statements: %w", err), db.Close())
	}
	return db, nil
}

// Close closes the prepared statements and both pools. Stores built on db must not be
// used afterwards.
func (db *DB) Close() error {
	var errs []error
	for _, stmts := range []map[string]*sql.Stmt{db.readStmts, db.writeStmts} {
		for _, stmt := range stmts {
			errs = append(errs, stmt.Close())
		}
	}
	errs = append(errs, db.reader.Close(), db.writer.Close())
	return errors.Join(errs...)
}

// Ping checks that the file can be read, through a query on the reader pool. It leaves
// the writer alone on purpose: its one connection may be busy with a write, and a
// readiness probe should not queue behind the writes it is meant to let through.
func (db *DB) Ping(ctx context.Context) error {
	var revision int64
	err := db.reader.QueryRowContext(ctx, `SELECT revision FROM kv_revision`).Scan(&revision)
	if err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// prepare prepares the key–value queries on the pools that run them.
func (db *DB) prepare(ctx context.Context) error {
	var err error
	if db.readStmts, err = prepareAll(ctx, db.reader, kvReadQueries); err != nil {
		return err
	}
	db.writeStmts, err = prepareAll(ctx, db.writer, kvWriteQueries)
	return err
}

// prepareAll prepares every query on pool. On failure it returns the statements that
// were prepared, so that Close can release them.
func prepareAll(
	ctx context.Context, pool *sql.DB, queries []string,
) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(queries))
	for _, query := range queries {
		stmt, err := pool.PrepareContext(ctx, query)
		if err != nil {
			return stmts, fmt.Errorf("%q: %w", query, err)
		}
		stmts[query] = stmt
	}
	return stmts, nil
}

// readStmt returns the prepared reader statement for query.
func (db *DB) readStmt(query string) *sql.Stmt {
	return db.readStmts[query]
}

// txStmt returns the writer's prepared statement for query, bound to tx. The writer has
// one connection, on which the statement is already prepared, so binding costs no parse.
func (db *DB) txStmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	return tx.StmtContext(ctx, db.writeStmts[query])
}

// readerConns sizes the reader pool: reads are CPU-bound in a pure-Go driver, so a few
// more connections than cores keeps every core busy without piling up.
func readerConns() int {
	return max(4, 2*runtime.GOMAXPROCS(0))
}

// openPool opens a pool of at most conns connections and pings it, so that a bad path or
// a file that is not a database fails here rather than on first use.
func openPool(ctx context.Context, path, pragmas string, conns int) (*sql.DB, error) {
	pool, err := sql.Open("sqlite", dsn(path, pragmas))
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)

	if err := pool.PingContext(ctx); err != nil {
		return nil, errors.Join(err, pool.Close())
	}
	return pool, nil
}

// dsn builds a file: URI. SQLite decodes %XX escapes in URI paths, so the characters
// that would end the path or start an escape are escaped themselves.
func dsn(path, pragmas string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + pragmas
}

// migrateAttempts bounds how often Open runs the migrations. Another process opening the
// same new file can apply a migration between goose's version check and its transaction;
// the loser's transaction rolls back whole, and its next run finds nothing left to do.
const migrateAttempts = 3

// migrate applies the embedded migrations that the file does not have yet.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}

	// provider.Close would close db, which the stores go on using, so it is not called.
	for attempt := 1; ; attempt++ {
		_, err = provider.Up(ctx)
		if err == nil || ctx.Err() != nil || attempt == migrateAttempts {
			return err
		}
	}
}
