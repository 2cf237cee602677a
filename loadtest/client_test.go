package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestCancelIsPromptInEveryMode stalls every request far past the test's patience and
// checks that cancelling the run ends it at once with every stalled request recorded,
// although fasthttp has no context to cancel them by.
func TestCancelIsPromptInEveryMode(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		arrivals int64 // cancel once this many requests have reached the server
	}{
		{"burst", Config{Mode: ModeBurst, Requests: 20}, 20},
		{"rate", Config{Mode: ModeRate, Rate: 200, Duration: time.Minute}, 10},
		{"concurrency", Config{Mode: ModeConcurrency, Concurrency: 4, Duration: time.Minute}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var arrived atomic.Int64
			srv := newServer(t, func(_ http.ResponseWriter, r *http.Request) {
				if arrived.Add(1) == tt.arrivals {
					cancel()
				}
				select {
				case <-r.Context().Done():
				case <-time.After(safety):
				}
			})
			tt.cfg.URL = srv.URL // and the default timeout of 30 s

			begin := time.Now()
			res, err := Run(ctx, tt.cfg)
			if err != nil {
				t.Fatalf("run: %v", err)
			}

			if took := time.Since(begin); took > safety/2 {
				t.Errorf("got Run returning after %s, want it to stop at the cancel", took)
			}
			s := res.Summary()
			canceled := s.Errors[ErrCanceled]
			if !s.Interrupted || canceled < int(tt.arrivals) || s.Requests != canceled {
				t.Errorf("got interrupted %v, %d requests, errors %v; want true and all of at"+
					" least %d canceled", s.Interrupted, s.Requests, s.Errors, tt.arrivals)
			}
		})
	}
}

// TestResponsesAreTakenAsSent checks that a response is recorded as the server sent it:
// redirects not followed, compressed bodies not decoded, long bodies read to the end.
func TestResponsesAreTakenAsSent(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("keeper "), 1000))
	_ = zw.Close()
	const big = 1 << 20

	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantBytes  int64
	}{
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				w.WriteHeader(http.StatusTeapot) // followed
				return
			}
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
			_, _ = w.Write([]byte("moved\n"))
		}, http.StatusFound, 6},
		{"gzip body", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept-Encoding") != "" {
				w.WriteHeader(http.StatusBadRequest) // asked for compression
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz.Bytes())
		}, http.StatusOK, int64(gz.Len())},
		{"long chunked body", func(w http.ResponseWriter, _ *http.Request) {
			chunk := make([]byte, 64<<10)
			for range big / len(chunk) {
				_, _ = w.Write(chunk)
				_ = http.NewResponseController(w).Flush()
			}
		}, http.StatusOK, big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)

			res := mustRun(t, Config{URL: srv.URL + "/", Mode: ModeConcurrency, Concurrency: 2,
				Requests: 4})

			for _, rec := range res.Records {
				if rec.Status != tt.wantStatus || rec.Bytes != tt.wantBytes || rec.Err != ErrNone {
					t.Fatalf("got status %d, %d bytes, error %q; want %d, %d bytes, none",
						rec.Status, rec.Bytes, rec.Err, tt.wantStatus, tt.wantBytes)
				}
			}
		})
	}
}

