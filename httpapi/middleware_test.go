package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
)

// pairsBody returns a POST /api/result body of n pairs whose values are size bytes.
func pairsBody(prefix string, n, size int) string {
	pairs := make(map[string]string, n)
	for i := range n {
		pairs[prefix+strconv.Itoa(i)] = strings.Repeat("v", size)
	}
	b, _ := json.Marshal(pairs)
	return string(b)
}

// heldBody is a POST /api/result whose client has sent only the first byte of its
// body, so that the request holds its share of the body budget.
type heldBody struct {
	rest []byte
	pipe *io.PipeWriter
	done chan resp
}

// holdBody starts POST /api/result with body and returns once the server has taken the
// request's share of the body budget: the client sends Expect: 100-continue, and the
// server asks for the body only when its handler reads it, after the budget.
func (e *env) holdBody(body string) *heldBody {
	e.t.Helper()
	pr, pw := io.Pipe()
	r, err := http.NewRequest("POST", e.srv.URL+"/api/result", pr)
	if err != nil {
		e.t.Fatal(err)
	}
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}

	// Runs before the server's cleanup, which would otherwise wait for this request
	// forever if the test stops early.
	e.t.Cleanup(func() { _ = pw.CloseWithError(errors.New("the test is over")) })

	h := &heldBody{rest: []byte(body[1:]), pipe: pw, done: make(chan resp, 1)}
	go func() {
		res, err := client.Do(r)
		if err != nil {
			h.done <- resp{}
			return
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		h.done <- resp{status: res.StatusCode, header: res.Header, body: out}
	}()
	if _, err := pw.Write([]byte(body[:1])); err != nil {
		e.t.Fatalf("send the first byte of the held body: %v", err)
	}
	return h
}

// finish sends the rest of the body and returns the response.
func (h *heldBody) finish(t *testing.T) resp {
	t.Helper()
	if _, err := h.pipe.Write(h.rest); err != nil {
		t.Fatalf("send the rest of the held body: %v", err)
	}
	_ = h.pipe.Close()
	select {
	case got := <-h.done:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("the held request got no answer")
		return resp{}
	}
}

// withBodyBudget sets the body budget and how long a request may wait for it.
func withBodyBudget(budget int64, wait time.Duration) envOption {
	return func(o *httpapi.Options) {
		o.MaxInflightBodyBytes = budget
		o.BodyWaitTimeout = wait
	}
}

func TestBodyBudget(t *testing.T) {
	held := pairsBody("held", 4, 15<<10) // under the test limits: 64 KiB body, 16 KiB value
	small := req{method: "POST", path: "/api/result", body: `{"small":"x"}`, ctype: "json"}
	// A request takes a share of the budget before its handler reads the body: a step
	// (32 KiB), or the whole budget when that is smaller. With a budget of 1 KiB the
	// held request has spent it all. How bodies are charged as they are read is
	// covered by TestBodyBudgetStalledClients and TestBodyBudgetChargedAsRead.
	const heldBudget = 1 << 10

	t.Run("a body waits while the budget is spent, then proceeds", func(t *testing.T) {
		e := newEnv(t, withBodyBudget(heldBudget, 10*time.Second))
		h := e.holdBody(held)

		done := make(chan resp, 1)
		go func() {
			got, err := e.try(small)
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		select {
		case got := <-done:
			t.Fatalf("a body was served while the budget was spent: got %d %s",
				got.status, got.body)
		case <-time.After(300 * time.Millisecond):
		}

		if got := h.finish(t); got.status != http.StatusCreated {
			t.Fatalf("held request: got %d %s, want 201", got.status, got.body)
		}
		if got := <-done; got.status != http.StatusCreated {
			t.Fatalf("waiting request: got %d %s, want 201", got.status, got.body)
		}
	})

	t.Run("a wait that runs out is answered 503 with Retry-After", func(t *testing.T) {
		e := newEnv(t, withBodyBudget(heldBudget, 200*time.Millisecond))
		e.seed(map[string]string{"a": "alpha"})
		h := e.holdBody(held)

		start := time.Now()
		got := e.do(req{method: "GET", path: "/api/result?key=a"})
		if got.status != http.StatusOK || time.Since(start) > 150*time.Millisecond {
			t.Errorf("a read while the budget is spent: got %d after %s, want 200 at once",
				got.status, time.Since(start))
		}

		got = e.do(small)
		checkProblem(t, got, http.StatusServiceUnavailable, "service_unavailable")
		if s, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After: got %q, want a positive number of seconds",
				got.header.Get("Retry-After"))
		}
		if _, ok := e.state()["small"]; ok {
			t.Error("the refused body was stored")
		}
		if got := h.finish(t); got.status != http.StatusCreated {
			t.Errorf("held request: got %d %s, want 201", got.status, got.body)
		}
		if got := e.do(small); got.status != http.StatusCreated {
			t.Errorf("after the budget is free: got %d %s, want 201", got.status, got.body)
		}
	})
}

