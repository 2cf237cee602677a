package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite/lib"
)

// openWithProvider opens a new database and a goose provider over its migrations; the
// database closes when the test ends.
func openWithProvider(t *testing.T) (*DB, *goose.Provider) {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"))
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	t.Cleanup(func() { db.Close() })

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatalf("sub: got error %v, want none", err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db.writer, fsys,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatalf("provider: got error %v, want none", err)
	}
	return db, provider
}

// TestMigrationsDownAndUp checks that every migration can be undone and applied again.
func TestMigrationsDownAndUp(t *testing.T) {
	ctx := context.Background()
	_, provider := openWithProvider(t)

	steps := []struct {
		name string
		run  func() error
		want int64
	}{
		{"down", func() error { _, err := provider.DownTo(ctx, 0); return err }, 0},
		{"up", func() error { _, err := provider.Up(ctx); return err }, 2},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			t.Fatalf("%s: got error %v, want none", step.name, err)
		}
		version, err := provider.GetDBVersion(ctx)
		if err != nil || version != step.want {
			t.Fatalf("%s: got version %d (%v), want %d", step.name, version, err, step.want)
		}
	}
}

// TestEmailFoldMigration checks that migration 2 re-folds addresses stored under the
// Unicode folding of version 1, where the Kelvin sign matched k.
func TestEmailFoldMigration(t *testing.T) {
	ctx := context.Background()
	db, provider := openWithProvider(t)
	if _, err := provider.DownTo(ctx, 1); err != nil {
		t.Fatalf("down to 1: got error %v, want none", err)
	}

	_, err := db.writer.ExecContext(ctx, `INSERT INTO users (email, email_normalized, name,
		password_hash, status, created_at, updated_at) VALUES
		(?, ?, 'K', 'x', 'pending', 0, 0), (?, ?, 'A', 'x', 'pending', 0, 0)`,
		"\u212aATE@Example.com", "kate@example.com", " Ann@Example.COM\t", "ann@example.com")
	if err != nil {
		t.Fatalf("insert: got error %v, want none", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatalf("up: got error %v, want none", err)
	}

	rows, err := db.writer.QueryContext(ctx, `SELECT email_normalized FROM users ORDER BY id`)
	if err != nil {
		t.Fatalf("select: got error %v, want none", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("scan: got error %v, want none", err)
		}
		got = append(got, s)
	}
	want := []string{"\u212aate@example.com", "ann@example.com"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got normalized %q, want %q", got, want)
	}
}

// TestReaderIsQueryOnly checks that a write sent to the reader pool by mistake fails
// instead of competing with the writer.
func TestReaderIsQueryOnly(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"))
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	defer db.Close()

	_, err = db.reader.Exec(`INSERT INTO kv_entries (key, value, version) VALUES ('k', x'', 1)`)
	if code := resultCode(err); code&0xff != sqlite3.SQLITE_READONLY {
		t.Errorf("got error %v (code %d), want SQLITE_READONLY", err, code)
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct {
		prefix, want string
		ok           bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"ab", "ac", true},
		{"a\xff", "b", true},
		{"\xff\xff", "", false},
		{"\u00e9", "\u00ea", true},
	}
	for _, c := range cases {
		t.Run(c.prefix, func(t *testing.T) {
			got, ok := prefixEnd(c.prefix)
			if got != c.want || ok != c.ok {
				t.Errorf("got %q, %v, want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