// TestRequestSentAsWritten checks that the client adds nothing to the request the run
// describes and cleans nothing out of it, in pooled and one-shot connections alike.
func TestRequestSentAsWritten(t *testing.T) {
	var mu sync.Mutex
	var last string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = fmt.Sprintf("%s %s type=%q encoding=%q agent=%q close=%v body=%q",
			r.Method, r.RequestURI, r.Header.Get("Content-Type"),
			r.Header.Get("Accept-Encoding"), r.Header.Get("User-Agent"), r.Close, body)
		mu.Unlock()
	})

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"path kept as written", Config{URL: srv.URL + "/a//b/../c?q=1%202",
			Mode: ModeConcurrency, Concurrency: 1, Requests: 2},
			`GET /a//b/../c?q=1%202 type="" encoding="" agent="keeper-loadtest" ` +
				`close=false body=""`},
		{"body without a type", Config{URL: srv.URL + "/", Method: "POST", Body: []byte("x=1"),
			Mode: ModeConcurrency, Concurrency: 1, Requests: 2},
			`POST / type="" encoding="" agent="keeper-loadtest" close=false body="x=1"`},
		{"burst with headers", Config{URL: srv.URL + "/", Method: "PUT", Body: []byte("{}"),
			Header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"t/1"}},
			Mode:   ModeBurst, Requests: 2},
			`PUT / type="application/json" encoding="" agent="t/1" close=true body="{}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, tt.cfg)

			if f := res.Summary().Failed(); f != 0 {
				t.Fatalf("got %d failed requests, want none", f)
			}
			mu.Lock()
			defer mu.Unlock()
			if last != tt.want {
				t.Errorf("got request %s, want %s", last, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read",
		syscall.ECONNRESET)}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect",
		syscall.ECONNREFUSED)}

	tests := []struct {
		name              string
		err               error
		stopped, timedOut bool
		want              ErrorKind
	}{
		{"no error", nil, false, false, ErrNone},
		{"no error after the stop", nil, true, false, ErrNone},
		{"stopped wins", fasthttp.ErrConnectionClosed, true, true, ErrCanceled},
		{"past the timeout", errors.New("whatever"), false, true, ErrTimeout},
		{"fasthttp timeout", fasthttp.ErrTimeout, false, false, ErrTimeout},
		{"fasthttp dial timeout", fasthttp.ErrDialTimeout, false, false, ErrTimeout},
		{"deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), false, false, ErrTimeout},
		{"refused", refused, false, false, ErrRefused},
		{"reset", reset, false, false, ErrReset},
		{"closed before answering", fasthttp.ErrConnectionClosed, false, false, ErrReset},
		{"body cut short", io.ErrUnexpectedEOF, false, false, ErrReset},
		{"chunk cut short", fasthttp.ErrBrokenChunk{}, false, false, ErrReset},
		{"no free connection", fasthttp.ErrNoFreeConns, false, false, ErrOther},
		{"bad response", errors.New("error when reading response headers"), false, false,
			ErrOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err, tt.stopped, tt.timedOut); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStopClosesConnectionsDialledLate checks the race the cancel design must win: a
// connection whose dial finishes after the run was stopped is closed, not handed out.
func TestStopClosesConnectionsDialledLate(t *testing.T) {
	srv := newServer(t, okHandler)
	addr := strings.TrimPrefix(srv.URL, "http://")
	set := newConnSet(context.Background(), nil)

	open, err := set.dial(addr, time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	set.closeAll()
	late, err := set.dial(addr, time.Second)

	if late != nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("got %v, %v from a dial after the stop, want no connection and net.ErrClosed",
			late, err)
	}
	if _, err := open.Write([]byte("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got %v writing to a connection open at the stop, want net.ErrClosed", err)
	}
}

// TestFailedRequestsAreNotRetried counts what reaches a server that drops every
// connection: a retried request would be sent twice and its failure hidden.
func TestFailedRequestsAreNotRetried(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})

	res := mustRun(t, Config{URL: srv.URL, Mode: ModeConcurrency, Concurrency: 1, Requests: 5})

	if s := res.Summary(); s.Errors[ErrReset] != 5 || hits.Load() != 5 {
		t.Errorf("got errors %v after %d requests reached the server, want 5 resets of 5",
			s.Errors, hits.Load())
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(okHandler))
	t.Cleanup(srv.Close)

	t.Run("trusted certificate", func(t *testing.T) {
		c, err := newClient(context.Background(), Config{URL: srv.URL, Mode: ModeBurst,
			Requests: 1})
		if err != nil {
			t.Fatalf("new client: %v", err)
		}
		defer c.close()
		c.conns.tls.RootCAs = x509.NewCertPool()
		c.conns.tls.RootCAs.AddCert(srv.Certificate())
		s := newSender(c)
		defer s.close()

		status, n, err := s.send()

		if status != http.StatusOK || n != 3 || err != nil {
			t.Errorf("got %d, %d bytes, %v; want 200, 3 bytes, no error", status, n, err)
		}
	})
	t.Run("unknown certificate", func(t *testing.T) {
		res := mustRun(t, Config{URL: srv.URL, Mode: ModeBurst, Requests: 3})

		if s := res.Summary(); s.Errors[ErrOther] != 3 {
			t.Errorf("got errors %v, want 3 of kind %q", s.Errors, ErrOther)
		}
	})
	t.Run("handshake never answered", func(t *testing.T) {
		const timeout = 100 * time.Millisecond
		done := make(chan *Result, 1)
		go func() {
			res, _ := Run(context.Background(), Config{URL: "https://" + silentListener(t) + "/",
				Mode: ModeBurst, Requests: 3, Timeout: timeout})
			done <- res
		}()

		select {
		case res := <-done:
			if s := res.Summary(); s.Errors[ErrTimeout] != 3 {
				t.Errorf("got errors %v, want 3 of kind %q", s.Errors, ErrTimeout)
			}
		case <-time.After(safety):
			t.Fatalf("got no result after %s, want the %s timeout to end the run", safety,
				timeout)
		}
	})
}

// silentListener returns the address of a listener that accepts connections and never
// writes to them.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
