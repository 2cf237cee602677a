package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/sqlite"
)

// newHandler returns the full handler stack over a fresh SQLite file, for fuzzing and
// benchmarks that call it directly rather than over the network.
func newHandler(tb testing.TB) (http.Handler, keeper.KVStore) {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "k.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })

	log, err := logging.New(io.Discard, "json", slog.LevelInfo)
	if err != nil {
		tb.Fatal(err)
	}
	kv := kvcache.New(sqlite.NewKVStore(db), 1<<20)
	h := httpapi.New(httpapi.Options{
		Logger: log, KV: kv, Ready: db.Ping, MaxBodyBytes: 64 << 10, MaxValueBytes: 16 << 10,
	})
	return h, kv
}

// FuzzPostResult feeds arbitrary bodies to POST /api/result. Whatever the input, the
// answer is 201 or a client error with a problem document, and a refused body writes
// nothing.
func FuzzPostResult(f *testing.F) {
	for _, seed := range []string{
		`{"a":"1"}`, `{}`, `[]`, `{"a":1}`, `{"a":"1","a":"2"}`, `{"":"x"}`, "{\"\x01\":\"x\"}",
		`{"a":"1"} x`, `{"a":"\ud800"}`, `null`, "\xff", `{"a":"1",}`,
		`{"a":"1","\u0061":"2"}`, `{"\udc00":"x"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\\ud800"}`,
		`{"a":"\ud800\ud800"}`, `{"a":1e999}`,
	} {
		f.Add(seed)
	}
	h, kv := newHandler(f)

	f.Fuzz(func(t *testing.T, body string) {
		before, _ := kv.List(context.Background(), "", "", 2000)

		r := httptest.NewRequest("POST", "/api/result", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		after, _ := kv.List(context.Background(), "", "", 2000)
		switch {
		case w.Code == http.StatusCreated:
		case w.Code >= 400 && w.Code < 500:
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("status %d with Content-Type %q", w.Code, ct)
			}
			if len(after) != len(before) {
				t.Fatalf("refused body %q changed the key count from %d to %d",
					body, len(before), len(after))
			}
		default:
			t.Fatalf("body %q: status %d: %s", body, w.Code, w.Body)
		}
	})
}

// FuzzResultQuery feeds arbitrary query strings to GET /api/result: never a 5xx.
func FuzzResultQuery(f *testing.F) {
	for _, seed := range []string{"key=a", "", "key=", "key=%zz", "key=a&key=b", "x=1",
		"key=%FF", "key=%01", "key=" + strings.Repeat("k", 300)} {
		f.Add(seed)
	}
	h, kv := newHandler(f)
	if _, err := kv.Create(context.Background(), []keeper.Entry{{Key: "a", Value: "v"}}); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/api/result", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("query %q: status %d: %s", query, w.Code, w.Body)
		}
	})
}
