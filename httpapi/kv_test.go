package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keeperhq/keeper"
)

// seed stores pairs directly in the store, bypassing HTTP.
func (e *env) seed(pairs map[string]string) {
	e.t.Helper()
	for k, v := range pairs {
		_, err := e.kv.Create(context.Background(), []keeper.Entry{{Key: k, Value: v}})
		if err != nil {
			e.t.Fatalf("seed %q: %v", k, err)
		}
	}
}

// state reads every pair from the store.
func (e *env) state() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	keys, err := e.kv.List(ctx, "", "", 1000)
	if err != nil {
		e.t.Fatalf("list: %v", err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		en, err := e.kv.Get(ctx, k)
		if err != nil {
			e.t.Fatalf("get %q: %v", k, err)
		}
		out[k] = en.Value
	}
	return out
}

// version returns the ETag a GET gives for key.
func (e *env) etag(key string) string {
	e.t.Helper()
	r := e.do(req{method: "GET", path: "/api/result?key=" + url.QueryEscape(key)})
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %q: status %d", key, r.status)
	}
	return r.header.Get("ETag")
}

func TestResultAPI(t *testing.T) {
	base := map[string]string{"a": "alpha", "empty": "", "ключ": "значение"}
	long := strings.Repeat("k", 257)

	cases := []struct {
		name string
		req  req
		// staleIfMatch sends If-Match with the current ETag of key "a" plus one.
		ifMatchA   string
		wantStatus int
		wantCode   string
		wantBody   string
		wantState  map[string]string // nil: must equal base (nothing changed)
	}{
		// GET
		{name: "get value", req: req{method: "GET", path: "/api/result?key=a"},
			wantStatus: 200, wantBody: "alpha"},
		{name: "get empty value", req: req{method: "GET", path: "/api/result?key=empty"},
			wantStatus: 200, wantBody: ""},
		{name: "get utf-8 key", req: req{method: "GET",
			path: "/api/result?key=" + url.QueryEscape("ключ")},
			wantStatus: 200, wantBody: "значение"},
		{name: "get without key", req: req{method: "GET", path: "/api/result"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "get empty key", req: req{method: "GET", path: "/api/result?key="},
			wantStatus: 400, wantCode: "invalid_key"},
		{name: "get key too long", req: req{method: "GET", path: "/api/result?key=" + long},
			wantStatus: 400, wantCode: "invalid_key"},
		{name: "get key with control", req: req{method: "GET", path: "/api/result?key=a%01"},
			wantStatus: 400, wantCode: "invalid_key"},
		{name: "get key not utf-8", req: req{method: "GET", path: "/api/result?key=%FF"},
			wantStatus: 400, wantCode: "invalid_key"},
		{name: "get key twice", req: req{method: "GET", path: "/api/result?key=a&key=b"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "get unknown parameter", req: req{method: "GET", path: "/api/result?key=a&x=1"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "get malformed escape", req: req{method: "GET", path: "/api/result?key=%zz"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "get unknown key", req: req{method: "GET", path: "/api/result?key=nope"},
			wantStatus: 404, wantCode: "key_not_found"},
		{name: "get case-sensitive", req: req{method: "GET", path: "/api/result?key=A"},
			wantStatus: 404, wantCode: "key_not_found"},

		// PUT
		{name: "put one", req: req{method: "PUT", path: "/api/result?key=b"},
			wantStatus: 201, wantBody: `{"b":""}`, wantState: with(base, "b", "")},
		{name: "put several", req: req{method: "PUT", path: "/api/result?key=b&key=c"},
			wantStatus: 201, wantBody: `{"b":"","c":""}`,
			wantState: with(with(base, "b", ""), "c", "")},
		{name: "put existing among new", req: req{method: "PUT",
			path: "/api/result?key=b&key=a"}, wantStatus: 409, wantCode: "key_exists"},
		{name: "put same key twice", req: req{method: "PUT", path: "/api/result?key=b&key=b"},
			wantStatus: 400, wantCode: "duplicate_key"},
		{name: "put without key", req: req{method: "PUT", path: "/api/result"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "put invalid key", req: req{method: "PUT", path: "/api/result?key=b&key="},
			wantStatus: 400, wantCode: "invalid_key"},
		{name: "put with body", req: req{method: "PUT", path: "/api/result?key=b",
			body: `{"b":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},

		// POST
		{name: "post pairs", req: req{method: "POST", path: "/api/result",
			body: `{"b":"beta","c":""}`, ctype: "json"},
			wantStatus: 201, wantBody: `{"b":"beta","c":""}`,
			wantState: with(with(base, "b", "beta"), "c", "")},
		{name: "post with charset", req: req{method: "POST", path: "/api/result",
			body: `{"b":"β"}`, ctype: "application/json; charset=utf-8"},
			wantStatus: 201, wantBody: `{"b":"β"}`, wantState: with(base, "b", "β")},
		{name: "post existing key", req: req{method: "POST", path: "/api/result",
			body: `{"b":"beta","a":"new"}`, ctype: "json"},
			wantStatus: 409, wantCode: "key_exists"},
		{name: "post empty object", req: req{method: "POST", path: "/api/result",
			body: `{}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "post array", req: req{method: "POST", path: "/api/result",
			body: `["b"]`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "post string", req: req{method: "POST", path: "/api/result",
			body: `"b"`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "post number value", req: req{method: "POST", path: "/api/result",
			body: `{"b":1}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_value"},
		{name: "post null value", req: req{method: "POST", path: "/api/result",
			body: `{"b":null}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_value"},
		{name: "post object value", req: req{method: "POST", path: "/api/result",
			body: `{"b":{"x":"y"}}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_value"},
		{name: "post malformed", req: req{method: "POST", path: "/api/result",
			body: `{"b":"x"`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_json"},
		{name: "post trailing data", req: req{method: "POST", path: "/api/result",
			body: `{"b":"x"} {}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_json"},
		{name: "post duplicate key", req: req{method: "POST", path: "/api/result",
			body: `{"b":"x","b":"y"}`, ctype: "json"},
			wantStatus: 400, wantCode: "duplicate_key"},
		{name: "post empty key", req: req{method: "POST", path: "/api/result",
			body: `{"":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_key"},
		{name: "post control key", req: req{method: "POST", path: "/api/result",
			body: `{"b\n":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_key"},
		{name: "post invalid utf-8", req: req{method: "POST", path: "/api/result",
			body: "{\"b\":\"\xff\"}", ctype: "json"}, wantStatus: 400, wantCode: "invalid_json"},
		{name: "post empty body", req: req{method: "POST", path: "/api/result",
			ctype: "json"}, wantStatus: 400, wantCode: "invalid_json"},
		{name: "post value too large", req: req{method: "POST", path: "/api/result",
			body: `{"b":"` + strings.Repeat("v", 16<<10+1) + `"}`, ctype: "json"},
			wantStatus: 413, wantCode: "value_too_large"},
		{name: "post body too large", req: req{method: "POST", path: "/api/result",
			body: `{"b":"` + strings.Repeat("v", 64<<10) + `"}`, ctype: "json"},
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "post form", req: req{method: "POST", path: "/api/result",
			body: `b=x`, ctype: "application/x-www-form-urlencoded"},
			wantStatus: 415, wantCode: "unsupported_media"},
		{name: "post no content type", req: req{method: "POST", path: "/api/result",
			body: `{"b":"x"}`}, wantStatus: 415, wantCode: "unsupported_media"},
		{name: "post latin-1", req: req{method: "POST", path: "/api/result",
			body: `{"b":"x"}`, ctype: "application/json; charset=latin1"},
			wantStatus: 415, wantCode: "unsupported_media"},
		{name: "post with query", req: req{method: "POST", path: "/api/result?key=b",
			body: `{"b":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_query"},

		// PATCH
		{name: "patch value", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"new"}`, ctype: "json"},
			wantStatus: 200, wantBody: `{"key":"a","value":"new"}`,
			wantState: with(base, "a", "new")},
		{name: "patch to empty", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":""}`, ctype: "json"},
			wantStatus: 200, wantBody: `{"key":"a","value":""}`, wantState: with(base, "a", "")},
		{name: "patch unknown key", req: req{method: "PATCH", path: "/api/result?key=nope",
			body: `{"value":"x"}`, ctype: "json"}, wantStatus: 404, wantCode: "key_not_found"},
		{name: "patch without value", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "patch null value", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":null}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_value"},
		{name: "patch number value", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":5}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_value"},
		{name: "patch unknown field", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"x","version":2}`, ctype: "json"},
			wantStatus: 400, wantCode: "unknown_field"},
		{name: "patch field in other case", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"Value":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "unknown_field"},
		{name: "patch malformed", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_json"},
		{name: "patch array body", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `["x"]`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "patch text body", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `new`, ctype: "text/plain"}, wantStatus: 415, wantCode: "unsupported_media"},
		{name: "patch without key", req: req{method: "PATCH", path: "/api/result",
			body: `{"value":"x"}`, ctype: "json"}, wantStatus: 400, wantCode: "invalid_query"},
		{name: "patch value too large", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"` + strings.Repeat("v", 16<<10+1) + `"}`, ctype: "json"},
			wantStatus: 413, wantCode: "value_too_large"},
		{name: "patch if-match current", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"new"}`, ctype: "json"}, ifMatchA: "current",
			wantStatus: 200, wantBody: `{"key":"a","value":"new"}`,
			wantState: with(base, "a", "new")},
		{name: "patch if-match stale", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"new"}`, ctype: "json"}, ifMatchA: "stale",
			wantStatus: 412, wantCode: "version_mismatch"},
		{name: "patch if-match weak", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"new"}`, ctype: "json"}, ifMatchA: "weak",
			wantStatus: 412, wantCode: "version_mismatch"},
		{name: "patch if-match star", req: req{method: "PATCH", path: "/api/result?key=a",
			body: `{"value":"new"}`, ctype: "json", headers: map[string]string{"If-Match": "*"}},
			wantStatus: 200, wantBody: `{"key":"a","value":"new"}`,
			wantState: with(base, "a", "new")},

		// DELETE
		{name: "delete", req: req{method: "DELETE", path: "/api/result?key=a"},
			wantStatus: 204, wantState: without(base, "a")},
		{name: "delete unknown", req: req{method: "DELETE", path: "/api/result?key=nope"},
			wantStatus: 404, wantCode: "key_not_found"},
		{name: "delete without key", req: req{method: "DELETE", path: "/api/result"},
			wantStatus: 400, wantCode: "invalid_query"},
		{name: "delete if-match current", req: req{method: "DELETE", path: "/api/result?key=a"},
			ifMatchA: "current", wantStatus: 204, wantState: without(base, "a")},
		{name: "delete if-match stale", req: req{method: "DELETE", path: "/api/result?key=a"},
			ifMatchA: "stale", wantStatus: 412, wantCode: "version_mismatch"},

		// Routing
		{name: "unknown route", req: req{method: "GET", path: "/api/nothing"},
			wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", req: req{method: "POST", path: "/healthz"},
			wantStatus: 405, wantCode: "method_not_allowed"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(base)
			rq := tc.req
			if tc.ifMatchA != "" {
				rq.headers = map[string]string{"If-Match": ifMatchFor(e, tc.ifMatchA)}
			}

			got := e.do(rq)
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (body %s)", got.status, tc.wantStatus, got.body)
			}
			if tc.wantCode != "" {
				checkProblem(t, got, tc.wantStatus, tc.wantCode)
			} else if tc.wantStatus != http.StatusNoContent {
				checkBody(t, got, tc.wantBody)
			}

			want := tc.wantState
			if want == nil {
				want = base
			}
			if st := e.state(); !maps.Equal(st, want) {
				t.Errorf("stored state: got %v, want %v", st, want)
			}
		})
	}
}

// ifMatchFor builds an If-Match header from key "a"'s current ETag.
func ifMatchFor(e *env, kind string) string {
	current := e.etag("a")
	switch kind {
	case "current":
		return current
	case "weak":
		return "W/" + current
	}
	return `"999999"`
}

// checkProblem asserts the problem document's status, code and request id.
func checkProblem(t *testing.T, got resp, status int, code string) {
	t.Helper()
	p := got.problem(t)
	if p["code"] != code {
		t.Errorf("code: got %v, want %s (detail %v)", p["code"], code, p["detail"])
	}
	if p["status"] != float64(status) {
		t.Errorf("problem status: got %v, want %d", p["status"], status)
	}
	if id := got.header.Get("X-Request-Id"); id == "" || p["request_id"] != id {
		t.Errorf("request_id: got %v, want the X-Request-Id header %q", p["request_id"], id)
	}
	if p["type"] != "/problems/"+code {
		t.Errorf("type: got %v, want /problems/%s", p["type"], code)
	}
}

// checkBody compares a success body: JSON semantically, anything else exactly.
func checkBody(t *testing.T, got resp, want string) {
	t.Helper()
	if strings.HasPrefix(got.header.Get("Content-Type"), "application/json") {
		var g, w any
		if err := json.Unmarshal(got.body, &g); err != nil {
			t.Fatalf("body %q is not JSON: %v", got.body, err)
		}
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatalf("want %q is not JSON: %v", want, err)
		}
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("body: got %s, want %s", gb, wb)
		}
		return
	}
	if string(got.body) != want {
		t.Errorf("body: got %q, want %q", got.body, want)
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

func without(m map[string]string, k string) map[string]string {
	out := maps.Clone(m)
	delete(out, k)
	return out
}
