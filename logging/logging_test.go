package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keeperhq/keeper/logging"
)

func TestRequestIDOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	ctx := logging.WithRequestID(context.Background(), "req-1")

	log.InfoContext(ctx, "one")
	log.With("k", "v").WarnContext(ctx, "two")
	log.Info("three, no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"req-1", "req-1", ""}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		got, _ := rec["request_id"].(string)
		if got != want[i] {
			t.Errorf("line %d: got request_id %q, want %q", i, got, want[i])
		}
	}
}

func TestNewRefusesBadFormat(t *testing.T) {
	if _, err := logging.New(&bytes.Buffer{}, "xml", slog.LevelInfo); err == nil {
		t.Error("format xml: got no error")
	}
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Error("level loud: got no error")
	}
}

func TestMaskEmail(t *testing.T) {
	cases := map[string]string{
		"ada@example.com":      "a***@example.com",
		"a@b.c":                "a***@b.c",
		"not-an-address":       "***",
		"@example.com":         "***",
		"\u00fc24@example.com": "\u00fc***@example.com",
		"\xff@example.com":     "\xff***@example.com",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			if got := logging.MaskEmail(in); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// syncBuffer lets the test read what the flushing goroutine wrote.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBufferedWriter(t *testing.T) {
	t.Run("holds info until flushed", func(t *testing.T) {
		out := &syncBuffer{}
		bw := logging.NewBufferedWriter(out, 4096, time.Hour)
		log, _ := logging.New(bw, "text", slog.LevelInfo)

		log.Info("quiet")
		if out.String() != "" {
			t.Fatalf("an info line went out before a flush: %q", out.String())
		}
		if err := bw.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "quiet") {
			t.Errorf("Close did not flush: %q", out.String())
		}
	})

	t.Run("warnings go out at once", func(t *testing.T) {
		out := &syncBuffer{}
		bw := logging.NewBufferedWriter(out, 4096, time.Hour)
		defer bw.Close()
		log, _ := logging.New(bw, "text", slog.LevelInfo)

		log.Info("first")
		log.Warn("second")
		got := out.String()
		if !strings.Contains(got, "first") || !strings.Contains(got, "second") {
			t.Errorf("after a warning, got %q, want both lines", got)
		}
	})

	t.Run("the interval flushes", func(t *testing.T) {
		out := &syncBuffer{}
		bw := logging.NewBufferedWriter(out, 4096, 10*time.Millisecond)
		defer bw.Close()
		log, _ := logging.New(bw, "text", slog.LevelInfo)

		log.Info("later")
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "later") {
			if time.Now().After(deadline) {
				t.Fatal("the periodic flush never wrote the line")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
