package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keeperhq/keeper"
)

// maxNamedKeys caps how many present keys a key_exists message names.
const maxNamedKeys = 10

const (
	kvGet = `SELECT value, version FROM kv_entries WHERE key = ?`

	kvVersion = `SELECT version FROM kv_entries WHERE key = ?`

	kvExists = `SELECT EXISTS (SELECT 1 FROM kv_entries WHERE key = ?)`

	kvInsert = `INSERT INTO kv_entries (key, value, version) VALUES (?, ?, ?)`

	kvUpdate = `UPDATE kv_entries SET value = ?, version = ? WHERE key = ?`

	kvDelete = `DELETE FROM kv_entries WHERE key = ?`

	// kvNextRevision takes the next value of the store-wide revision counter.
	kvNextRevision = `UPDATE kv_revision SET revision = revision + 1 WHERE id = 1
		RETURNING revision`

	// The List queries bound the key by the prefix's range rather than a LIKE pattern,
	// so % and _ in a prefix match only themselves and the primary key serves every page.
	// The lower bound is whichever of prefix (inclusive) and after (exclusive) is tighter;
	// the upper bound is missing when no string is greater than every key with the prefix.
	kvListFrom    = `SELECT key FROM kv_entries WHERE key >= ? ORDER BY key LIMIT ?`
	kvListFromTo  = `SELECT key FROM kv_entries WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`
	kvListAfter   = `SELECT key FROM kv_entries WHERE key > ? ORDER BY key LIMIT ?`
	kvListAfterTo = `SELECT key FROM kv_entries WHERE key > ? AND key < ? ORDER BY key LIMIT ?`
)

// kvReadQueries and kvWriteQueries are prepared at Open on the reader and writer pools.
var (
	kvReadQueries  = []string{kvGet, kvListFrom, kvListFromTo, kvListAfter, kvListAfterTo}
	kvWriteQueries = []string{kvVersion, kvExists, kvInsert, kvUpdate, kvDelete, kvNextRevision}
)

// KVStore is the SQLite implementation of keeper.KVStore. Values are stored as BLOBs,
// byte for byte.
type KVStore struct {
	db *DB
}

var _ keeper.KVStore = (*KVStore)(nil)

// NewKVStore returns a key–value store on db.
func NewKVStore(db *DB) *KVStore {
	return &KVStore{db: db}
}

// Get returns the entry for key, or key_not_found.
func (s *KVStore) Get(ctx context.Context, key string) (keeper.Entry, error) {
	var value []byte
	var version int64
	err := s.db.readStmt(kvGet).QueryRowContext(ctx, key).Scan(&value, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return keeper.Entry{}, keyNotFound(key)
	}
	if err != nil {
		return keeper.Entry{}, wrap("kv get", err)
	}
	return keeper.Entry{Key: key, Value: string(value), Version: version}, nil
}

// Create adds every entry in one transaction, all with the same new version, or none of
// them: key_exists naming the present keys when any is already there, duplicate_key when
// the batch names a key twice.
func (s *KVStore) Create(ctx context.Context, entries []keeper.Entry) ([]keeper.Entry, error) {
	if err := checkDuplicates(entries); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return []keeper.Entry{}, nil
	}

	var created []keeper.Entry
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkAbsent(ctx, tx, entries); err != nil {
			return err
		}
		revision, err := s.nextRevision(ctx, tx)
		if err != nil {
			return err
		}
		created, err = s.insertEntries(ctx, tx, entries, revision)
		return err
	})
	if err != nil {
		return nil, wrap("kv create", err)
	}
	return created, nil
}

// Update replaces the value of an existing key and gives it a new version: key_not_found
// when absent, version_mismatch when ifMatch is non-empty and lacks the current version.
func (s *KVStore) Update(
	ctx context.Context, key, value string, ifMatch []int64,
) (keeper.Entry, error) {
	var updated keeper.Entry
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkVersion(ctx, tx, key, ifMatch); err != nil {
			return err
		}
		revision, err := s.nextRevision(ctx, tx)
		if err != nil {
			return err
		}
		_, err = s.db.txStmt(ctx, tx, kvUpdate).ExecContext(ctx, blob(value), revision, key)
		if err != nil {
			return err
		}
		updated = keeper.Entry{Key: key, Value: value, Version: revision}
		return nil
	})
	if err != nil {
		return keeper.Entry{}, wrap("kv update", err)
	}
	return updated, nil
}

// Delete removes an existing key: key_not_found when absent, version_mismatch as for
// Update.
func (s *KVStore) Delete(ctx context.Context, key string, ifMatch []int64) error {
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkVersion(ctx, tx, key, ifMatch); err != nil {
			return err
		}
		// The revision moves on a delete too, so that every write has its own revision.
		if _, err := s.nextRevision(ctx, tx); err != nil {
			return err
		}
		_, err := s.db.txStmt(ctx, tx, kvDelete).ExecContext(ctx, key)
		return err
	})
	return wrap("kv delete", err)
}

