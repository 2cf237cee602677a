package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Client settings that are not taken from Config.
const (
	// dialTimeout caps a connect even when the request timeout is longer.
	dialTimeout = 10 * time.Second
	// maxIdle is how long a connection may wait in the pool before it is closed.
	maxIdle = 2 * time.Second
	// readBufferSize bounds a response's header block: fasthttp needs all of it in one
	// buffer and fails a response whose headers do not fit. Its default of 4 KiB is
	// too tight for servers with large cookies or policies; the buffer is pooled and
	// held only while a request is in flight.
	readBufferSize = 16 << 10
	// userAgent is sent unless the run sets its own User-Agent header.
	userAgent = "keeper-loadtest"
)

// client sends the run's one request over and over with fasthttp, whose client reuses
// its requests, responses, buffers and connections, so that the generator keeps up
// with the server it measures. net/http's transport allocated about 37 objects per
// request here and held a closed loop to about 0.6 of wrk's rate on a trivial handler;
// fasthttp allocates 4 and reaches about 0.9.
//
// fasthttp has no context. The per-request timeout is a deadline on the connection,
// and stopping the run closes every connection the client has open (see connSet).
type client struct {
	hc       *fasthttp.HostClient
	template *fasthttp.Request // copied once by each sender
	timeout  time.Duration
	conns    *connSet
	unwatch  func() bool // stops watching the run's context
}

// newClient builds the client for cfg. Cancelling ctx closes all its connections, so
// that every request in flight fails at once and is recorded as canceled.
func newClient(ctx context.Context, cfg Config) (*client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	// net/http checks the method and URL as before, though it no longer sends them.
	if _, err := http.NewRequest(cfg.method(), cfg.URL, nil); err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}

	isTLS := u.Scheme == "https"
	var tlsConfig *tls.Config
	if isTLS {
		// What net/http used: the system's roots and the URL's host as server name.
		tlsConfig = &tls.Config{ServerName: u.Hostname()}
	}
	conns := newConnSet(ctx, tlsConfig)
	hc := &fasthttp.HostClient{
		Addr:        fasthttp.AddMissingPort(u.Host, isTLS),
		IsTLS:       isTLS,
		Name:        userAgent,
		DialTimeout: conns.dial,
		// No cap: every sender gets a connection at once, as net/http gave it, instead
		// of waiting for one or failing with ErrNoFreeConns.
		MaxConns: math.MaxInt,
		// One attempt: a retried request would hide the failure a load test is there
		// to count, and would be sent twice.
		MaxIdemponentCallAttempts: 1,
		// Without retries, a pooled connection the server has already closed for
		// idleness would fail the next request. Drop idle connections sooner than the
		// shortest common server keep-alive (5 s in Apache and Node.js); a steady run
		// reuses its connections well within this.
		MaxIdleConnDuration: maxIdle,
		ReadBufferSize:      readBufferSize,
		// Send the path as written, as net/http did, not a cleaned one.
		DisablePathNormalizing: true,
		// Read the body as a stream and discard it as it arrives, as net/http did, so a
		// request in flight holds a read buffer rather than its whole body: a burst of
		// 1000 requests for a 1 MiB file would otherwise hold a gigabyte. It costs four
		// small allocations per request and no measurable throughput.
		StreamResponseBody: true,
	}

	c := &client{
		hc: hc, template: newTemplate(cfg), timeout: cfg.timeout(), conns: conns,
		unwatch: context.AfterFunc(ctx, conns.closeAll),
	}
	return c, nil
}

// newTemplate builds the request every sender copies. A burst request asks for
// Connection: close, so fasthttp never puts its connection back in the pool and every
// request of a burst dials its own, even one sent late enough to find another's
// connection idle, as a burst promises.
func newTemplate(cfg Config) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI(cfg.URL)
	req.Header.SetMethod(cfg.method())
	// fasthttp would label a body form-encoded; send only what the run asked for.
	req.Header.SetNoDefaultContentType(true)
	for name, values := range cfg.Header {
		if http.CanonicalHeaderKey(name) == "Host" {
			continue
		}
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	// fasthttp sends the URL's host unless told to use the Host header: honour
	// -H 'Host: …' while still connecting to the URL's address.
	if host := cfg.Header.Get("Host"); host != "" {
		req.Header.SetHost(host)
		req.UseHostHeader = true
	}
	if len(cfg.Body) > 0 {
		req.SetBody(cfg.Body)
	}
	if cfg.Mode == ModeBurst {
		req.SetConnectionClose()
	}
	return req
}

