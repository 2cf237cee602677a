package loadtest

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot file names written by WritePlots.
const (
	CompletionPlot = "completion.png" // completion time by request number
	LatencyPlot    = "latency.png"    // latency CDF with percentile marks
	TimelinePlot   = "timeline.png"   // throughput and p50/p99 latency over time
)

// Plot colours. They are NRGBA because gonum draws premultiplied RGBA values wrongly.
var (
	blue   = color.NRGBA{R: 31, G: 119, B: 180, A: 255}
	red    = color.NRGBA{R: 214, G: 39, B: 40, A: 255}
	orange = color.NRGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.NRGBA{R: 44, G: 160, B: 44, A: 255}
	purple = color.NRGBA{R: 148, G: 103, B: 189, A: 255}
	grey   = color.NRGBA{R: 90, G: 90, B: 90, A: 255}
)

// maxScatter bounds the points of the completion plot: past it, each run of indexes
// keeps only its earliest and latest completion, which preserves the envelope (and so
// every outlier band) at a fraction of the drawing time.
const maxScatter = 20000

// cdfPoints is how many quantiles draw the latency CDF of a large run.
const cdfPoints = 2000

// WritePlots writes the three PNG plots into dir, which must exist.
func (r *Result) WritePlots(dir string) error {
	plots := []struct {
		name string
		save func(path string) error
	}{
		{CompletionPlot, r.saveCompletion},
		{LatencyPlot, r.saveLatency},
		{TimelinePlot, r.saveTimeline},
	}
	for _, p := range plots {
		if err := p.save(filepath.Join(dir, p.name)); err != nil {
			return fmt.Errorf("plot %s: %w", p.name, err)
		}
	}
	return nil
}

// saveCompletion draws the original script's figure: x is the request number, y the
// time since the start at which the request finished. Failed requests (no whole
// response, or a status outside 200–399) are red.
func (r *Result) saveCompletion(path string) error {
	p := newPlot(r.title("completion time by request"), "request number", "completed at (s)")
	p.Legend.Left = true
	p.Y.Min = 0

	var ok, failed plotter.XYs
	for _, rec := range r.Records {
		if rec.Err == ErrCanceled {
			continue
		}
		pt := plotter.XY{X: float64(rec.Index), Y: rec.End.Seconds()}
		if !rec.Failed() {
			ok = append(ok, pt)
		} else {
			failed = append(failed, pt)
		}
	}

	if err := addScatter(p, "response", envelope(ok), blue); err != nil {
		return err
	}
	if err := addScatter(p, "failed", envelope(failed), red); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// envelope thins pts, which are in x order, to at most maxScatter points by keeping the
// lowest and the highest y of each run of neighbours.
func envelope(pts plotter.XYs) plotter.XYs {
	if len(pts) <= maxScatter {
		return pts
	}
	per := (len(pts) + maxScatter/2 - 1) / (maxScatter / 2)
	out := make(plotter.XYs, 0, maxScatter)
	for chunk := range slices.Chunk(pts, per) {
		lo, hi := chunk[0], chunk[0]
		for _, pt := range chunk {
			if pt.Y < lo.Y {
				lo = pt
			}
			if pt.Y > hi.Y {
				hi = pt
			}
		}
		out = append(out, lo, hi)
	}
	return out
}

func addScatter(p *plot.Plot, name string, pts plotter.XYs, c color.Color) error {
	if len(pts) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("scatter %s: %w", name, err)
	}
	s.GlyphStyle.Color = c
	s.GlyphStyle.Radius = vg.Points(1.2)
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	p.Add(s)
	p.Legend.Add(name, s)
	return nil
}