// TestBodyBudgetStalledClients is the attack the per-read charge stops: as many
// clients as the budget has room for declare a body of the largest size, some by
// length and some chunked, and then send nothing. They must hold only a step each, so
// that a small body from anyone else is served at once, not after the wait for budget
// runs out (10 s here) with a 503.
func TestBodyBudgetStalledClients(t *testing.T) {
	const maxBody = 64 << 10 // the test environment's body limit
	e := newEnv(t, withBodyBudget(httpapi.DefaultInflightBodyFactor*maxBody, 10*time.Second))

	for i := range httpapi.DefaultInflightBodyFactor {
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() }) // runs before the server waits for them
		length := "Content-Length: " + strconv.Itoa(maxBody)
		if i%2 == 1 {
			length = "Transfer-Encoding: chunked"
		}
		// Expect: 100-continue makes the server say when the handler starts reading
		// the body, which is after the request has taken its share of the budget.
		_, err = io.WriteString(conn, "POST /api/result HTTP/1.1\r\nHost: keeper.test\r\n"+
			"Content-Type: application/json\r\nExpect: 100-continue\r\n"+length+"\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, " 100 ") {
			t.Fatalf("stalled client %d: got %q, %v; want 100 Continue", i, line, err)
		}
	}

	done := make(chan resp, 1)
	go func() {
		got, err := e.try(req{method: "POST", path: "/api/result", body: `{"small":"x"}`,
			ctype: "json"})
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	select {
	case got := <-done:
		if got.status != http.StatusCreated {
			t.Errorf("a small body while clients stall: got %d %s, want 201",
				got.status, got.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a small body waited for budget held by clients that sent nothing")
	}
}

// abandon sends rq with a client that gives up after timeout, and returns the request
// id it sent.
func (e *env) abandon(rq req, timeout time.Duration) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, rq.method, e.srv.URL+rq.path,
		strings.NewReader(rq.body))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	id := fmt.Sprintf("abandoned-%d", time.Now().UnixNano())
	r.Header.Set("X-Request-Id", id)
	if res, err := e.client.Do(r); err == nil {
		_ = res.Body.Close()
		e.t.Fatalf("%s %s was answered %d before the client gave up", rq.method, rq.path,
			res.StatusCode)
	}
	return id
}

// checkClientClosed waits for the access line of request id and holds its logs to
// those of a client abort: 499, an info line, nothing at error level.
func checkClientClosed(t *testing.T, e *env, id string) {
	t.Helper()
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; {
		lines = logLines(t, e.logs.String(), id)
		if hasMsg(lines, "request") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	if !hasMsg(lines, "request") {
		t.Fatalf("no access line for request %s:\n%s", id, e.logs.String())
	}
	for _, l := range lines {
		switch {
		case l["level"] == "ERROR":
			t.Errorf("an abandoned request is logged as an error: %v", l)
		case l["msg"] == "request" && l["status"] != float64(499):
			t.Errorf("access line status: got %v, want 499", l["status"])
		case l["msg"] == "request" && l["code"] != nil:
			t.Errorf("access line code: got %v, want none", l["code"])
		}
	}
	if !hasMsg(lines, "client closed request") {
		t.Errorf("no \"client closed request\" line for %s:\n%s", id, e.logs.String())
	}
}

// logLines returns the JSON log lines that name request id.
func logLines(t *testing.T, logs, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, id) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func hasMsg(lines []map[string]any, msg string) bool {
	for _, l := range lines {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// stallingKV holds every write until the request's context ends, then fails the way
// the SQLite store does when its caller has gone.
type stallingKV struct {
	keeper.KVStore
}

func (stallingKV) Create(ctx context.Context, _ []keeper.Entry) ([]keeper.Entry, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("kv create: begin: %w", ctx.Err())
}

func TestClientAbortIsNotAServerFailure(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.KV = stallingKV{KVStore: o.KV} })
	id := e.abandon(req{method: "POST", path: "/api/result", body: `{"a":"1"}`},
		100*time.Millisecond)
	checkClientClosed(t, e, id)
}

// TestRealFailureWithCanceledCauseStaysAnError makes sure only a cancellation caused by
// the client counts as a client abort.
func TestRealFailureWithCanceledCauseStaysAnError(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.KV = cancelingKV{KVStore: o.KV} })
	got := e.do(req{method: "POST", path: "/api/result", body: `{"a":"1"}`, ctype: "json"})
	checkProblem(t, got, http.StatusInternalServerError, "internal_error")
}

// cancelingKV fails with a cancellation of its own while the client still waits.
type cancelingKV struct {
	keeper.KVStore
}

func (cancelingKV) Create(context.Context, []keeper.Entry) ([]keeper.Entry, error) {
	return nil, fmt.Errorf("kv create: %w", context.Canceled)
}

func TestNonCanonicalPaths(t *testing.T) {
	e := newEnv(t)
	e.seed(map[string]string{"a": "alpha"})
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}

	for _, path := range []string{"//api/result", "/api/./result", "/api/x/../result",
		"/api/result/.", "/api//result"} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			t.Run(method+" "+path, func(t *testing.T) {
				rq := req{method: method, path: path + "?key=a"}
				if method == "POST" {
					rq = req{method: method, path: path, body: `{"b":"x"}`, ctype: "json"}
				}
				got := e.do(rq)
				checkProblem(t, got, http.StatusNotFound, "not_found")
				if loc := got.header.Get("Location"); loc != "" {
					t.Errorf("Location: got %q, want none", loc)
				}
			})
		}
	}
	if st := e.state(); len(st) != 1 || st["a"] != "alpha" {
		t.Errorf("state after refused requests: got %v, want only a", st)
	}

	for _, path := range []string{"/", "/api/result?key=a", "/problems/not_found"} {
		if got := e.do(req{method: "GET", path: path}); got.status != http.StatusOK {
			t.Errorf("GET %s: got %d, want 200", path, got.status)
		}
	}
}

// TestErrorsAreNotRedirects is a guard on the check above: a client that follows
// redirects must still see the 404, not the answer of the cleaned path.
func TestErrorsAreNotRedirects(t *testing.T) {
	e := newEnv(t)
	e.seed(map[string]string{"a": "alpha"})
	got := e.do(req{method: "GET", path: "/api/x/../result?key=a"})
	if got.status == http.StatusOK {
		t.Fatalf("a non-canonical path was redirected to the value: %s", got.body)
	}
	checkProblem(t, got, http.StatusNotFound, "not_found")
}
