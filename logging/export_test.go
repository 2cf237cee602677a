package logging

import (
	"io"
	"log/slog"
)

// AppendJSONRecord is the fast path's encoder, so that tests can tell whether it took
// a record.
var AppendJSONRecord = appendJSONRecord

// NewJSONHandler returns the handler New builds for format json, without the request
// id layer.
func NewJSONHandler(w io.Writer, level slog.Level) slog.Handler {
	return newJSONHandler(w, &slog.HandlerOptions{Level: level})
}
