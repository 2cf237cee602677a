package loadtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"
)

func TestWriteCSV(t *testing.T) {
	res := &Result{Records: []Record{
		{Index: 0, Scheduled: 5 * time.Millisecond, Start: 6 * time.Millisecond,
			End: 7500 * time.Microsecond, Status: 200, Bytes: 3},
		{Index: 1, Scheduled: 10 * time.Millisecond, Start: 10 * time.Millisecond,
			End: 11 * time.Millisecond, Err: ErrRefused},
	}}

	var buf bytes.Buffer
	if err := res.WriteCSV(&buf); err != nil {
		t.Fatalf("write csv: %v", err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("read back csv: %v", err)
	}

	want := [][]string{
		{"index", "scheduled_ms", "start_ms", "end_ms", "latency_ms", "status", "bytes", "error"},
		{"0", "5.000", "6.000", "7.500", "2.500", "200", "3", ""},
		{"1", "10.000", "10.000", "11.000", "1.000", "0", "0", "refused"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		t.Run(want[i][0], func(t *testing.T) {
			if !slices.Equal(rows[i], want[i]) {
				t.Errorf("got row %q, want %q", rows[i], want[i])
			}
		})
	}
}

func TestWriteFilesFromARealRun(t *testing.T) {
	srv := newServer(t, okHandler)
	res := mustRun(t, Config{URL: srv.URL, Mode: ModeConcurrency, Concurrency: 4, Requests: 300})
	dir := filepath.Join(t.TempDir(), "out")

	if err := res.WriteFiles(dir); err != nil {
		t.Fatalf("write files: %v", err)
	}

	for _, name := range []string{CompletionPlot, LatencyPlot, TimelinePlot} {
		t.Run(name, func(t *testing.T) { checkPNG(t, filepath.Join(dir, name)) })
	}
	t.Run(RecordsFile, func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, RecordsFile))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if got := strings.Count(string(b), "\n"); got != 301 {
			t.Errorf("got %d lines, want 301 (header and one per request)", got)
		}
	})
	t.Run(SummaryFile, func(t *testing.T) {
		var s summaryJSON
		readJSON(t, filepath.Join(dir, SummaryFile), &s)
		if s.Requests != 300 || s.Statuses["200"] != 300 {
			t.Errorf("got %d requests, %d × 200, want 300 and 300", s.Requests, s.Statuses["200"])
		}
	})
}

// TestLatencyPlotEdgeCases covers the ranges a log axis cannot take by itself.
func TestLatencyPlotEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		records []Record
	}{
		{"no records", nil},
		{"only canceled", []Record{{End: time.Second, Err: ErrCanceled}}},
		{"one zero latency", []Record{{Status: 200}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &Result{Config: Config{URL: "http://127.0.0.1/", Mode: ModeRate},
				Records: tt.records}
			path := filepath.Join(t.TempDir(), LatencyPlot)
			if err := res.saveLatency(path); err != nil {
				t.Fatalf("save: %v", err)
			}
			checkPNG(t, path)
		})
	}
}

func TestEnvelopeKeepsExtremes(t *testing.T) {
	pts := make(plotter.XYs, 3*maxScatter)
	for i := range pts {
		pts[i] = plotter.XY{X: float64(i), Y: 1}
	}
	pts[12345].Y, pts[54321].Y = 3600, -1

	thin := envelope(pts)

	if len(thin) > maxScatter {
		t.Errorf("got %d points, want at most %d", len(thin), maxScatter)
	}
	for _, want := range []plotter.XY{pts[12345], pts[54321]} {
		if !slices.Contains(thin, want) {
			t.Errorf("got no point %v, want every outlier kept", want)
		}
	}
}

func TestSweepFiles(t *testing.T) {
	srv := newServer(t, okHandler)
	res, err := Sweep(context.Background(), SweepConfig{
		Run:   Config{URL: srv.URL, Duration: 100 * time.Millisecond},
		Start: 50, Step: 50, Max: 100, P99Limit: time.Second,
	})
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	dir := t.TempDir()
	if err := res.WriteFiles(dir); err != nil {
		t.Fatalf("write files: %v", err)
	}

	checkPNG(t, filepath.Join(dir, SweepPlot))
	var got struct {
		Sustained int `json:"sustained_rate"`
		Steps     []struct {
			Rate    int         `json:"rate"`
			Summary summaryJSON `json:"summary"`
		} `json:"steps"`
	}
	readJSON(t, filepath.Join(dir, SweepFile), &got)
	if got.Sustained != 100 || len(got.Steps) != 2 || got.Steps[1].Summary.Rate != 100 {
		t.Errorf("got %+v, want 2 steps sustaining 100 req/s", got)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("got a %dx%d image, want at least 300x200", b.Dx(), b.Dy())
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}