// List returns up to limit keys that start with prefix and sort after the key after, in
// byte order.
func (s *KVStore) List(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return []string{}, nil
	}
	query, args := listQuery(prefix, after)

	rows, err := s.db.readStmt(query).QueryContext(ctx, append(args, limit)...)
	if err != nil {
		return nil, wrap("kv list", err)
	}
	defer rows.Close()

	keys := make([]string, 0, min(limit, keeper.MaxListLimit))
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, wrap("kv list", err)
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("kv list", err)
	}
	return keys, nil
}

// listQuery picks the List query and its bounds. Every key greater than after is past
// prefix too when after >= prefix, so after is then the tighter lower bound.
func listQuery(prefix, after string) (string, []any) {
	end, bounded := prefixEnd(prefix)
	switch {
	case after >= prefix && bounded:
		return kvListAfterTo, []any{after, end}
	case after >= prefix:
		return kvListAfter, []any{after}
	case bounded:
		return kvListFromTo, []any{prefix, end}
	}
	return kvListFrom, []any{prefix}
}

// prefixEnd returns the smallest string greater than every string that starts with
// prefix, and false when there is none (prefix empty or all 0xFF bytes).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// nextRevision advances the store-wide revision counter and returns its new value.
func (s *KVStore) nextRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	var revision int64
	row := s.db.txStmt(ctx, tx, kvNextRevision).QueryRowContext(ctx)
	if err := row.Scan(&revision); err != nil {
		return 0, fmt.Errorf("next revision: %w", err)
	}
	return revision, nil
}

// checkVersion returns key_not_found when key is absent and version_mismatch when
// ifMatch is non-empty and does not hold the key's current version.
func (s *KVStore) checkVersion(
	ctx context.Context, tx *sql.Tx, key string, ifMatch []int64,
) error {
	var version int64
	err := s.db.txStmt(ctx, tx, kvVersion).QueryRowContext(ctx, key).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return keyNotFound(key)
	}
	if err != nil {
		return err
	}

	if len(ifMatch) > 0 && !slices.Contains(ifMatch, version) {
		return keeper.Errorf(keeper.CodeVersionMismatch,
			"key %s has changed: its version matches none of those given", keeper.Quote(key))
	}
	return nil
}

// checkAbsent returns key_exists naming the entries' keys that are already present.
func (s *KVStore) checkAbsent(ctx context.Context, tx *sql.Tx, entries []keeper.Entry) error {
	stmt := s.db.txStmt(ctx, tx, kvExists)
	var present []string
	for _, e := range entries {
		var exists bool
		if err := stmt.QueryRowContext(ctx, e.Key).Scan(&exists); err != nil {
			return err
		}
		if exists {
			present = append(present, e.Key)
		}
	}
	if len(present) > 0 {
		return keyExists(present)
	}
	return nil
}

// insertEntries inserts entries that are known to be absent, all at one version.
func (s *KVStore) insertEntries(
	ctx context.Context, tx *sql.Tx, entries []keeper.Entry, version int64,
) ([]keeper.Entry, error) {
	stmt := s.db.txStmt(ctx, tx, kvInsert)
	created := make([]keeper.Entry, 0, len(entries))
	for _, e := range entries {
		_, err := stmt.ExecContext(ctx, e.Key, blob(e.Value), version)
		if isUniqueViolation(err) {
			return nil, keyExists([]string{e.Key})
		}
		if err != nil {
			return nil, err
		}
		created = append(created, keeper.Entry{Key: e.Key, Value: e.Value, Version: version})
	}
	return created, nil
}

// checkDuplicates returns duplicate_key when entries name the same key twice, which the
// primary key would otherwise report as a key that already exists.
func checkDuplicates(entries []keeper.Entry) error {
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.Key] {
			return keeper.Errorf(keeper.CodeDuplicateKey, "key %s appears more than once",
				keeper.Quote(e.Key))
		}
		seen[e.Key] = true
	}
	return nil
}

// blob returns value's bytes as a non-nil slice: the driver binds a nil slice as NULL,
// and an empty value is a value.
func blob(value string) []byte {
	if value == "" {
		return []byte{}
	}
	return []byte(value)
}

func keyNotFound(key string) error {
	return keeper.Errorf(keeper.CodeKeyNotFound, "key %s not found", keeper.Quote(key))
}

// keyExists names up to maxNamedKeys of the present keys.
func keyExists(present []string) error {
	shown := present[:min(len(present), maxNamedKeys)]
	named := make([]string, 0, len(shown))
	for _, key := range shown {
		named = append(named, keeper.Quote(key))
	}
	msg := strings.Join(named, ", ")
	if more := len(present) - len(named); more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}

	if len(present) == 1 {
		return keeper.Errorf(keeper.CodeKeyExists, "key %s already exists", msg)
	}
	return keeper.Errorf(keeper.CodeKeyExists, "keys %s already exist", msg)
}
