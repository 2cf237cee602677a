package loadtest

import "time"

// Bucket describes the requests that finished within one fixed slice of the run.
type Bucket struct {
	Start      time.Duration // offset of the slice's beginning
	Width      time.Duration // length of the slice; the last one also takes the remainder
	Finished   int           // measured requests that finished in the slice
	Failed     int           // of which failed
	Throughput float64       // finished per second
	P50, P99   time.Duration // exact latency percentiles of those requests
}

// bucketWidths are the slice lengths Timeline picks from, so axes read in round numbers.
var bucketWidths = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute, 5 * time.Minute,
}

// maxBuckets bounds how many slices a timeline has.
const maxBuckets = 100

// Timeline splits the run into fixed slices by completion time, the narrowest round
// width that gives at most 100 of them, and summarizes each. The last slice runs to the
// end of the run, so it may be up to twice as wide.
func (r *Result) Timeline() []Bucket {
	width := bucketWidths[len(bucketWidths)-1]
	for _, w := range bucketWidths {
		if r.Wall/w < maxBuckets {
			width = w
			break
		}
	}
	return timeline(r.Records, r.Wall, width)
}

func timeline(records []Record, wall, width time.Duration) []Bucket {
	// The last slice absorbs the remainder, so none is so short that its rate is noise.
	n := max(int(wall/width), 1)
	lat := make([][]time.Duration, n)
	buckets := make([]Bucket, n)
	for _, rec := range records {
		if rec.Err == ErrCanceled {
			continue
		}
		i := min(max(int(rec.End/width), 0), n-1)
		lat[i] = append(lat[i], rec.Latency())
		if rec.Err != ErrNone {
			buckets[i].Failed++
		}
	}

	for i := range buckets {
		b := &buckets[i]
		b.Start = time.Duration(i) * width
		b.Width = width
		if i == n-1 {
			b.Width = max(wall-b.Start, width)
		}
		b.Finished = len(lat[i])
		if b.Width > 0 {
			b.Throughput = float64(b.Finished) / b.Width.Seconds()
		}
		l := latencies(lat[i])
		b.P50, b.P99 = l.P50, l.P99
	}
	return buckets
}
