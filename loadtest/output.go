package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// File names written by WriteFiles.
const (
	SummaryFile = "summary.json"
	RecordsFile = "requests.csv"
)

// csvHeader names the columns of WriteCSV. Offsets count from the start of the run.
const csvHeader = "index,scheduled_ms,start_ms,end_ms,latency_ms,status,bytes,error\n"

// WriteCSV writes one row per request, in index order, under a header row. Times are
// milliseconds with microsecond precision; error is empty for a request that got a
// whole response, which failed nonetheless when its status is outside 200–399.
func (r *Result) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(csvHeader); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}

	// Rows are built by hand in one reused buffer: a run can hold millions of them and
	// none of the fields can contain a comma or a quote.
	var row []byte
	for _, rec := range r.Records {
		row = appendRow(row[:0], rec)
		if _, err := bw.Write(row); err != nil {
			return fmt.Errorf("write csv row %d: %w", rec.Index, err)
		}
	}

	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush csv: %w", err)
	}
	return nil
}

func appendRow(b []byte, rec Record) []byte {
	b = strconv.AppendInt(b, int64(rec.Index), 10)
	for _, d := range []time.Duration{rec.Scheduled, rec.Start, rec.End, rec.Latency()} {
		b = append(b, ',')
		b = strconv.AppendFloat(b, ms(d), 'f', 3, 64)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, rec.Bytes, 10)
	b = append(b, ',')
	b = append(b, rec.Err.String()...)
	return append(b, '\n')
}

// WriteFiles writes summary.json, requests.csv and the plots (see WritePlots) into dir,
// creating it if needed.
func (r *Result) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}

	if err := writeJSONFile(filepath.Join(dir, SummaryFile), r.Summary()); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, RecordsFile), r.WriteCSV); err != nil {
		return err
	}
	return r.WritePlots(dir)
}

// writeJSONFile writes v as indented JSON.
func writeJSONFile(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// writeFile creates path, fills it with write and reports the first error, closing
// included: a failed close can mean lost data.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// SweepFile is the file name of the sweep's JSON report.
const SweepFile = "sweep.json"

// sweepJSON is the JSON shape of a SweepResult.
type sweepJSON struct {
	P99LimitMS  float64         `json:"p99_limit_ms"`
	Sustained   int             `json:"sustained_rate"`
	Broke       int             `json:"broke_rate"`
	Interrupted bool            `json:"interrupted"`
	Steps       []sweepStepJSON `json:"steps"`
}

type sweepStepJSON struct {
	Rate    int     `json:"rate"`
	Passed  bool    `json:"passed"`
	Summary Summary `json:"summary"`
}

// MarshalJSON writes the sweep in its stable JSON shape; zero rates mean none.
func (s *SweepResult) MarshalJSON() ([]byte, error) {
	j := sweepJSON{
		P99LimitMS: ms(s.P99Limit), Sustained: s.Sustained, Broke: s.Broke,
		Interrupted: s.Interrupted, Steps: []sweepStepJSON{},
	}
	for _, st := range s.Steps {
		j.Steps = append(j.Steps, sweepStepJSON{st.Rate, st.Passed, st.Summary})
	}
	return json.Marshal(j)
}

// WriteFiles writes sweep.json and sweep.png into dir, creating it if needed.
func (s *SweepResult) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if err := writeJSONFile(filepath.Join(dir, SweepFile), s); err != nil {
		return err
	}
	if err := s.WritePlot(filepath.Join(dir, SweepPlot)); err != nil {
		return fmt.Errorf("plot %s: %w", SweepPlot, err)
	}
	return nil
}
