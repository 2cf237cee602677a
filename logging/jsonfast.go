package logging

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonHandler writes the same bytes as slog.NewJSONHandler, but encodes the common
// record itself: no groups, no handler attributes and only string, integer, boolean,
// duration and time values. That is what the access log writes once per request, and
// slog's general encoder is the largest cost of serving a cached read. Any other
// record goes to the slog handler, so the output never differs.
type jsonHandler struct {
	slog *slog.JSONHandler // writes through w, for the records the fast path refuses
	w    *lockedWriter
}

// lockedWriter serialises the fast path's writes with slog's, as slog serialises its
// own: slog's handler and the handlers derived from it lock their mutex and then this
// one, the fast path only this one.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newJSONHandler(w io.Writer, opts *slog.HandlerOptions) *jsonHandler {
	lw := &lockedWriter{w: w}
	return &jsonHandler{slog: slog.NewJSONHandler(lw, opts), w: lw}
}

func (h *jsonHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.slog.Enabled(ctx, level)
}

// WithAttrs and WithGroup hand over to slog for good: the fast path only serves a
// handler with neither.
func (h *jsonHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.slog.WithAttrs(attrs)
}

func (h *jsonHandler) WithGroup(name string) slog.Handler {
	return h.slog.WithGroup(name)
}

// Handle writes the record with one Write call, like slog.
func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := jsonBufPool.Get().(*[]byte)
	buf, ok := appendJSONRecord((*bp)[:0], r)
	if !ok {
		putJSONBuf(bp, buf)
		return h.slog.Handle(ctx, r)
	}
	_, err := h.w.Write(buf)
	putJSONBuf(bp, buf)
	return err
}

var jsonBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

func putJSONBuf(bp *[]byte, buf []byte) {
	// Like slog, keep only smaller buffers so that one huge line does not pin memory.
	const maxBufferSize = 16 << 10
	if cap(buf) > maxBufferSize {
		return
	}
	*bp = buf[:0]
	jsonBufPool.Put(bp)
}

// appendJSONRecord appends r to buf as slog's JSONHandler (no options but the level)
// would format it, newline included. It reports false, and the caller must use slog,
// for a record it does not handle: a group, a value of another kind, a time whose
// year has not four digits, or an attribute slog would leave out. Values are resolved
// here and again by slog on the way back, so a LogValuer in a refused record is
// called twice.
func appendJSONRecord(buf []byte, r slog.Record) ([]byte, bool) {
	buf = append(buf, '{')
	if !r.Time.IsZero() {
		if !timeFits(r.Time) {
			return buf, false
		}
		buf = append(buf, `"time":"`...)
		buf = r.Time.AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, `",`...)
	}
	buf = append(buf, `"level":`...)
	switch r.Level {
	case slog.LevelDebug:
		buf = append(buf, `"DEBUG"`...)
	case slog.LevelInfo:
		buf = append(buf, `"INFO"`...)
	case slog.LevelWarn:
		buf = append(buf, `"WARN"`...)
	case slog.LevelError:
		buf = append(buf, `"ERROR"`...)
	default:
		buf = appendJSONString(buf, r.Level.String())
	}
	buf = append(buf, `,"msg":`...)
	buf = appendJSONString(buf, r.Message)

	ok := true
	r.Attrs(func(a slog.Attr) bool {
		buf, ok = appendJSONAttr(buf, a)
		return ok
	})
	if !ok {
		return buf, false
	}
	return append(buf, '}', '\n'), true
}

func appendJSONAttr(buf []byte, a slog.Attr) ([]byte, bool) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() == slog.KindString && v.String() == "" {
		// slog may elide this one as an empty Attr; leave the decision to slog.
		return buf, false
	}
	switch v.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
	case slog.KindTime:
		if !timeFits(v.Time()) {
			return buf, false
		}
	default:
		return buf, false
	}
	buf = append(buf, ',')
	buf = appendJSONString(buf, a.Key)
	buf = append(buf, ':')
	switch v.Kind() {
	case slog.KindString:
		buf = appendJSONString(buf, v.String())
	case slog.KindInt64:
		buf = strconv.AppendInt(buf, v.Int64(), 10)
	case slog.KindUint64:
		buf = strconv.AppendUint(buf, v.Uint64(), 10)
	case slog.KindBool:
		buf = strconv.AppendBool(buf, v.Bool())
	case slog.KindDuration:
		buf = strconv.AppendInt(buf, int64(v.Duration()), 10)
	case slog.KindTime:
		buf = append(buf, '"')
		buf = v.Time().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	}
	return buf, true
}

// timeFits reports whether slog formats t without an error: RFC 3339 wants a year of
// exactly four digits, and for any other slog writes an error string into the line.
func timeFits(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y < 10000
}

// appendJSONString appends s quoted and escaped exactly as slog's JSON handler does:
// encoding/json's rules without HTML escaping, so ", \ and control characters are
// escaped, invalid UTF-8 becomes \ufffd and U+2028 and U+2029 are escaped.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

const hexDigits = "0123456789abcdef"
