package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
)

func TestListKeys(t *testing.T) {
	e := newEnv(t)
	e.seed(map[string]string{
		"app/a": "1", "app/b": "2", "app/c": "3", "app%x": "4", "b": "5", "ä": "6",
	})

	cases := []struct {
		name       string
		query      string
		wantStatus int
		wantKeys   []string
		wantNext   any
		wantCode   string
	}{
		{name: "all", query: "", wantStatus: 200,
			wantKeys: []string{"app%x", "app/a", "app/b", "app/c", "b", "ä"}, wantNext: nil},
		{name: "prefix", query: "?prefix=app/", wantStatus: 200,
			wantKeys: []string{"app/a", "app/b", "app/c"}, wantNext: nil},
		{name: "prefix with percent", query: "?prefix=" + url.QueryEscape("app%"),
			wantStatus: 200, wantKeys: []string{"app%x"}, wantNext: nil},
		{name: "first page", query: "?prefix=app/&limit=2", wantStatus: 200,
			wantKeys: []string{"app/a", "app/b"}, wantNext: "app/b"},
		{name: "second page", query: "?prefix=app/&limit=2&after=app/b", wantStatus: 200,
			wantKeys: []string{"app/c"}, wantNext: nil},
		{name: "exact page", query: "?prefix=app/&limit=3", wantStatus: 200,
			wantKeys: []string{"app/a", "app/b", "app/c"}, wantNext: nil},
		{name: "none", query: "?prefix=zzz", wantStatus: 200, wantKeys: []string{}},
		{name: "limit zero", query: "?limit=0", wantStatus: 400, wantCode: "invalid_query"},
		{name: "limit too big", query: "?limit=1001", wantStatus: 400, wantCode: "invalid_query"},
		{name: "limit not a number", query: "?limit=ten", wantStatus: 400,
			wantCode: "invalid_query"},
		{name: "limit twice", query: "?limit=1&limit=2", wantStatus: 400,
			wantCode: "invalid_query"},
		{name: "unknown parameter", query: "?page=2", wantStatus: 400,
			wantCode: "invalid_query"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(req{method: "GET", path: "/api/keys" + tc.query})
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (%s)", got.status, tc.wantStatus, got.body)
			}
			if tc.wantCode != "" {
				checkProblem(t, got, tc.wantStatus, tc.wantCode)
				return
			}
			var page struct {
				Keys []string `json:"keys"`
				Next any      `json:"next"`
			}
			if err := json.Unmarshal(got.body, &page); err != nil {
				t.Fatalf("body %s: %v", got.body, err)
			}
			if !slices.Equal(page.Keys, tc.wantKeys) {
				t.Errorf("keys: got %q, want %q", page.Keys, tc.wantKeys)
			}
			if page.Next != tc.wantNext {
				t.Errorf("next: got %v, want %v", page.Next, tc.wantNext)
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	e := newEnv(t)
	e.seed(map[string]string{"a": "alpha"})
	tag := e.etag("a")

	got := e.do(req{method: "GET", path: "/api/result?key=a",
		headers: map[string]string{"If-None-Match": tag}})
	if got.status != http.StatusNotModified || len(got.body) != 0 {
		t.Fatalf("unchanged entry: got %d %q, want 304 and no body", got.status, got.body)
	}

	e.do(req{method: "PATCH", path: "/api/result?key=a", body: `{"value":"b"}`, ctype: "json"})
	got = e.do(req{method: "GET", path: "/api/result?key=a",
		headers: map[string]string{"If-None-Match": tag}})
	if got.status != http.StatusOK || string(got.body) != "b" {
		t.Fatalf("changed entry: got %d %q, want 200 \"b\"", got.status, got.body)
	}
	if got.header.Get("ETag") == tag {
		t.Errorf("ETag did not change after PATCH: %s", tag)
	}
}

func TestVersionsAreNotReused(t *testing.T) {
	e := newEnv(t)
	e.seed(map[string]string{"a": "one"})
	old := e.etag("a")

	e.do(req{method: "DELETE", path: "/api/result?key=a"})
	e.do(req{method: "PUT", path: "/api/result?key=a"})
	got := e.do(req{method: "DELETE", path: "/api/result?key=a",
		headers: map[string]string{"If-Match": old}})
	if got.status != http.StatusPreconditionFailed {
		t.Fatalf("If-Match with the deleted entry's ETag: got %d, want 412", got.status)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)

	cases := []struct {
		name string
		sent string
		keep bool
	}{
		{name: "generated", sent: "", keep: false},
		{name: "client id kept", sent: "trace-42.a_b", keep: true},
		{name: "unsafe id replaced", sent: "bad id\"with quotes", keep: false},
		{name: "long id replaced", sent: strings.Repeat("x", 65), keep: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.sent != "" {
				h["X-Request-Id"] = tc.sent
			}
			got := e.do(req{method: "GET", path: "/api/result?key=none", headers: h})
			id := got.header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("no X-Request-Id in the response")
			}
			if (id == tc.sent) != tc.keep {
				t.Errorf("X-Request-Id: got %q for sent %q, keep=%v", id, tc.sent, tc.keep)
			}
			if !strings.Contains(e.logs.String(), `"request_id":"`+id+`"`) {
				t.Errorf("the access log has no line with request_id %q", id)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if got := e.do(req{method: "GET", path: "/healthz"}); got.status != 200 {
		t.Errorf("healthz: got %d, want 200", got.status)
	}
	if got := e.do(req{method: "GET", path: "/readyz"}); got.status != 200 {
		t.Errorf("readyz with the database open: got %d, want 200", got.status)
	}

	_ = e.db.Close()
	got := e.do(req{method: "GET", path: "/readyz"})
	checkProblem(t, got, http.StatusServiceUnavailable, "service_unavailable")
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	got := e.do(req{method: "POST", path: "/api/keys"})
	checkProblem(t, got, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := got.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow: got %q, want \"GET, HEAD\"", allow)
	}
}

// faultyKV fails in the ways no real store can be made to on demand: an unexpected
// error and a panic.
type faultyKV struct {
	keeper.KVStore
	panics bool
}

func (f faultyKV) Get(ctx context.Context, key string) (keeper.Entry, error) {
	if f.panics {
		panic("store exploded")
	}
	return keeper.Entry{}, errors.New("disk on fire at /var/secret/path")
}

func TestInternalErrors(t *testing.T) {
	for _, panics := range []bool{false, true} {
		name := map[bool]string{false: "error", true: "panic"}[panics]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(o *httpapi.Options) {
				o.KV = faultyKV{KVStore: o.KV, panics: panics}
			})
			got := e.do(req{method: "GET", path: "/api/result?key=a"})
			checkProblem(t, got, http.StatusInternalServerError, "internal_error")

			body := string(got.body)
			for _, secret := range []string{"disk on fire", "/var/secret", "exploded"} {
				if strings.Contains(body, secret) {
					t.Errorf("the 500 body leaks %q: %s", secret, body)
				}
			}
			id := got.header.Get("X-Request-Id")
			logs := e.logs.String()
			detail := map[bool]string{false: "disk on fire", true: "store exploded"}[panics]
			if !strings.Contains(logs, detail) || !strings.Contains(logs, id) {
				t.Errorf("the log lacks the detail %q with request id %s:\n%s", detail, id, logs)
			}
		})
	}
}

func TestProblemPages(t *testing.T) {
	e := newEnv(t)
	got := e.do(req{method: "GET", path: "/problems/key_not_found"})
	if got.status != 200 || !strings.Contains(string(got.body), "Key not found") {
		t.Errorf("problem page: got %d %s", got.status, got.body)
	}
	got = e.do(req{method: "GET", path: "/problems/nonsense"})
	checkProblem(t, got, http.StatusNotFound, "not_found")
}
