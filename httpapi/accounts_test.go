package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keeperhq/keeper/httpapi"
)

const pw = "correct horse battery"

var linkRe = regexp.MustCompile(`/(activate|reset-password)\?token=([A-Za-z0-9_-]+)`)

// mailToken returns the token of the newest queued message to `to` whose link has the
// given path ("activate" or "reset-password").
func (e *env) mailToken(to, path string) string {
	e.t.Helper()
	msgs, err := e.outbox.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i].Message
		if m.To != to {
			continue
		}
		if l := linkRe.FindStringSubmatch(m.Text); l != nil && l[1] == path {
			return l[2]
		}
	}
	e.t.Fatalf("no %s link mailed to %s", path, to)
	return ""
}

func (e *env) register(email string) resp {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/users", ctype: "json",
		body: `{"email":"` + email + `","name":"Ada","password":"` + pw + `"}`})
}

// activeUser registers and activates an account and returns its id.
func (e *env) activeUser(email string) int64 {
	e.t.Helper()
	if r := e.register(email); r.status != http.StatusAccepted {
		e.t.Fatalf("register %s: %d %s", email, r.status, r.body)
	}
	r := e.do(req{method: "POST", path: "/api/users/activate", ctype: "json",
		body: `{"token":"` + e.mailToken(email, "activate") + `"}`})
	if r.status != http.StatusOK {
		e.t.Fatalf("activate %s: %d %s", email, r.status, r.body)
	}
	var me struct{ ID int64 }
	_ = json.Unmarshal(r.body, &me)
	return me.ID
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func (e *env) login(email, password string) (resp, tokens) {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/api/auth/login", ctype: "json",
		body: `{"email":"` + email + `","password":"` + password + `"}`})
	var tk tokens
	_ = json.Unmarshal(r.body, &tk)
	return r, tk
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func TestRegistration(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		ctype      string
		wantStatus int
		wantCode   string
		wantFields []string
	}{
		{"valid", `{"email":"new@example.com","name":"Ada","password":"` + pw + `"}`, "json",
			202, "", nil},
		{"existing address answers the same",
			`{"email":" Known@Example.com ","name":"Eve","password":"` + pw + `"}`, "json",
			202, "", nil},
		{"every field wrong", `{"email":"nope","name":"","password":"short"}`, "json",
			400, "validation_failed", []string{"email", "name", "password"}},
		{"password of 129 characters", `{"email":"a@example.com","name":"A","password":"` +
			strings.Repeat("é", 129) + `"}`, "json", 400, "validation_failed",
			[]string{"password"}},
		{"status refused", `{"email":"a@example.com","name":"A","password":"` + pw +
			`","status":"active"}`, "json", 400, "unknown_field", nil},
		{"id refused", `{"id":1,"email":"a@example.com","name":"A","password":"` + pw + `"}`,
			"json", 400, "unknown_field", nil},
		{"wrong type", `{"email":5,"name":"A","password":"` + pw + `"}`, "json",
			400, "invalid_request", nil},
		{"malformed", `{"email":`, "json", 400, "invalid_json", nil},
		{"form body", `email=a@example.com`, "application/x-www-form-urlencoded",
			415, "unsupported_media", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.activeUser("known@example.com")
			got := e.do(req{method: "POST", path: "/api/users", body: tc.body, ctype: tc.ctype})
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (%s)", got.status, tc.wantStatus, got.body)
			}
			if tc.wantCode == "" {
				checkBody(t, got, `{"message":"If this address can be registered, an email `+
					`with an activation link is on its way. Check your inbox."}`)
				return
			}
			checkProblem(t, got, tc.wantStatus, tc.wantCode)
			var p struct{ Errors []struct{ Field string } }
			_ = json.Unmarshal(got.body, &p)
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tc.wantFields, ",") {
				t.Errorf("field errors: got %v, want %v", fields, tc.wantFields)
			}
		})
	}
}

