package logging

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedWriter collects log lines in memory and writes them out in batches: when the
// buffer fills, every interval, on Flush and on Close. A busy server then pays one
// system call per batch instead of one per line. The price is that lines from the last
// interval are lost if the process is killed outright; the logger built by New flushes
// at once after every warning or error, so those are never held back.
type BufferedWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

// NewBufferedWriter returns a writer that buffers up to size bytes for at most interval
// before writing them to w.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{buf: bufio.NewWriterSize(w, size), done: make(chan struct{})}
	b.wg.Add(1)
	go b.flushEvery(interval)
	return b
}

// Write buffers p. A write that does not fit flushes the buffer first.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Flush writes out everything buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the periodic flush and writes out what is left.
func (b *BufferedWriter) Close() error {
	close(b.done)
	b.wg.Wait()
	return b.Flush()
}

func (b *BufferedWriter) flushEvery(interval time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}
