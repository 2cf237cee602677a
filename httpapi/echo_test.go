package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keeperhq/keeper/httpapi"
)

// TestHugeInputIsNotEchoed holds the answers to requests that carry megabytes of
// client text in a name, key or token to a few KiB: error details and pages quote
// only the start of what was sent.
func TestHugeInputIsNotEchoed(t *testing.T) {
	const huge = 8 << 20
	e := newEnv(t, func(o *httpapi.Options) { o.MaxBodyBytes = 2 * huge })
	lt := strings.Repeat("<", huge)
	const form = "application/x-www-form-urlencoded"

	small := func(t *testing.T, got resp) {
		t.Helper()
		if len(got.body) >= 4096 {
			t.Errorf("body is %d bytes, want under 4096", len(got.body))
		}
	}

	t.Run("unknown field", func(t *testing.T) {
		got := e.do(req{method: "POST", path: "/api/auth/refresh", ctype: "json",
			body: `{"` + lt + `":""}`})
		small(t, got)
		checkProblem(t, got, http.StatusBadRequest, "unknown_field")
		if d := got.problem(t)["detail"].(string); !strings.Contains(d, "bytes)") {
			t.Errorf("detail %q does not give the length", d)
		}
	})
	t.Run("short unknown field reads as before", func(t *testing.T) {
		got := e.do(req{method: "POST", path: "/api/auth/refresh", ctype: "json",
			body: `{"<x>":""}`})
		checkProblem(t, got, http.StatusBadRequest, "unknown_field")
		if d := got.problem(t)["detail"]; d != `unknown field "<x>"` {
			t.Errorf("detail: got %q", d)
		}
	})
	t.Run("invalid key", func(t *testing.T) {
		got := e.do(req{method: "POST", path: "/api/result", ctype: "json",
			body: `{"` + lt + `":"v"}`})
		small(t, got)
		checkProblem(t, got, http.StatusBadRequest, "invalid_key")
	})
	t.Run("query parameter name", func(t *testing.T) {
		got := e.do(req{method: "GET",
			path: "/api/result?" + url.QueryEscape(strings.Repeat("<", 256<<10)) + "=1"})
		small(t, got)
		checkProblem(t, got, http.StatusBadRequest, "invalid_query")
	})
	t.Run("activate form field", func(t *testing.T) {
		got := e.do(req{method: "POST", path: "/activate", ctype: form,
			body: strings.Repeat(`"`, huge) + "=1"})
		small(t, got)
		if got.status != http.StatusBadRequest {
			t.Errorf("status: got %d, want 400", got.status)
		}
	})
	t.Run("reset token", func(t *testing.T) {
		got := e.do(req{method: "POST", path: "/reset-password", ctype: form,
			body: "token=" + strings.Repeat("A", huge) + "&password=one+passphrase" +
				"&confirm=another+one"})
		small(t, got)
		if got.status != http.StatusBadRequest || !strings.Contains(string(got.body), "not valid") {
			t.Errorf("got %d %s, want 400 and the token error page", got.status, got.body)
		}
	})
}
