// Package storetest is the one test suite that every storage engine of Keeper passes. It
// speaks only through the domain interfaces (keeper.KVStore, keeper.AccountStore,
// keeper.Outbox), so the SQLite store runs it today and a PostgreSQL store can run the
// same cases later:
//
//	func TestKV(t *testing.T) {
//		storetest.KV(t, func(t *testing.T) keeper.KVStore { return newStore(t) })
//	}
//
// Each open function must return a store on a fresh, empty database that lives until the
// test ends. Beyond the interfaces' doc comments, the suite holds every engine to these
// choices: times come back in UTC at microsecond precision; Create refuses a batch that
// names a key twice with duplicate_key; CreateToken for a missing user returns
// user_not_found; ActivateUser leaves a disabled user disabled; the outbox answers an
// unknown message id with not_found and implements OutboxInspector.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
)

// OutboxInspector is what the Outbox suite needs besides keeper.Outbox: a way to look at
// messages that are no longer pending.
type OutboxInspector interface {
	// Get returns one message with its delivery record, or not_found.
	Get(ctx context.Context, outboxID int64) (keeper.OutboxMessage, error)

	// List returns every message, oldest first.
	List(ctx context.Context) ([]keeper.OutboxMessage, error)
}

// base is a fixed moment, at microsecond precision, from which the cases count time.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 891011000, time.UTC)

// errPlanned is returned by functions given to Tx to make it roll back.
var errPlanned = errors.New("planned failure")

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code keeper.Code) {
	t.Helper()
	if !keeper.HasCode(err, code) {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

// noError fails the test when err is not nil.
func noError(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: got error %v, want none", what, err)
	}
}

// wantTime fails the test unless got is the same instant as want and in UTC.
func wantTime(t *testing.T, name string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: got %v, want %v", name, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s: got location %v, want UTC", name, got.Location())
	}
}

// canceled returns a context that is already canceled.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
