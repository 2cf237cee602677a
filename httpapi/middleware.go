package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

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