// saveLatency draws the cumulative distribution of latency on a logarithmic axis, with
// a vertical mark at each reported percentile.
func (r *Result) saveLatency(path string) error {
	p := newPlot(r.title("latency distribution"), "latency (ms, log scale)", "fraction of requests")
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false

	lat := r.measuredLatencies()
	if len(lat) == 0 {
		p.X.Label.Text = "latency (no request was measured)"
		return p.Save(8*vg.Inch, 5*vg.Inch, path)
	}

	// The log axis needs a range that is positive and not a single point.
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Min, p.X.Max = logFloor(lat[0])/2, logFloor(lat[len(lat)-1])*2
	line, err := plotter.NewLine(cdf(lat))
	if err != nil {
		return fmt.Errorf("cdf line: %w", err)
	}
	line.Color = blue
	line.Width = vg.Points(1.5)
	p.Add(line)

	s := r.Summary().Latency
	marks := []struct {
		name string
		at   time.Duration
		c    color.Color
	}{{"p50", s.P50, green}, {"p90", s.P90, orange}, {"p99", s.P99, red}, {"p99.9", s.P999, purple}}
	for _, m := range marks {
		if err := addMark(p, fmt.Sprintf("%s %s", m.name, round(m.at)), m.at, m.c); err != nil {
			return err
		}
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// measuredLatencies returns the sorted latencies of the requests that count.
func (r *Result) measuredLatencies() []time.Duration {
	lat := make([]time.Duration, 0, len(r.Records))
	for _, rec := range r.Records {
		if rec.Err != ErrCanceled {
			lat = append(lat, rec.Latency())
		}
	}
	slices.Sort(lat)
	return lat
}

// cdf returns the points of the empirical CDF of sorted latencies in milliseconds,
// every point for a small run and cdfPoints exact quantiles for a large one. Latencies
// are floored at a microsecond so that the log axis can place them.
func cdf(sorted []time.Duration) plotter.XYs {
	n := len(sorted)
	step := max(n/cdfPoints, 1)
	pts := make(plotter.XYs, 0, n/step+2)
	for i := 0; i < n; i += step {
		pts = append(pts, plotter.XY{X: logFloor(sorted[i]), Y: float64(i+1) / float64(n)})
	}
	return append(pts, plotter.XY{X: logFloor(sorted[n-1]), Y: 1})
}

func logFloor(d time.Duration) float64 { return max(ms(d), 0.001) }

// addMark draws a labelled vertical line at latency d.
func addMark(p *plot.Plot, name string, d time.Duration, c color.Color) error {
	x := logFloor(d)
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: 1}})
	if err != nil {
		return fmt.Errorf("mark %s: %w", name, err)
	}
	l.Color = c
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// saveTimeline draws two panels over the run's fixed time slices: throughput on top,
// p50 and p99 latency of the requests finished in each slice below.
func (r *Result) saveTimeline(path string) error {
	buckets := r.Timeline()
	width := buckets[0].Width

	top := newPlot(r.title(fmt.Sprintf("throughput per %s", width)), "time (s)", "requests/s")
	bottom := newPlot("latency of requests finished in each slice", "time (s)", "latency (ms)")
	top.X.Min, top.Y.Min, bottom.X.Min, bottom.Y.Min = 0, 0, 0, 0

	var thr, p50, p99 plotter.XYs
	for _, b := range buckets {
		mid := (b.Start + b.Width/2).Seconds()
		thr = append(thr, plotter.XY{X: mid, Y: b.Throughput})
		if b.Finished > 0 {
			p50 = append(p50, plotter.XY{X: mid, Y: ms(b.P50)})
			p99 = append(p99, plotter.XY{X: mid, Y: ms(b.P99)})
		}
	}
	if err := addLine(top, "finished", thr, grey); err != nil {
		return err
	}
	if err := addLine(bottom, "p50", p50, green); err != nil {
		return err
	}
	if err := addLine(bottom, "p99", p99, red); err != nil {
		return err
	}
	return saveStacked(path, top, bottom)
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, c color.Color) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("line %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	s.Color = c
	s.Radius = vg.Points(1.5)
	p.Add(l, s)
	p.Legend.Add(name, l)
	return nil
}

// saveStacked renders plots one above the other into a single PNG.
func saveStacked(path string, plots ...*plot.Plot) error {
	img := vgimg.New(8*vg.Inch, vg.Length(len(plots))*4*vg.Inch)
	dc := draw.New(img)

	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(4)}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}

	return writeFile(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

// newPlot returns a plot with a title, axis labels and a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// title prefixes a plot title with the run's method, URL and mode.
func (r *Result) title(what string) string {
	return fmt.Sprintf("%s — %s %s (%s)", what, r.Config.method(), r.Config.URL, r.Config.Mode)
}

// SweepPlot is the file name of the sweep's latency-by-rate plot.
const SweepPlot = "sweep.png"

// WritePlot draws p50 and p99 latency, and achieved throughput, against the offered
// rate of each step, with the p99 limit as a dashed line.
func (s *SweepResult) WritePlot(path string) error {
	lat := newPlot("sweep: latency by offered rate", "offered rate (req/s)", "latency (ms)")
	thr := newPlot("sweep: achieved throughput", "offered rate (req/s)", "finished (req/s)")
	lat.Y.Min, thr.Y.Min = 0, 0
	lat.Legend.Left, thr.Legend.Left = true, true

	var p50, p99, done plotter.XYs
	for _, st := range s.Steps {
		x := float64(st.Rate)
		p50 = append(p50, plotter.XY{X: x, Y: ms(st.Summary.Latency.P50)})
		p99 = append(p99, plotter.XY{X: x, Y: ms(st.Summary.Latency.P99)})
		done = append(done, plotter.XY{X: x, Y: st.Summary.Throughput})
	}
	if len(s.Steps) > 0 {
		y := ms(s.P99Limit)
		limit := plotter.XYs{{X: p99[0].X, Y: y}, {X: p99[len(p99)-1].X, Y: y}}
		if err := addLine(lat, "p99 limit", limit, grey); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		p    *plot.Plot
		name string
		pts  plotter.XYs
		c    color.Color
	}{{lat, "p50", p50, green}, {lat, "p99", p99, red}, {thr, "finished", done, blue}} {
		if err := addLine(l.p, l.name, l.pts, l.c); err != nil {
			return err
		}
	}
	return saveStacked(path, lat, thr)
}
