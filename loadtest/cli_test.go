package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runMain calls Main and returns its exit code and outputs.
func runMain(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestMainRejectsBadInputWithOneLine(t *testing.T) {
	srv := newServer(t, okHandler)
	u := srv.URL + "/"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"-n", "5"}, "missing URL"},
		{"two URLs", []string{"-n", "5", u, u}, "want one URL, got 2"},
		{"unknown flag", []string{"-bogus", u}, "flag provided but not defined: -bogus"},
		{"bad flag value", []string{"-n", "many", u}, `invalid value "many" for flag -n`},
		{"no mode", []string{u}, "choose a mode"},
		{"zero requests", []string{"-n", "0", u}, "-n must be positive, got 0"},
		{"negative workers", []string{"-c", "-2", "-n", "5", u}, "-c must be positive, got -2"},
		{"zero rate", []string{"-rate", "0", "-duration", "1s", u},
			"-rate must be positive, got 0"},
		{"zero duration", []string{"-c", "2", "-duration", "0s", u}, "-duration must be positive"},
		{"rate without duration", []string{"-rate", "5", u}, "-rate needs -duration"},
		{"workers without bound", []string{"-c", "5", u}, "-c needs -duration, -n or both"},
		{"rate and workers", []string{"-rate", "5", "-c", "2", "-duration", "1s", u},
			"-rate cannot be combined with -c"},
		{"sweep and burst", []string{"-sweep", "1:1:2", "-n", "5", "-duration", "1s", u},
			"-sweep cannot be combined with -n"},
		{"burst with duration", []string{"-n", "5", "-duration", "1s", u}, "-duration needs"},
		{"bad sweep", []string{"-sweep", "1:x:3", "-duration", "1s", u}, "want START:STEP:MAX"},
		{"long sweep", []string{"-sweep", "1:1:500", "-duration", "1s", u}, "at most 100"},
		{"relative URL", []string{"-n", "5", "/api"}, `invalid URL "/api"`},
		{"ftp URL", []string{"-n", "5", "ftp://127.0.0.1/"}, "invalid URL"},
		{"bad header", []string{"-n", "5", "-H", "novalue", u}, "want 'Name: value'"},
		{"two bodies", []string{"-n", "5", "-body", "a", "-body-file", "b", u},
			"cannot be used together"},
		{"missing body file", []string{"-n", "5", "-body-file", "/nonexistent/body", u},
			"read -body-file"},
		{"unreachable", []string{"-n", "5", closedPortURL(t)}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, context.Background(), tt.args...)
			if code != ExitUsage {
				t.Errorf("got exit %d, want %d", code, ExitUsage)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want none", stdout)
			}
			if !strings.HasPrefix(stderr, "loadtest: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("got stderr %q, want one line starting with loadtest:", stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("got stderr %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(), "-h")
	if code != ExitOK {
		t.Errorf("got exit %d, want %d", code, ExitOK)
	}
	if stderr != "" || !strings.Contains(stdout, "usage: keeper loadtest") ||
		!strings.Contains(stdout, "-p99-limit") {
		t.Errorf("got stdout %q, stderr %q; want the usage with every flag on stdout",
			stdout, stderr)
	}
}

func TestMainBurstWritesReportAndFiles(t *testing.T) {
	var count atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		okHandler(w, r)
	})
	dir := filepath.Join(t.TempDir(), "out")

	// Flags after the URL are accepted too.
	code, stdout, stderr := runMain(t, context.Background(), srv.URL+"/api/user/1", "-n", "20",
		"-json", "-out", dir)

	if code != ExitOK {
		t.Fatalf("got exit %d (stderr %q), want %d", code, stderr, ExitOK)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("decode stdout %q: %v", stdout, err)
	}
	if s.Mode != "burst" || s.Requests != 20 || s.Statuses["200"] != 20 || count.Load() != 20 {
		t.Errorf("got %+v after %d server hits, want a burst of 20 × 200", s, count.Load())
	}
	files := []string{SummaryFile, RecordsFile, CompletionPlot, LatencyPlot, TimelinePlot}
	for _, name := range files {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("got %v, want %s written", err, name)
		}
	}
}

