package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/logging"
)

// requestState is what the middleware learns about a request while it is served.
type requestState struct {
	errCode keeper.Code // code of the problem sent, if any
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(stateKey{}).(*requestState)
	return s
}

// idGenerator makes request ids: a random prefix per process and a counter, which is
// unique within a deployment and costs no system call per request.
type idGenerator struct {
	prefix string
	n      atomic.Uint64
}

func newIDGenerator() *idGenerator {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return &idGenerator{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *idGenerator) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID reports whether a client-sent X-Request-Id is safe to adopt: short and
// made of characters that cannot break a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// requestID gives every request an id, taken from a valid X-Request-Id header or made
// here, puts it in the context for logs and echoes it in the response.
func requestID(next http.Handler) http.Handler {
	gen := newIDGenerator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = gen.next()
		}
		w.Header().Set("X-Request-Id", id)

		ctx := logging.WithRequestID(r.Context(), id)
		ctx = context.WithValue(ctx, stateKey{}, &requestState{})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one line per request when it completes: method, route pattern,
// status, bytes, duration and, for failures, the error code. The request id comes from
// the context.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)

			ctx := r.Context()
			h := log.Handler()
			if !h.Enabled(ctx, slog.LevelInfo) {
				return
			}

			// The record goes straight to the handler: Logger.LogAttrs would also
			// capture the caller's program counter, which an access line never shows
			// and which costs a stack walk per request.
			rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
			rec.AddAttrs(
				slog.String("method", r.Method),
				slog.String("route", r.Pattern),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
			)
			if s := stateFrom(ctx); s != nil && s.errCode != "" {
				rec.AddAttrs(slog.String("code", string(s.errCode)))
			}
			_ = h.Handle(ctx, rec)
		})
	}
}