func TestActivationAndLogin(t *testing.T) {
	e := newEnv(t)
	if r := e.register("ada@example.com"); r.status != 202 {
		t.Fatalf("register: %d", r.status)
	}

	r, _ := e.login("ada@example.com", pw)
	checkProblem(t, r, http.StatusForbidden, "account_not_activated")

	token := e.mailToken("ada@example.com", "activate")
	for _, bad := range []string{"garbage", strings.Repeat("A", 43)} {
		r = e.do(req{method: "POST", path: "/api/users/activate", ctype: "json",
			body: `{"token":"` + bad + `"}`})
		checkProblem(t, r, http.StatusBadRequest, "token_invalid")
	}
	r = e.do(req{method: "POST", path: "/api/users/activate", ctype: "json",
		body: `{"token":"` + token + `"}`})
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"active"`) {
		t.Fatalf("activate: got %d %s, want 200 and an active account", r.status, r.body)
	}
	r = e.do(req{method: "POST", path: "/api/users/activate", ctype: "json",
		body: `{"token":"` + token + `"}`})
	checkProblem(t, r, http.StatusBadRequest, "token_used")

	wrong, _ := e.login("ada@example.com", "not the password")
	unknown, _ := e.login("nobody@example.com", pw)
	for _, r := range []resp{wrong, unknown} {
		checkProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
	}
	if strings.ReplaceAll(string(wrong.body), wrong.header.Get("X-Request-Id"), "") !=
		strings.ReplaceAll(string(unknown.body), unknown.header.Get("X-Request-Id"), "") {
		t.Errorf("wrong password and unknown email differ:\n%s\n%s", wrong.body, unknown.body)
	}

	r, tk := e.login("ada@example.com", pw)
	if r.status != 200 || tk.TokenType != "Bearer" || tk.ExpiresIn != 900 ||
		tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("login: got %d %+v", r.status, tk)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login Cache-Control: got %q, want no-store", cc)
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	e.activeUser("ada@example.com")
	_, first := e.login("ada@example.com", pw)

	refresh := func(token string) (resp, tokens) {
		r := e.do(req{method: "POST", path: "/api/auth/refresh", ctype: "json",
			body: `{"refresh_token":"` + token + `"}`})
		var tk tokens
		_ = json.Unmarshal(r.body, &tk)
		return r, tk
	}

	r, second := refresh(first.RefreshToken)
	if r.status != 200 || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: got %d, rotated=%v", r.status, second.RefreshToken != first.RefreshToken)
	}
	r, _ = refresh(first.RefreshToken)
	checkProblem(t, r, http.StatusUnauthorized, "refresh_token_reused")
	r, _ = refresh(second.RefreshToken)
	checkProblem(t, r, http.StatusUnauthorized, "unauthorized")

	_, third := e.login("ada@example.com", pw)
	r = e.do(req{method: "POST", path: "/api/auth/logout", ctype: "json",
		body: `{"refresh_token":"` + third.RefreshToken + `"}`})
	if r.status != http.StatusNoContent {
		t.Fatalf("logout: got %d", r.status)
	}
	r, _ = refresh(third.RefreshToken)
	checkProblem(t, r, http.StatusUnauthorized, "unauthorized")
	r = e.do(req{method: "POST", path: "/api/auth/logout", ctype: "json",
		body: `{"refresh_token":"never-issued"}`})
	if r.status != http.StatusNoContent {
		t.Errorf("logout of an unknown token: got %d, want 204", r.status)
	}
}

func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	e.activeUser("ada@example.com")
	_, session := e.login("ada@example.com", pw)

	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		r := e.do(req{method: "POST", path: "/api/auth/password/forgot", ctype: "json",
			body: `{"email":"` + email + `"}`})
		if r.status != http.StatusAccepted {
			t.Fatalf("forgot %s: got %d", email, r.status)
		}
	}
	token := e.mailToken("ada@example.com", "reset-password")

	reset := func(password string) resp {
		return e.do(req{method: "POST", path: "/api/auth/password/reset", ctype: "json",
			body: `{"token":"` + token + `","password":"` + password + `"}`})
	}
	checkProblem(t, reset("short"), http.StatusBadRequest, "validation_failed")
	if r := reset("a brand new passphrase"); r.status != http.StatusNoContent {
		t.Fatalf("reset: got %d %s", r.status, r.body)
	}
	checkProblem(t, reset("another passphrase"), http.StatusBadRequest, "token_used")

	old, _ := e.login("ada@example.com", pw)
	checkProblem(t, old, http.StatusUnauthorized, "invalid_credentials")
	if r, _ := e.login("ada@example.com", "a brand new passphrase"); r.status != 200 {
		t.Errorf("login with the new password: got %d", r.status)
	}
	r := e.do(req{method: "POST", path: "/api/auth/refresh", ctype: "json",
		body: `{"refresh_token":"` + session.RefreshToken + `"}`})
	checkProblem(t, r, http.StatusUnauthorized, "unauthorized")
}

func TestProfilesAndMe(t *testing.T) {
	e := newEnv(t)
	ada := e.activeUser("ada@example.com")
	bob := e.activeUser("bob@example.com")
	e.register("pending@example.com")
	_, adaTok := e.login("ada@example.com", pw)
	_, bobTok := e.login("bob@example.com", pw)
	adaPath := "/api/user/" + strconv.FormatInt(ada, 10)

	cases := []struct {
		name       string
		path       string
		headers    map[string]string
		wantStatus int
		wantCode   string
		wantEmail  bool
	}{
		{"public profile", adaPath, nil, 200, "", false},
		{"own profile shows the email", adaPath, bearer(adaTok.AccessToken), 200, "", true},
		{"another user sees no email", adaPath, bearer(bobTok.AccessToken), 200, "", false},
		{"bad token is refused", adaPath, bearer("x.y.z"), 401, "unauthorized", false},
		{"pending user is hidden", "/api/user/" + strconv.FormatInt(bob+1, 10), nil,
			404, "user_not_found", false},
		{"unknown user", "/api/user/999999", nil, 404, "user_not_found", false},
		{"id not a number", "/api/user/ada", nil, 404, "user_not_found", false},
		{"query refused", adaPath + "?fields=email", nil, 400, "invalid_query", false},
		{"me", "/api/users/me", bearer(adaTok.AccessToken), 200, "", true},
		{"me without token", "/api/users/me", nil, 401, "unauthorized", false},
		{"me with alg none", "/api/users/me",
			bearer("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0."), 401,
			"unauthorized", false},
		{"me with basic auth", "/api/users/me",
			map[string]string{"Authorization": "Basic YTpi"}, 401, "unauthorized", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(req{method: "GET", path: tc.path, headers: tc.headers})
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (%s)", got.status, tc.wantStatus, got.body)
			}
			if tc.wantCode != "" {
				checkProblem(t, got, tc.wantStatus, tc.wantCode)
				if got.status == 401 && !strings.HasPrefix(got.header.Get("WWW-Authenticate"),
					"Bearer") {
					t.Errorf("WWW-Authenticate: got %q", got.header.Get("WWW-Authenticate"))
				}
				return
			}
			hasEmail := strings.Contains(string(got.body), `"email"`)
			if hasEmail != tc.wantEmail {
				t.Errorf("email shown: got %v, want %v (%s)", hasEmail, tc.wantEmail, got.body)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	got := e.do(req{method: "GET", path: "/.well-known/jwks.json"})
	if got.status != 200 || !strings.Contains(string(got.body), `"crv":"Ed25519"`) {
		t.Fatalf("jwks: got %d %s", got.status, got.body)
	}
	if strings.Contains(string(got.body), `"d"`) {
		t.Errorf("jwks holds private key material: %s", got.body)
	}
}

func TestActivationPages(t *testing.T) {
	e := newEnv(t)
	e.register("ada@example.com")
	token := e.mailToken("ada@example.com", "activate")

	// Opening the link, as a mail scanner would, shows a button and uses nothing.
	for range 2 {
		got := e.do(req{method: "GET", path: "/activate?token=" + token})
		if got.status != 200 || !strings.Contains(string(got.body), `value="`+token+`"`) {
			t.Fatalf("activation page: got %d %s", got.status, got.body)
		}
		if rp := got.header.Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("Referrer-Policy: got %q, want no-referrer", rp)
		}
	}
	if r, _ := e.login("ada@example.com", pw); r.status != http.StatusForbidden {
		t.Fatalf("after opening the page the account must still be pending: login %d",
			r.status)
	}

	got := e.do(req{method: "POST", path: "/activate",
		ctype: "application/x-www-form-urlencoded", body: "token=" + token})
	if got.status != 200 || !strings.Contains(string(got.body), "active") {
		t.Fatalf("pressing the button: got %d %s", got.status, got.body)
	}
	if r, _ := e.login("ada@example.com", pw); r.status != 200 {
		t.Errorf("login after activation: got %d", r.status)
	}

	cases := []struct {
		name, method, path, ctype, body string
		wantStatus                      int
		wantText                        string
	}{
		{"used link", "GET", "/activate?token=" + token, "", "", 400, "already been used"},
		{"unknown link", "GET", "/activate?token=nonsense", "", "", 400, "not valid"},
		{"used token posted", "POST", "/activate", "application/x-www-form-urlencoded",
			"token=" + token, 400, "already been used"},
		{"json to a form", "POST", "/activate", "json", `{"token":"x"}`, 415,
			"application/x-www-form-urlencoded"},
		{"home", "GET", "/", "", "", 200, "Keeper"},
		{"resend form", "GET", "/activation/resend", "", "", 200, "new activation link"},
		{"resend", "POST", "/activation/resend", "application/x-www-form-urlencoded",
			"email=" + url.QueryEscape("x@example.com"), 200, "on its way"},
		{"forgot form", "GET", "/forgot-password", "", "", 200, "Send the link"},
		{"forgot", "POST", "/forgot-password", "application/x-www-form-urlencoded",
			"email=ada%40example.com", 200, "on its way"},
		{"reset with a bad link", "GET", "/reset-password?token=nonsense", "", "", 400,
			"not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(req{method: tc.method, path: tc.path, ctype: tc.ctype, body: tc.body})
			if got.status != tc.wantStatus || !strings.Contains(string(got.body), tc.wantText) {
				t.Errorf("got %d, want %d with %q:\n%s", got.status, tc.wantStatus,
					tc.wantText, got.body)
			}
		})
	}
}

func TestResetPage(t *testing.T) {
	e := newEnv(t)
	e.activeUser("ada@example.com")
	e.do(req{method: "POST", path: "/api/auth/password/forgot", ctype: "json",
		body: `{"email":"ada@example.com"}`})
	token := e.mailToken("ada@example.com", "reset-password")

	form := func(password, confirm string) resp {
		return e.do(req{method: "POST", path: "/reset-password",
			ctype: "application/x-www-form-urlencoded",
			body: url.Values{"token": {token}, "password": {password},
				"confirm": {confirm}}.Encode()})
	}
	if got := e.do(req{method: "GET", path: "/reset-password?token=" + token}); got.status != 200 {
		t.Fatalf("reset page: got %d", got.status)
	}
	if got := form("one passphrase", "another one"); got.status != 400 ||
		!strings.Contains(string(got.body), "differ") {
		t.Errorf("different passwords: got %d %s", got.status, got.body)
	}
	if got := form("short", "short"); got.status != 400 {
		t.Errorf("short password: got %d", got.status)
	}
	if got := form("a fine new passphrase", "a fine new passphrase"); got.status != 200 {
		t.Fatalf("reset: got %d %s", got.status, got.body)
	}
	if r, _ := e.login("ada@example.com", "a fine new passphrase"); r.status != 200 {
		t.Errorf("login with the new password: got %d", r.status)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) {
		o.RateLimits = httpapi.RateLimits{PerIPPerMinute: 1000, PerEmailPerHour: 2}
	})
	for i := range 3 {
		r, _ := e.login(" ADA@example.com", pw)
		if i < 2 {
			checkProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
			continue
		}
		checkProblem(t, r, http.StatusTooManyRequests, "rate_limited")
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}

	e = newEnv(t, func(o *httpapi.Options) {
		o.RateLimits = httpapi.RateLimits{PerIPPerMinute: 2, PerEmailPerHour: 1000}
	})
	for i := range 3 {
		r := e.do(req{method: "POST", path: "/api/auth/password/forgot", ctype: "json",
			body: `{"email":"user` + strconv.Itoa(i) + `@example.com"}`})
		want := map[bool]int{true: 202, false: 429}[i < 2]
		if r.status != want {
			t.Errorf("forgot #%d: got %d, want %d", i+1, r.status, want)
		}
	}
}

func TestKVWritesNeedAuthWhenConfigured(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.KVWriteAuth = true })
	e.activeUser("ada@example.com")
	_, tk := e.login("ada@example.com", pw)

	got := e.do(req{method: "PUT", path: "/api/result?key=a"})
	checkProblem(t, got, http.StatusUnauthorized, "unauthorized")
	if len(e.state()) != 0 {
		t.Fatalf("an unauthenticated write changed the state: %v", e.state())
	}
	got = e.do(req{method: "PUT", path: "/api/result?key=a", headers: bearer(tk.AccessToken)})
	if got.status != http.StatusCreated {
		t.Fatalf("authenticated PUT: got %d %s", got.status, got.body)
	}
	if got := e.do(req{method: "GET", path: "/api/result?key=a"}); got.status != 200 {
		t.Errorf("reads stay public: got %d", got.status)
	}
}
