package logging_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper/logging"
)

// recordTime is the fixed time of the records in these tests, with nanoseconds that
// RFC3339Nano trims to a shorter fraction.
var recordTime = time.Date(2026, 12, 4, 7, 43, 3, 120045000, time.UTC)

// tricky are strings that exercise every escaping rule of slog's JSON encoder.
var tricky = []string{
	"",
	"plain",
	`quote " and backslash \`,
	"\n\r\t\b\f\x00\x01\x1f\x7f",
	"<script>&amp;</script>",
	"line\u2028separator\u2029paragraph",
	"\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80",
	"ünïcödé ✓ 日本語 😀",
	"\ufffd replacement",
	strings.Repeat("long line with \"quotes\" and\ttabs ", 1000),
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// compare handles r with slog's JSON handler and with the fast one and fails unless
// both wrote the same bytes, the fast one in a single Write. It returns whether the
// fast path encoded r itself.
func compare(t testing.TB, r slog.Record) bool {
	t.Helper()
	ctx := context.Background()
	var want bytes.Buffer
	slogHandler := slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug})
	if err := slogHandler.Handle(ctx, r.Clone()); err != nil {
		t.Fatal(err)
	}
	var got countingWriter
	if err := logging.NewJSONHandler(&got, slog.LevelDebug).Handle(ctx, r.Clone()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("output differs from slog\n got: %q\nwant: %q", got.Bytes(), want.Bytes())
	}
	if got.writes != 1 {
		t.Fatalf("got %d writes, want 1", got.writes)
	}
	_, fast := logging.AppendJSONRecord(nil, r.Clone())
	return fast
}

func record(tm time.Time, level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(tm, level, msg, 0)
	r.AddAttrs(attrs...)
	return r
}

// info is an info record with message "m" at recordTime, the shape most cases share.
func info(attrs ...slog.Attr) slog.Record {
	return record(recordTime, slog.LevelInfo, "m", attrs...)
}

type stringer string

func (s stringer) LogValue() slog.Value { return slog.StringValue(string(s)) }

type grouper struct{}

func (grouper) LogValue() slog.Value { return slog.GroupValue(slog.Int("a", 1)) }

func TestJSONFastPathMatchesSlog(t *testing.T) {
	zone := time.FixedZone("odd", -(3*3600 + 30*60))
	cases := map[string]slog.Record{
		"access line": record(recordTime, slog.LevelInfo, "request",
			slog.String("method", "GET"), slog.String("route", "GET /v1/secrets/{name}"),
			slog.Int("status", 200), slog.Int64("bytes", 1234),
			slog.Duration("duration", 1234567*time.Nanosecond), slog.String("code", "not_found"),
			slog.String("request_id", "req-1")),
		"no attrs":  record(recordTime, slog.LevelInfo, "hello"),
		"zero time": record(time.Time{}, slog.LevelInfo, "no time", slog.Int("n", 1)),
		"whole second": record(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			slog.LevelInfo, "m"),
		"local zone":  record(recordTime.In(zone), slog.LevelInfo, "m"),
		"monotonic":   record(time.Now(), slog.LevelInfo, "m"),
		"debug":       record(recordTime, slog.LevelDebug, "m"),
		"warn":        record(recordTime, slog.LevelWarn, "m"),
		"error":       record(recordTime, slog.LevelError, "m"),
		"odd levels":  record(recordTime, slog.LevelInfo+2, "m", slog.Int("x", 1)),
		"below debug": record(recordTime, slog.LevelDebug-3, "m"),
		"above error": record(recordTime, slog.LevelError+8, "m"),
		"integer extremes": info(slog.Int64("min", -1<<63), slog.Int64("max", 1<<63-1),
			slog.Uint64("umax", 1<<64-1), slog.Int("zero", 0)),
		"bools": info(slog.Bool("t", true), slog.Bool("f", false)),
		"durations": info(slog.Duration("neg", -time.Second), slog.Duration("zero", 0),
			slog.Duration("big", 1<<62)),
		"time values": info(slog.Time("at", recordTime.In(zone)),
			slog.Time("zero", time.Time{}), slog.Time("now", time.Now())),
		"empty key":      info(slog.Int("", 5), slog.String("", "x")),
		"duplicate keys": info(slog.Int("k", 1), slog.Int("k", 2), slog.String("msg", "again")),
		"log valuer":     info(slog.Any("v", stringer("resolved"))),
		"any of simple kind": info(slog.Any("s", "str"), slog.Any("i", 3),
			slog.Any("d", time.Second)),
	}
	for i, s := range tricky {
		cases["tricky message "+string(rune('a'+i))] = record(recordTime, slog.LevelInfo, s)
		if s != "" { // an empty key with an empty value is left to slog: see the fallback test
			cases["tricky key and value "+string(rune('a'+i))] = info(slog.String(s, s))
		}
		cases["tricky value "+string(rune('a'+i))] = info(slog.String("k", s))
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			if !compare(t, r) {
				t.Error("the fast path refused the record")
			}
		})
	}
}

func TestJSONFallbackMatchesSlog(t *testing.T) {
	cases := map[string]slog.Record{
		"group":           info(slog.Int("a", 1), slog.Group("g", slog.Int("b", 2))),
		"inline group":    info(slog.Group("", slog.Int("b", 2))),
		"float":           info(slog.Float64("f", 0.1)),
		"error":           info(slog.Any("err", errors.New("boom"))),
		"struct":          info(slog.Any("s", struct{ A int }{1})),
		"nil":             info(slog.Any("nil", nil)),
		"empty attr":      info(slog.Attr{}, slog.Int("after", 1)),
		"empty key value": info(slog.String("", "")),
		"valuer to group": info(slog.Any("g", grouper{})),
		"year 10000": record(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			slog.LevelInfo, "m"),
		"negative year":   record(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m"),
		"time attr range": info(slog.Time("t", time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC))),
		"late unsupported": info(slog.String("a", "b"), slog.Int("c", 1),
			slog.String("d", "e"), slog.Bool("f", true), slog.Duration("g", 1),
			slog.String("h", "i"), slog.Float64("late", 1.5)),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			if compare(t, r) {
				t.Error("the fast path took a record it should leave to slog")
			}
		})
	}
}

// TestJSONHandlerAttrsAndGroups checks that a handler with attributes or groups, which
// the fast path never serves, still writes what slog writes.
func TestJSONHandlerAttrsAndGroups(t *testing.T) {
	derive := []func(slog.Handler) slog.Handler{
		func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("k", "v")})
		},
		func(h slog.Handler) slog.Handler { return h.WithGroup("g") },
		func(h slog.Handler) slog.Handler {
			return h.WithGroup("g").WithAttrs([]slog.Attr{slog.Int("n", 1)})
		},
		func(h slog.Handler) slog.Handler { return h.WithAttrs(nil) },
	}
	for i, d := range derive {
		var want, got bytes.Buffer
		r := info(slog.String("a", "b"))
		_ = d(slog.NewJSONHandler(&want, nil)).Handle(context.Background(), r.Clone())
		_ = d(logging.NewJSONHandler(&got, slog.LevelInfo)).Handle(context.Background(), r.Clone())
		if got.String() != want.String() {
			t.Errorf("case %d:\n got: %q\nwant: %q", i, got.String(), want.String())
		}
	}
}

// TestNewJSONMatchesSlog goes through New: the request id is appended, level
// filtering stays and warnings are flushed.
func TestNewJSONMatchesSlog(t *testing.T) {
	var want bytes.Buffer
	ref := slog.New(slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var got bytes.Buffer
	bw := logging.NewBufferedWriter(&got, 1<<16, time.Hour)
	defer bw.Close()
	log, err := logging.New(bw, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	ctx := logging.WithRequestID(context.Background(), "req-\"7\"")

	rec := record(recordTime, slog.LevelInfo, "request", slog.String("method", "GET"),
		slog.Int("status", 200))
	_ = log.Handler().Handle(ctx, rec.Clone())
	rec.AddAttrs(slog.String("request_id", "req-\"7\""))
	_ = ref.Handler().Handle(ctx, rec)

	log.DebugContext(ctx, "filtered out")
	if log.Handler().Enabled(ctx, slog.LevelDebug) {
		t.Error("debug is enabled at level info")
	}
	if got.Len() != 0 {
		t.Errorf("an info line was written before a flush: %q", got.String())
	}

	warn := record(recordTime, slog.LevelWarn, "careful", slog.Int("n", 1))
	_ = log.Handler().Handle(context.Background(), warn.Clone())
	_ = ref.Handler().Handle(context.Background(), warn)

	if got.String() != want.String() {
		t.Errorf("after the warning:\n got: %q\nwant: %q", got.String(), want.String())
	}
}

func FuzzJSONFastPath(f *testing.F) {
	for _, s := range tricky {
		// The fuzzer minimises every input it finds interesting, which takes long for a
		// huge one; a line of a few hundred bytes is long enough here.
		s = s[:min(len(s), 300)]
		f.Add(s, s, s, int64(-1), uint64(1), true, int64(time.Second), int64(1700000000),
			int64(123456789), int(0))
	}
	f.Add("request", "method", "GET", int64(200), uint64(1234), false, int64(1500), int64(0),
		int64(0), int(4))
	f.Add("\u2028", "\xed\xa0\x80", "\x00", int64(-1<<63), uint64(1<<64-1), false, int64(-1),
		int64(-62135596800), int64(0), int(-4))
	f.Fuzz(func(t *testing.T, msg, key, val string, i int64, u uint64, b bool, d, sec, nsec int64,
		level int) {
		at := time.Unix(sec, nsec)
		if level%2 == 0 {
			at = at.UTC()
		}
		r := record(recordTime, slog.Level(level), msg,
			slog.String(key, val),
			slog.Int64("i", i),
			slog.Uint64(val, u),
			slog.Bool(key, b),
			slog.Duration("d", time.Duration(d)),
			slog.Time(key+val, at),
			slog.String("", key),
		)
		compare(t, r)
	})
}

func BenchmarkAccessLine(b *testing.B) {
	r := record(time.Now(), slog.LevelInfo, "request",
		slog.String("method", "GET"), slog.String("route", "GET /v1/secrets/{name}"),
		slog.Int("status", 200), slog.Int64("bytes", 1234),
		slog.Duration("duration", 183*time.Microsecond), slog.String("request_id",
			"01JDQ4Z8W2N5P3K7"))
	handlers := []struct {
		name string
		h    slog.Handler
	}{
		{"slog", slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})},
		{"fast", logging.NewJSONHandler(io.Discard, slog.LevelInfo)},
	}
	ctx := context.Background()
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = h.h.Handle(ctx, r)
			}
		})
	}
}

// TestJSONConcurrentWrites logs through the fast path and a derived slog handler at
// once into a writer that is not safe for concurrent use; the race detector and the
// line count check that the two paths share one lock.
func TestJSONConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	h := logging.NewJSONHandler(&buf, slog.LevelInfo)
	derived := h.WithAttrs([]slog.Attr{slog.String("k", "v")})
	const n = 200
	done := make(chan struct{})
	for _, h := range []slog.Handler{h, derived} {
		go func() {
			defer func() { done <- struct{}{} }()
			for range n {
				_ = h.Handle(context.Background(), info(slog.Int("n", 1)))
			}
		}()
	}
	<-done
	<-done
	if got := strings.Count(buf.String(), "\n"); got != 2*n {
		t.Errorf("got %d lines, want %d", got, 2*n)
	}
}
