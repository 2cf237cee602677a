package httpapi_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestPageTexts holds the pages to what is true after each step: what a used link means,
// what a password reset ends, how to log in, and a title without repetition.
func TestPageTexts(t *testing.T) {
	e := newEnv(t)
	e.register("ada@example.com")
	activation := e.mailToken("ada@example.com", "activate")
	activated := e.do(req{method: "POST", path: "/activate",
		ctype: "application/x-www-form-urlencoded", body: "token=" + activation})

	e.do(req{method: "POST", path: "/api/auth/password/forgot", ctype: "json",
		body: `{"email":"ada@example.com"}`})
	reset := e.mailToken("ada@example.com", "reset-password")
	resetDone := e.do(req{method: "POST", path: "/reset-password",
		ctype: "application/x-www-form-urlencoded",
		body: url.Values{"token": {reset}, "password": {"a fine new passphrase"},
			"confirm": {"a fine new passphrase"}}.Encode()})

	const resendForm = `action="/activation/resend"`
	cases := []struct {
		name       string
		got        resp
		wantStatus int
		want       []string
		wantNot    []string
	}{
		{name: "activated", got: activated, wantStatus: 200,
			want:    []string{"active", "POST /api/auth/login"},
			wantNot: []string{"You can now log in."}},
		{name: "used activation link", wantStatus: 400,
			got:     e.do(req{method: "GET", path: "/activate?token=" + activation}),
			want:    []string{"already been used", "active already", "/api/auth/login"},
			wantNot: []string{resendForm, "new activation link"}},
		{name: "used activation link posted", wantStatus: 400,
			got: e.do(req{method: "POST", path: "/activate",
				ctype: "application/x-www-form-urlencoded", body: "token=" + activation}),
			want:    []string{"already been used", "active already"},
			wantNot: []string{resendForm}},
		{name: "unknown activation link still offers a new one", wantStatus: 400,
			got:  e.do(req{method: "GET", path: "/activate?token=nonsense"}),
			want: []string{"not valid", resendForm}},
		{name: "used reset link offers a new one", wantStatus: 400,
			got:  e.do(req{method: "GET", path: "/reset-password?token=" + reset}),
			want: []string{"already been used", `href="/forgot-password"`}},
		{name: "reset done", got: resetDone, wantStatus: 200,
			want:    []string{"refresh tokens", "Access tokens already issued", "expires"},
			wantNot: []string{"signed out"}},
		{name: "home", wantStatus: 200, got: e.do(req{method: "GET", path: "/"}),
			want:    []string{"<title>Keeper</title>", "<h1>Keeper</h1>"},
			wantNot: []string{"Keeper · Keeper"}},
		{name: "other pages keep the site name", wantStatus: 200,
			got:  e.do(req{method: "GET", path: "/forgot-password"}),
			want: []string{"<title>Forgot your password? · Keeper</title>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := string(tc.got.body)
			if tc.got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d\n%s", tc.got.status, tc.wantStatus, body)
			}
			if ct := tc.got.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type: got %q, want text/html", ct)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(body, s) {
					t.Errorf("the page says %q:\n%s", s, body)
				}
			}
		})
	}
}