// recoverPanics turns a panic in a handler into a logged 500, unless the response has
// already started, in which case the connection is dropped by re-panicking with
// http.ErrAbortHandler.
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"panic", v, "stack", string(debug.Stack()))

				if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
					panic(http.ErrAbortHandler)
				}
				sendProblem(w, r, http.StatusInternalServerError,
					&keeper.Error{Code: keeper.CodeInternal})
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// limitBody caps every request body at n bytes; reading past it fails with an error
// that decoding turns into body_too_large.
func limitBody(log *slog.Logger, n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				writeError(w, r, log, keeper.Errorf(keeper.CodeBodyTooLarge,
					"the body is %d bytes; the limit is %d", r.ContentLength, n))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// requireCanonicalPath answers a path that is not in canonical form (an empty, "." or
// ".." segment) with a 404 problem. Left alone, ServeMux would answer it with an HTML
// redirect to the cleaned path, even for a write, which the client would have to
// repeat. The check mirrors ServeMux's own, so every path it passes is one the mux
// routes without redirecting; a clean path costs no allocation.
func requireCanonicalPath(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.RequestURI == "*" {
				writeError(w, r, log, keeper.Errorf(keeper.CodeInvalidRequest,
					"the target * is only for OPTIONS"))
				return
			}
			if p := r.URL.EscapedPath(); !canonicalPath(p) {
				writeError(w, r, log, keeper.Errorf(keeper.CodeNotFound,
					"the path %s is not in canonical form (it has an empty, . or .. segment)",
					keeper.Quote(p)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// canonicalPath reports whether p is what ServeMux cleans it to: rooted, with no
// empty, "." or ".." segment, a trailing slash allowed.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p) // returns p itself, unallocated, when p is clean
	if clean == p {
		return true
	}
	return clean != "/" && len(p) == len(clean)+1 && p[len(p)-1] == '/' &&
		strings.HasPrefix(p, clean)
}

// busyRetryAfter is the Retry-After, in seconds, of a request that waited in vain for
// its share of the body budget.
const busyRetryAfter = "5"

// bodyStep is both what a request with a body takes from the budget before its handler
// runs and the most that one Read of the body may take. It is small so that a client
// that declares a large body and then sends nothing holds little: charging the declared
// length up front let a few stalled connections hold the whole budget until the read
// timeout, and turn away every other body meanwhile.
const bodyStep = 32 << 10

// limitBodiesInFlight bounds the bytes of request bodies being served at once to
// budget, because each body is held in memory several times over (read, decoded,
// stored, echoed). A request is charged for the bytes of its body as they are read,
// not as declared, so that a client holds only what it has actually sent: before its
// handler runs it takes a small share (bodyStep, or less for a shorter declared body),
// and each Read of the body first takes what it may return beyond what the request
// already holds, up to its Content-Length (maxBody when the length is unknown). All of
// it is given back when the handler returns. While the budget is spent a request waits,
// in arrival order, for up to wait; then it is answered 503 with Retry-After, by the
// middleware itself, whatever the handler makes of the failed read. A request whose
// context ends while it waits is ended as a client abort; note that HTTP/1.1 notices a
// departed client only once the body is read, so there the wait runs out instead.
// Requests without a body pass straight through, taking no lock.
func limitBodiesInFlight(log *slog.Logger, budget, maxBody int64,
	wait time.Duration) func(http.Handler) http.Handler {
	return limitBodiesInFlightStep(log, budget, maxBody, bodyStep, wait)
}

// limitBodiesInFlightStep is limitBodiesInFlight with the step as a parameter, for
// tests.
func limitBodiesInFlightStep(log *slog.Logger, budget, maxBody, step int64,
	wait time.Duration) func(http.Handler) http.Handler {
	sem := semaphore.NewWeighted(budget)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := bodyWeight(r, maxBody)
			if limit == 0 {
				next.ServeHTTP(w, r)
				return
			}
			limit = min(limit, budget) // bytes past the budget are read uncharged
			reserve := min(limit, step)
			if !sem.TryAcquire(reserve) && !waitForBudget(w, r, log, sem, reserve, wait) {
				return
			}
			body := &budgetedBody{ReadCloser: r.Body, sem: sem, log: log, w: w, r: r,
				wait: wait, limit: limit, step: step, reserve: reserve, held: reserve}
			defer func() { sem.Release(body.held) }()

			r.Body = body
			next.ServeHTTP(&budgetedWriter{ResponseWriter: w, body: body}, r)
			if body.err != nil {
				// The handler answered the failed read as it saw fit, into the void;
				// the log keeps the code of the answer actually sent.
				if state := stateFrom(r.Context()); state != nil {
					state.errCode = body.errCode
				}
			}
		})
	}
}

// bodyWeight is the most a request's body can count against the budget: its declared
// length, capped at maxBody; maxBody when the length is unknown (chunked); 0 without a
// body.
func bodyWeight(r *http.Request, maxBody int64) int64 {
	switch {
	case r.ContentLength > 0:
		return min(r.ContentLength, maxBody)
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		return maxBody
	}
	return 0
}

// budgetedBody is a request body that takes from the budget the bytes each Read may
// return before reading them, so that a stalled client holds at most what it has sent
// plus one step. When a Read cannot get its share within the wait, the body answers
// the request itself (503, or a client abort) through w, which the handler no longer
// reaches, and the Read and all later ones fail.
type budgetedBody struct {
	io.ReadCloser
	sem *semaphore.Weighted
	log *slog.Logger
	w   http.ResponseWriter // the real one, for the answer to a failed wait
	r   *http.Request
	// wait is how long a Read waits for budget; limit the most the body is charged;
	// step the most one Read takes; reserve what the request keeps until it ends.
	wait                 time.Duration
	limit, step, reserve int64
	held, used           int64 // taken from the budget; returned by Read so far
	err                  error // set once a wait for budget has failed
	errCode              keeper.Code
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.used < b.limit {
		want := min(int64(len(p)), b.step, b.limit-b.used)
		p = p[:want] // a Read may return less than asked; the caller reads again
		if need := b.used + want - b.held; need > 0 {
			if !b.sem.TryAcquire(need) && !waitForBudget(b.w, b.r, b.log, b.sem, need, b.wait) {
				if state := stateFrom(b.r.Context()); state != nil {
					b.errCode = state.errCode
				}
				b.err = &keeper.Error{Code: keeper.CodeServiceUnavailable,
					Message: "the server is busy receiving other request bodies; retry later"}
				return 0, b.err
			}
			b.held += need
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.used += int64(n)
	// Give back what was taken for bytes that did not come, keeping the reserve.
	if keep := min(b.limit, max(b.used, b.reserve)); b.held > keep {
		b.sem.Release(b.held - keep)
		b.held = keep
	}
	return n, err
}

// budgetedWriter passes the handler's response through until the body has answered
// the request itself, and discards it from then on.
type budgetedWriter struct {
	http.ResponseWriter
	body    *budgetedBody
	discard http.Header
}

func (w *budgetedWriter) Header() http.Header {
	if w.body.err == nil {
		return w.ResponseWriter.Header()
	}
	if w.discard == nil {
		w.discard = http.Header{}
	}
	return w.discard
}

func (w *budgetedWriter) WriteHeader(code int) {
	if w.body.err == nil {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *budgetedWriter) Write(p []byte) (int, error) {
	if w.body.err != nil {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *budgetedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// waitForBudget waits up to wait for n bytes of the body budget and reports whether it
// got them. When it did not, it has answered the request: as a client abort if the
// client left first, otherwise 503 with Retry-After.
func waitForBudget(w http.ResponseWriter, r *http.Request, log *slog.Logger,
	sem *semaphore.Weighted, n int64, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	err := sem.Acquire(ctx, n)
	switch {
	case err == nil:
		return true
	case r.Context().Err() != nil:
		writeError(w, r, log, fmt.Errorf("wait for body budget: %w", r.Context().Err()))
	default:
		w.Header().Set("Retry-After", busyRetryAfter)
		writeError(w, r, log, &keeper.Error{Code: keeper.CodeServiceUnavailable,
			Message: "the server is busy receiving other request bodies; retry later",
			Err:     fmt.Errorf("waited %s for %d bytes of body budget: %w", wait, n, err)})
	}
	return false
}
