package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/sqlite"
	"github.com/keeperhq/keeper/storetest"
)

// openTemp opens a fresh database file in the test's temporary folder and closes it when
// the test ends.
func openTemp(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"))
	if err != nil {
		t.Fatalf("open: got error %v, want none", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: got error %v, want none", err)
		}
	})
	return db
}

func TestKV(t *testing.T) {
	storetest.KV(t, func(t *testing.T) keeper.KVStore {
		return sqlite.NewKVStore(openTemp(t))
	})
}

func TestAccounts(t *testing.T) {
	storetest.Accounts(t, func(t *testing.T) keeper.AccountStore {
		return sqlite.NewAccountStore(openTemp(t))
	})
}

func TestOutbox(t *testing.T) {
	storetest.Outbox(t, func(t *testing.T) (keeper.AccountStore, keeper.Outbox) {
		db := openTemp(t)
		return sqlite.NewAccountStore(db), sqlite.NewOutbox(db)
	})
}
