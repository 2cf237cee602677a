package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCanonicalPath holds canonicalPath to ServeMux's own judgement: a path passes
// exactly when the mux would route it without redirecting to a cleaned path.
func TestCanonicalPath(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) {})

	for _, p := range []string{
		"/", "/api/result", "/api/result/", "/problems/not_found", "/a%2F..%2Fb",
		"/%2E%2E/x", "//", "//api/result", "/api//result", "/api/result//",
		"/api/./result", "/api/x/../result", "/api/result/.", "/api/result/..", "/.",
		"/..", "/./", "/a/b/./",
	} {
		t.Run(p, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://keeper.test"+p, nil)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			muxRoutes := w.Code == http.StatusOK

			if got := canonicalPath(r.URL.EscapedPath()); got != muxRoutes {
				t.Errorf("canonicalPath(%q): got %v, want %v (the mux answers %d)",
					r.URL.EscapedPath(), got, muxRoutes, w.Code)
			}
		})
	}
	if canonicalPath("") || canonicalPath("api/result") {
		t.Error("a path that is empty or not rooted passes")
	}
}

// nopWriter is a ResponseWriter that costs nothing, for counting allocations.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// TestBodylessRequestsCostNothing keeps the read path as fast as it was: a request
// without a body passes the path check and the body budget without allocating.
func TestBodylessRequestsCostNothing(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		requireCanonicalPath(log),
		limitBodiesInFlight(log, 1<<20, 1<<20, time.Second),
	)
	r := httptest.NewRequest("GET", "/api/result?key=a", nil)
	w := nopWriter{h: http.Header{}}

	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("allocations per GET: got %v, want 0", n)
	}
}

// TestBodyBudgetClientGone covers what an HTTP/1.1 test client cannot produce: the
// request's context ending while it waits for the budget (HTTP/2 cancels it when the
// client resets the stream; HTTP/1.1 notices a departed client only once the body is
// read). The request must end as a client abort, not as a 503 or a 500.
func TestBodyBudgetClientGone(t *testing.T) {
	var logs syncLog
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	inside, release := make(chan struct{}), make(chan struct{})
	served := false
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			close(inside)
			<-release
			return
		}
		served = true
	})
	h := chain(app, requestID, accessLog(log), limitBodiesInFlight(log, 10, 100, time.Minute))

	// The first request holds the whole budget of 10 bytes.
	holder := httptest.NewRequest("POST", "/api/result", strings.NewReader("0123456789"))
	holder.Header.Set("X-Hold", "yes")
	held := make(chan struct{})
	go func() {
		defer close(held)
		h.ServeHTTP(httptest.NewRecorder(), holder)
	}()
	<-inside

	// The second one waits for it, and its client has gone.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/api/result", strings.NewReader("x")).WithContext(ctx)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	close(release)
	<-held

	if served {
		t.Error("the abandoned request was served")
	}
	if w.Code != statusClientClosed {
		t.Errorf("status: got %d, want %d", w.Code, statusClientClosed)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"client closed request"`, `"status":499`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("an abandoned request is logged as an error:\n%s", out)
	}
}

// syncLog is a log sink safe for the goroutines of a test.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestBodyBudgetChargedAsRead follows the budget through the reads of a body, with a
// step of 10 bytes: a request is charged what its handler has read, not what it
// declared; a read that cannot get its share in time is answered 503 with Retry-After
// by the middleware, whatever the handler makes of the failed read; and everything is
// given back when the handler returns.
func TestBodyBudgetChargedAsRead(t *testing.T) {
	var logs syncLog
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	inside, release := make(chan struct{}), make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			// Declared 1000, read 90: the request holds 90 of the budget of 100.
			if _, err := io.ReadFull(r.Body, make([]byte, 90)); err != nil {
				t.Error(err)
			}
			close(inside)
			<-release
			return
		}
		if _, err := readBody(r); err != nil {
			writeError(w, r, log, err) // a failed read is invalid_request here
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	h := chain(app, requestID, accessLog(log),
		limitBodiesInFlightStep(log, 100, 1000, 10, 200*time.Millisecond))
	body := func(n int) *strings.Reader { return strings.NewReader(strings.Repeat("x", n)) }

	holder := httptest.NewRequest("POST", "/api/result", body(1000))
	holder.Header.Set("X-Hold", "yes")
	held := make(chan struct{})
	go func() {
		defer close(held)
		h.ServeHTTP(httptest.NewRecorder(), holder)
	}()
	<-inside

	// 10 bytes are left: a body of 10 fits, one of 30 runs out after its first step.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/result", body(10)))
	if w.Code != http.StatusCreated {
		t.Errorf("a body that fits the rest of the budget: got %d %s, want 201", w.Code,
			w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/result", body(30)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), `"code":"service_unavailable"`) ||
		strings.Contains(w.Body.String(), "invalid_request") {
		t.Errorf("a body that outgrows the budget: got %d, Retry-After %q, %s; want 503 "+
			"service_unavailable with Retry-After", w.Code, w.Header().Get("Retry-After"),
			w.Body)
	}
	if out := logs.String(); !strings.Contains(out, `"code":"service_unavailable"`) ||
		strings.Contains(out, `"code":"invalid_request"`) {
		t.Errorf("the access log does not record the 503 that was sent:\n%s", out)
	}

	// Once the holder is done, the whole budget is free again.
	close(release)
	<-held
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/result", body(100)))
	if w.Code != http.StatusCreated {
		t.Errorf("a body of the whole budget after the others: got %d %s, want 201",
			w.Code, w.Body)
	}
}