func TestMainOutputModes(t *testing.T) {
	srv := newServer(t, okHandler)
	tests := []struct {
		name       string
		args       []string
		wantStdout string // substring; "" means stdout must be empty
		wantStderr string // substring; "" means stderr must be empty
	}{
		{"text", []string{"-c", "2", "-n", "10"}, "requests    10 in", "concurrency: 2 workers"},
		{"quiet", []string{"-quiet", "-n", "3"}, "", ""},
		{"quiet json", []string{"-quiet", "-json", "-n", "3"}, `"requests": 3`, ""},
		{"rate", []string{"-rate", "50", "-duration", "100ms"}, "send lag", "rate: 50"},
		{"sweep", []string{"-sweep", "50:50:100", "-duration", "100ms", "-p99-limit", "5s"},
			"every rate up to 100 req/s stayed within p99 ≤ 5s", "sweep: 50 to 100"},
		{"sweep json", []string{"-sweep", "50:50:100", "-duration", "100ms", "-json"},
			`"sustained_rate"`, "    100 req/s:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, context.Background(), append(tt.args, srv.URL)...)
			if code != ExitOK {
				t.Fatalf("got exit %d (stderr %q), want %d", code, stderr, ExitOK)
			}
			checkOutput(t, "stdout", stdout, tt.wantStdout)
			checkOutput(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

func checkOutput(t *testing.T, name, got, want string) {
	t.Helper()
	if want == "" && got != "" {
		t.Errorf("got %s %q, want none", name, got)
	}
	if !strings.Contains(got, want) {
		t.Errorf("got %s %q, want it to contain %q", name, got, want)
	}
}

func TestMainInterruptReportsWhatWasMeasured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var count atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) >= 4 {
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(safety):
			}
			return
		}
		okHandler(w, r)
	})

	code, stdout, stderr := runMain(t, ctx, "-c", "1", "-duration", "1m", srv.URL)

	if code != ExitInterrupted {
		t.Errorf("got exit %d (stderr %q), want %d", code, stderr, ExitInterrupted)
	}
	for _, want := range []string{"interrupted", "statuses    200: 3\n", "canceled: 1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("got stdout %q, want it to contain %q", stdout, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatalf("open %s: %v", os.DevNull, err)
	}
	defer devNull.Close()

	if isTerminal(&bytes.Buffer{}) || isTerminal(devNull) {
		t.Error("got a buffer or /dev/null taken for a terminal, want neither")
	}
}

// TestMainCountsErrorStatusesAsFailed runs against a server that answers 404: every
// request is listed and counted as failed, and the finished run still exits 0.
func TestMainCountsErrorStatusesAsFailed(t *testing.T) {
	srv := newServer(t, http.NotFound)

	code, stdout, stderr := runMain(t, context.Background(), "-n", "20", srv.URL+"/missing")
	if code != ExitOK {
		t.Fatalf("got exit %d (stderr %q), want %d", code, stderr, ExitOK)
	}
	for _, want := range []string{"statuses    404: 20", "errors      http 404: 20"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("got %q, want it to contain %q", stdout, want)
		}
	}

	code, stdout, stderr = runMain(t, context.Background(), "-n", "20", "-json", srv.URL)
	if code != ExitOK {
		t.Fatalf("got exit %d (stderr %q), want %d", code, stderr, ExitOK)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("decode stdout %q: %v", stdout, err)
	}
	if s.Failed != 20 || s.HTTPErrors["404"] != 20 || len(s.Errors) != 0 {
		t.Errorf("got failed %d, errors %v, http errors %v; want 20 failed as http 404",
			s.Failed, s.Errors, s.HTTPErrors)
	}
}
