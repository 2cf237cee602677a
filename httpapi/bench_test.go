package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/sqlite"
)

// BenchmarkGetResult measures GET /api/result through the whole handler stack, access
// log included (written as JSON to io.Discard).
func BenchmarkGetResult(b *testing.B) {
	h, kv := newHandler(b)
	_, err := kv.Create(context.Background(), []keeper.Entry{{Key: "bench", Value: "value"}})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/result?key=bench", nil)

	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkPatchResult measures PATCH /api/result, a committed SQLite write per call.
func BenchmarkPatchResult(b *testing.B) {
	h, kv := newHandler(b)
	_, err := kv.Create(context.Background(), []keeper.Entry{{Key: "bench", Value: "value"}})
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := `{"value":"v` + strconv.Itoa(i) + `"}`
		r := httptest.NewRequest("PATCH", "/api/result?key=bench", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkGetUser measures GET /api/user/{id} of an active user through the whole
// handler stack, access log included, as a service reading profiles would call it.
func BenchmarkGetUser(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	log, err := logging.New(io.Discard, "json", slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	accounts, jwks := newAccounts(b, db, log)
	h := httpapi.New(httpapi.Options{
		Logger: log, KV: kvcache.New(sqlite.NewKVStore(db), 1<<20), Ready: db.Ping,
		MaxBodyBytes: 64 << 10, MaxValueBytes: 16 << 10, Accounts: accounts, JWKS: jwks,
	})

	store := sqlite.NewAccountStore(db)
	now := time.Now()
	err = store.Tx(ctx, func(tx keeper.AccountTx) error {
		u, err := tx.CreateUser(ctx, keeper.User{Email: "bench@example.com", Name: "Bench",
			PasswordHash: "x", Status: keeper.StatusPending, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		return tx.ActivateUser(ctx, u.ID, now)
	})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/user/1", nil)

	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
