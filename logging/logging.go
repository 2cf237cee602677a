// Package logging builds Keeper's structured logger and carries the request id through
// contexts, so that every line logged while serving a request names that request.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"
)

type ctxKey struct{}

// WithRequestID returns a copy of ctx that carries the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id that ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// ParseLevel turns debug, info, warn or error into a slog level.
func ParseLevel(s string) (slog.Level, error) {
	// slog would also take offsets such as "info+8", which silently hide whole levels.
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// New returns a logger writing text or json lines at the given level. Every record
// logged with a context that carries a request id gets a request_id attribute.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}

	var h slog.Handler
	switch strings.ToLower(format) {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		// Writes exactly what slog.NewJSONHandler writes, only faster.
		h = newJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	f, _ := w.(flusher)
	return slog.New(requestIDHandler{h, f}), nil
}

// flusher is a writer that can push out what it has buffered, like BufferedWriter.
type flusher interface{ Flush() error }

// requestIDHandler adds the context's request id to each record, and flushes a
// buffering writer after warnings and errors so that they are never held back.
type requestIDHandler struct {
	slog.Handler
	out flusher // nil when the writer does not buffer
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	err := h.Handler.Handle(ctx, r)
	if h.out != nil && r.Level >= slog.LevelWarn {
		_ = h.out.Flush()
	}
	return err
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name), h.out}
}

// MaskEmail keeps the first character of the local part and the domain, so that logs
// can tell messages apart without holding full addresses: "a***@example.com".
func MaskEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "***"
	}
	// The first character, not byte: half of a multi-byte character would put invalid
	// UTF-8 into the log.
	_, size := utf8.DecodeRuneInString(email)
	return email[:size] + "***" + email[at:]
}
