package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/keeperhq/keeper"
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
