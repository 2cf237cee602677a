package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/sqlite"
)

// rawConn opens a plain connection to the file, as another program would, to look at
// what Open left there.
// latestMigration is the version of the newest file in migrations/.
const latestMigration = 2

func rawConn(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("raw open: got error %v, want none", err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestOpenCreatesSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	path := filepath.Join(dir, "keeper.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	defer db.Close()

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("stat folder: got error %v, want none", err)
	}
	if perm := info.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("got folder mode %v, want no more than 0750", perm)
	}

	raw := rawConn(t, path)
	t.Run("tables", func(t *testing.T) {
		got := queryStrings(t, raw, `SELECT name FROM sqlite_schema WHERE type = 'table'
			AND name NOT LIKE 'sqlite%' ORDER BY name`)
		want := []string{"goose_db_version", "kv_entries", "kv_revision", "outbox", "tokens",
			"users"}
		if !slices.Equal(got, want) {
			t.Errorf("got tables %q, want %q", got, want)
		}
	})
	t.Run("migration version", func(t *testing.T) {
		var version int64
		err := raw.QueryRow(`SELECT max(version_id) FROM goose_db_version`).Scan(&version)
		if err != nil || version != latestMigration {
			t.Errorf("got version %d (%v), want %d", version, err, latestMigration)
		}
	})
	t.Run("journal mode", func(t *testing.T) {
		got := queryStrings(t, raw, `PRAGMA journal_mode`)
		if !slices.Equal(got, []string{"wal"}) {
			t.Errorf("got journal mode %q, want wal", got)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keeper.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	created, err := sqlite.NewKVStore(db).Create(ctx, []keeper.Entry{{Key: "k", Value: "v"}})
	if err != nil {
		t.Fatalf("create: got error %v, want none", err)
	}
	userID := createUserWithMail(t, db, "reopen@example.com")
	if err := db.Close(); err != nil {
		t.Fatalf("close: got error %v, want none", err)
	}

	db = reopen(t, path)
	kv := sqlite.NewKVStore(db)
	got, err := kv.Get(ctx, "k")
	if err != nil || got != created[0] {
		t.Errorf("entry: got %+v (%v), want %+v", got, err, created[0])
	}
	if _, err := sqlite.NewAccountStore(db).UserByID(ctx, userID); err != nil {
		t.Errorf("user: got error %v, want none", err)
	}
	if n, err := sqlite.NewOutbox(db).Pending(ctx); err != nil || n != 1 {
		t.Errorf("outbox: got %d pending (%v), want 1", n, err)
	}

	// The revision counter is stored too, so versions go on growing after a restart.
	next, err := kv.Create(ctx, []keeper.Entry{{Key: "k2"}})
	if err != nil || next[0].Version <= created[0].Version {
		t.Errorf("got version %+v (%v), want more than %d", next, err, created[0].Version)
	}
}

// TestTwoOpensShareTheFile opens the same file twice, as two processes would, and writes
// through both at once: the busy timeout lets them take turns.
func TestTwoOpensShareTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keeper.db")
	first := reopen(t, path)
	second := reopen(t, path)
	stores := []*sqlite.KVStore{sqlite.NewKVStore(first), sqlite.NewKVStore(second)}

	const perStore = 40
	var wg sync.WaitGroup
	for s, kv := range stores {
		wg.Go(func() {
			for i := range perStore {
				key := fmt.Sprintf("s%d/%02d", s, i)
				if _, err := kv.Create(ctx, []keeper.Entry{{Key: key}}); err != nil {
					t.Errorf("create %s: got error %v, want none", key, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Each sees what the other wrote.
	for s, kv := range stores {
		keys, err := kv.List(ctx, "", "", 1000)
		if err != nil || len(keys) != 2*perStore {
			t.Errorf("store %d: got %d keys (%v), want %d", s, len(keys), err, 2*perStore)
		}
	}
}

// TestConcurrentOpenOfNewFile opens one new file from several goroutines at once, as
// processes started together would: every Open succeeds and the migration is applied once.
func TestConcurrentOpenOfNewFile(t *testing.T) {
	const opens = 4
	path := filepath.Join(t.TempDir(), "keeper.db")
	var wg sync.WaitGroup
	for i := range opens {
		wg.Go(func() {
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Errorf("open %d: got error %v, want none", i, err)
				return
			}
			t.Cleanup(func() { db.Close() })
		})
	}
	wg.Wait()

	got := queryStrings(t, rawConn(t, path),
		`SELECT version_id FROM goose_db_version ORDER BY id`)
	want := []string{"0"}
	for v := 1; v <= latestMigration; v++ {
		want = append(want, strconv.Itoa(v))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got applied versions %q, want %q", got, want)
	}
}

// TestBusyFile holds the write lock from another connection for longer than the busy
// timeout: a write must give up with service_unavailable, and reads must go on.
func TestBusyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s busy timeout")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keeper.db")
	kv := sqlite.NewKVStore(reopen(t, path))
	if _, err := kv.Create(ctx, []keeper.Entry{{Key: "k"}}); err != nil {
		t.Fatalf("create: got error %v, want none", err)
	}

	lock, err := rawConn(t, path).Conn(ctx)
	if err != nil {
		t.Fatalf("raw conn: got error %v, want none", err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatalf("begin immediate: got error %v, want none", err)
	}
	defer func() { _, _ = lock.ExecContext(ctx, `ROLLBACK`) }()

	_, err = kv.Update(ctx, "k", "new", nil)
	if !keeper.HasCode(err, keeper.CodeServiceUnavailable) {
		t.Errorf("update: got error %v, want code %s", err, keeper.CodeServiceUnavailable)
	}
	if _, err := kv.Get(ctx, "k"); err != nil {
		t.Errorf("get: got error %v, want none while another connection writes", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-database")
	garbage := []byte("this is not an SQLite file, not even close to one")
	if err := os.WriteFile(notDB, garbage, 0o600); err != nil {
		t.Fatalf("write: got error %v, want none", err)
	}

	cases := []struct {
		name, path string
	}{
		{"empty path", ""},
		{"memory", ":memory:"},
		{"uri", "file:keeper.db"},
		{"not a database", notDB},
		{"parent is a file", filepath.Join(notDB, "keeper.db")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, err := sqlite.Open(context.Background(), c.path)
			if err == nil {
				db.Close()
				t.Fatalf("got no error, want Open to refuse %q", c.path)
			}
		})
	}
}

// TestOpenOddPath checks that characters with a meaning in URIs reach the file system as
// they are.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d", "keeper 1%.db")
	reopen(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("got error %v, want the file at %q", err, path)
	}
}

func TestPing(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"))
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("ping open: got error %v, want none", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: got error %v, want none", err)
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Errorf("ping closed: got no error, want one")
	}
}

// reopen opens path and closes it when the test ends.
func reopen(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// createUserWithMail registers a user and queues their mail in one transaction.
func createUserWithMail(t *testing.T, db *sqlite.DB, email string) int64 {
	t.Helper()
	var id int64
	err := sqlite.NewAccountStore(db).Tx(context.Background(), func(tx keeper.AccountTx) error {
		u, err := tx.CreateUser(context.Background(), keeper.User{
			Email: email, Name: "Re Open", PasswordHash: "h", Status: keeper.StatusPending,
		})
		if err != nil {
			return err
		}
		id = u.ID
		return tx.Enqueue(context.Background(), keeper.Message{ID: "m", To: email}, time.Now())
	})
	if err != nil {
		t.Fatalf("create user: got error %v, want none", err)
	}
	return id
}

func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: got error %v, want none", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("scan: got error %v, want none", err)
		}
		out = append(out, s)
	}
	return out
}

// TestFilesAreOwnerOnly checks that a new database and its WAL and shared-memory files
// are readable by their owner only, even in a folder that is open to others: they hold
// password hashes and unsent one-time links.
func TestFilesAreOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix mode bits")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keeper.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	defer db.Close()
	_, err = sqlite.NewKVStore(db).Create(context.Background(),
		[]keeper.Entry{{Key: "k", Value: "v"}})
	if err != nil {
		t.Fatalf("create: got error %v, want none", err)
	}

	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: got mode %04o, want 0600", filepath.Base(name), perm)
		}
	}
}
