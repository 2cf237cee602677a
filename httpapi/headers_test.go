package httpapi_test

import (
	"net/http"
	"testing"
)

// TestAccountIsNotCached checks that the caller's own account, which holds the email
// address, is sent with Cache-Control: no-store, like the tokens.
func TestAccountIsNotCached(t *testing.T) {
	e := newEnv(t)
	e.activeUser("cache@example.com")
	_, tk := e.login("cache@example.com", pw)

	got := e.do(req{method: "GET", path: "/api/users/me", headers: bearer(tk.AccessToken)})
	if got.status != http.StatusOK {
		t.Fatalf("GET /api/users/me: got %d, want 200: %s", got.status, got.body)
	}
	if cc := got.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", cc)
	}
}
