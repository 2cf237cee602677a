package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// client sends the run's one request over and over. It holds a template request that
// every send copies shallowly, so a send costs one request copy besides the transport's
// own work.
type client struct {
	transport *http.Transport
	template  *http.Request
	body      []byte
	timeout   time.Duration
}

// newClient builds a client whose transport keeps up to conns idle connections, so that
// no worker ever waits for a connection or opens a new one because the pool was too small.
func newClient(cfg Config, conns int) (*client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}

	req, err := http.NewRequest(cfg.method(), u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = cfg.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	// net/http sends req.Host and ignores a Host header, so honour -H 'Host: …' here.
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	if len(cfg.Body) > 0 {
		body := cfg.Body
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
	}

	return &client{
		transport: newTransport(conns, cfg.Mode == ModeBurst),
		template:  req,
		body:      cfg.Body,
		timeout:   cfg.timeout(),
	}, nil
}

// newTransport is tuned for one host hit as fast as possible: no proxy, no compression
// (it would make the client decode what the server bothered to encode), no cap on
// connections and an idle pool as large as the number of concurrent senders. oneShot
// gives every request a connection of its own, even one sent late enough to find
// another's connection idle, as a burst promises.
func newTransport(conns int, oneShot bool) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DisableKeepAlives:     oneShot,
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// do sends one request under ctx and reads the whole body, returning the status, the
// body size and the first error met. The body is always drained and closed so that the
// connection goes back to the pool.
func (c *client) do(ctx context.Context) (status int, n int64, err error) {
	req := c.template.WithContext(ctx)
	if c.body != nil {
		req.Body = io.NopCloser(bytes.NewReader(c.body))
	}

	// RoundTrip rather than http.Client.Do: a load test measures the response it got,
	// redirects included, and the client's extra bookkeeping costs throughput.
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return 0, 0, err
	}
	n, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, n, err
}

// close releases the idle connections once the run is over.
func (c *client) close() { c.transport.CloseIdleConnections() }

// sender sends one request at a time under the per-request timeout. A closed-loop
// worker keeps one for its whole life, so its context and timer are made again only
// after a timeout fired rather than for every request: at tens of thousands of
// requests a second, a context and a timer per request are a visible share of the
// generator's CPU.
type sender struct {
	client *client
	run    context.Context // the run's context; cancelling it stops every request
	ctx    context.Context // the current requests' context, child of run
	cancel context.CancelFunc
	timer  *time.Timer // cancels ctx when the timeout passes
	fired  bool        // the timer went off, so ctx is (or is about to be) cancelled
}

func newSender(c *client, run context.Context) *sender {
	return &sender{client: c, run: run}
}

// send performs one request. timedOut reports that the timeout cut it short.
func (s *sender) send() (status int, n int64, timedOut bool, err error) {
	if s.timer == nil || s.fired {
		s.close()
		s.ctx, s.cancel = context.WithCancel(s.run)
		s.timer = time.AfterFunc(s.client.timeout, s.cancel)
		s.fired = false
	} else {
		s.timer.Reset(s.client.timeout)
	}

	status, n, err = s.client.do(s.ctx)

	s.fired = !s.timer.Stop()
	return status, n, s.fired && err != nil, err
}

// close stops the timer and releases the context.
func (s *sender) close() {
	if s.timer != nil {
		s.timer.Stop()
		s.cancel()
	}
}