// close releases the connections once the run is over.
func (c *client) close() {
	c.unwatch()
	c.hc.CloseIdleConnections()
	c.conns.closeAll()
}

// sender sends one request at a time with a request and a response of its own, reused
// for every send: fasthttp resets them in place, so once their buffers have grown a
// closed-loop worker allocates only what streaming the body costs. Senders of one-shot
// goroutines take them from fasthttp's pools for the same reason.
type sender struct {
	client *client
	req    *fasthttp.Request
	resp   *fasthttp.Response
}

func newSender(c *client) *sender {
	req := fasthttp.AcquireRequest()
	c.template.CopyTo(req)
	return &sender{client: c, req: req, resp: fasthttp.AcquireResponse()}
}

// send performs one request under the timeout and reads the whole body, returning the
// status, the body size and the error, if any. fasthttp neither follows redirects nor
// decodes the body, so a 3xx is recorded as it came and the size is the bytes sent.
// The read deadline set for the headers covers the body too.
func (s *sender) send() (status int, n int64, err error) {
	if err := s.client.hc.DoTimeout(s.req, s.resp, s.client.timeout); err != nil {
		return 0, 0, err
	}
	body := s.resp.BodyStream()
	if body == nil { // no body to stream, as for HEAD or a 204
		return s.resp.StatusCode(), int64(len(s.resp.Body())), nil
	}

	// io.Discard reads through a pooled buffer; closing the stream returns the
	// connection to the pool, or closes it if the body was not read to its end.
	n, err = io.Copy(io.Discard, body)
	if cerr := s.resp.CloseBodyStream(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, n, err
	}
	return s.resp.StatusCode(), n, nil
}

// close returns the request and response to fasthttp's pools.
func (s *sender) close() {
	fasthttp.ReleaseRequest(s.req)
	fasthttp.ReleaseResponse(s.resp)
}

// connSet dials the run's connections and keeps every one still open, so that stopping
// the run can close them all: a request blocked on a closed connection returns at once,
// which is how a run without contexts is cancelled. The set costs a lock per connection
// opened or closed, not per request.
type connSet struct {
	ctx    context.Context // the run's; a dial in progress is abandoned when it ends
	tls    *tls.Config     // nil for plain HTTP
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
	closed bool // closeAll has run: new connections are closed as they arrive
}

func newConnSet(ctx context.Context, tlsConfig *tls.Config) *connSet {
	return &connSet{ctx: ctx, tls: tlsConfig, open: map[*trackedConn]struct{}{}}
}

// dial connects to addr, and for HTTPS completes the TLS handshake, within timeout
// (capped at dialTimeout; 0 means the cap) or until the run is stopped. It is
// fasthttp's DialTimeout hook. fasthttp would otherwise start the handshake inside
// its first write, where only a write deadline is set and a server that never answers
// the handshake would hold the request past its timeout.
func (s *connSet) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > dialTimeout {
		timeout = dialTimeout
	}
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(s.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}

	conn, err := s.track(raw, addr)
	switch {
	case err != nil:
		return nil, err // not conn: a nil *trackedConn is a non-nil net.Conn
	case s.tls == nil:
		return conn, nil
	default:
		return s.handshake(conn, deadline)
	}
}

// track adds conn to the set, or closes it if the run has already been stopped.
func (s *connSet) track(conn net.Conn, addr string) (*trackedConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		conn.Close()
		return nil, fmt.Errorf("dial %s: run stopped: %w", addr, net.ErrClosed)
	}
	tc := &trackedConn{Conn: conn, set: s}
	s.open[tc] = struct{}{}
	return tc, nil
}

// handshake runs the TLS handshake on conn before deadline. fasthttp takes a
// connection with a Handshake method as TLS already and sends on it as it is.
func (s *connSet) handshake(conn *trackedConn, deadline time.Time) (net.Conn, error) {
	tc := tls.Client(conn, s.tls)
	err := conn.SetDeadline(deadline)
	if err == nil {
		err = tc.HandshakeContext(s.ctx)
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// closeAll closes every open connection and any dialled later.
func (s *connSet) closeAll() {
	s.mu.Lock()
	open := s.open
	s.open, s.closed = map[*trackedConn]struct{}{}, true
	s.mu.Unlock()

	for tc := range open {
		tc.Conn.Close()
	}
}

// trackedConn leaves its set when fasthttp closes it.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.open, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}
