package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keeperhq/keeper/api"
	"github.com/keeperhq/keeper/logging"
)

// lockedBuffer collects a server's log for a test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger(w io.Writer, cfg config) (*slog.Logger, error) {
	return logging.New(w, cfg.LogFormat, cfg.logLevel)
}

// TestReplayRESTClientFile sends every request of api/keeper.http, in order, to a
// running server and checks the status each one documents. The tokens a person would
// paste from the emails are taken from the development mailer's files.
func TestReplayRESTClientFile(t *testing.T) {
	srv := startServer(t, nil)
	vars, reqs, err := parseHTTPFile(string(api.RESTClient))
	if err != nil {
		t.Fatalf("api/keeper.http: %v", err)
	}
	if len(reqs) < 40 {
		t.Fatalf("api/keeper.http: parsed only %d requests", len(reqs))
	}
	vars["host"] = srv.url

	named := map[string]namedResponse{}
	mailSince := time.Now()
	for _, rq := range reqs {
		raw := rq.url + rq.body
		switch {
		case strings.Contains(raw, "{{activationToken}}") &&
			vars["activationToken"] == "paste-the-token-from-the-activation-email":
			vars["activationToken"] = tokenFrom(t, srv.waitForMail(t, "/activate?token=", mailSince))
		case strings.Contains(raw, "{{resetToken}}"):
			vars["resetToken"] = tokenFrom(t, srv.waitForMail(t, "/reset-password?token=",
				mailSince))
		}

		status, res := send(t, rq, vars, named)
		if len(rq.expect) == 0 {
			t.Errorf("line %d (%s): no # Expect: line", rq.line, rq.title)
		} else if !slices.Contains(rq.expect, status) {
			t.Errorf("line %d (%s): %s %s: got %d, want %v\n%s", rq.line, rq.title, rq.method,
				rq.url, status, rq.expect, res.body)
		}
		if rq.name != "" {
			named[rq.name] = res
		}
	}
}

// send resolves and sends one request.
func send(t *testing.T, rq httpRequest, vars map[string]string,
	named map[string]namedResponse) (int, namedResponse) {
	t.Helper()
	url, err := resolve(rq.url, vars, named)
	if err != nil {
		t.Fatalf("line %d: %v", rq.line, err)
	}
	body, err := resolve(rq.body, vars, named)
	if err != nil {
		t.Fatalf("line %d: %v", rq.line, err)
	}

	r, err := http.NewRequest(rq.method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("line %d: %v", rq.line, err)
	}
	for _, h := range rq.headers {
		v, err := resolve(h[1], vars, named)
		if err != nil {
			t.Fatalf("line %d: %v", rq.line, err)
		}
		r.Header.Set(h[0], v)
	}

	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("line %d: %v", rq.line, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, namedResponse{header: res.Header, body: b}
}
