package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkClosedLoop measures the generator and an in-process trivial server
// together, per request; allocs/op is the client's and the server's allocations.
func BenchmarkClosedLoop(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(okHandler))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Mode: ModeConcurrency, Concurrency: 50, Requests: b.N}

	b.ReportAllocs()
	b.ResetTimer()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	if f := res.Summary().Failed(); f != 0 {
		b.Fatalf("got %d failed requests, want none", f)
	}
}
