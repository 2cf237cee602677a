package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/mail/mailtest"
	"github.com/keeperhq/keeper/sqlite"
)

// mailWait bounds every wait for mail in these tests. It is a limit against hanging,
// not a claim about speed.
const mailWait = 15 * time.Second

// e2ePassword is the password every account in these tests registers with.
const e2ePassword = "correct horse battery"

// smtpEnv returns the settings that make Keeper deliver through smtp and retry within
// milliseconds. The attempts are many so that no message is given up while a test
// keeps the server down.
func smtpEnv(smtp *mailtest.Server) map[string]string {
	return map[string]string{
		"KEEPER_SMTP_URL":           smtp.URL("none"),
		"KEEPER_MAIL_FROM":          "Keeper <no-reply@example.com>",
		"KEEPER_MAIL_RETRY_BASE":    "20ms",
		"KEEPER_MAIL_RETRY_MAX":     "100ms",
		"KEEPER_MAIL_MAX_ATTEMPTS":  "1000",
		"KEEPER_MAIL_POLL_INTERVAL": "20ms",
	}
}

// TestAccountThroughSMTP walks one account from registration to its profile, with the
// activation link taken from the message a real SMTP server received.
func TestAccountThroughSMTP(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Config{})
	srv := startServer(t, smtpEnv(smtp))
	const email = "ada@example.com"

	register(t, srv, email, "Ada")
	link := checkActivationMail(t, smtp.WaitFor(t, 1, mailWait)[0], email, "Ada", srv.url)
	token := tokenFrom(t, link)

	// Opening the link, as a person or a mail scanner would, uses nothing up.
	var page string
	for i := range 2 {
		status, body := get(t, link)
		if status != http.StatusOK || !strings.Contains(body, "Activate my account</button>") {
			t.Fatalf("GET %d of the link: got %d, want 200 with the button:\n%s", i+1,
				status, body)
		}
		page = body
	}
	res := call(t, srv, "POST", "/api/auth/login", "", loginBody(email))
	res.want(t, http.StatusForbidden, "account_not_activated")

	// Pressing the button posts the page's form.
	action, fields := formOf(t, page)
	if fields.Get("token") != token {
		t.Errorf("got form token %q, want the link's %q", fields.Get("token"), token)
	}
	status, body := postForm(t, srv.url+action, fields)
	if status != http.StatusOK || !strings.Contains(body, "Your account is active, Ada.") {
		t.Fatalf("POST %s: got %d, want 200 saying the account is active:\n%s", action,
			status, body)
	}
	res = call(t, srv, "POST", "/api/users/activate", "", map[string]string{"token": token})
	res.want(t, http.StatusBadRequest, "token_used")

	access := login(t, srv, email)
	call(t, srv, "GET", "/api/users/me", "", nil).want(t, http.StatusUnauthorized,
		"unauthorized")
	res = call(t, srv, "GET", "/api/users/me", access, nil)
	res.want(t, http.StatusOK, "")
	me := res.object(t)
	if me["email"] != email || me["name"] != "Ada" || me["status"] != "active" ||
		me["activated_at"] == nil {
		t.Errorf("GET /api/users/me: got %s, want Ada's active account", res.body)
	}
	checkProfile(t, srv, me, access)

	srv.waitDelivered(t, 1)
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("got %d messages at the SMTP server, want 1", n)
	}
}

// TestMailWaitsForSMTPServer registers while the SMTP server is down: registration
// answers at once, and the message arrives once the server is back.
func TestMailWaitsForSMTPServer(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Config{})
	smtp.Stop()
	srv := startServer(t, smtpEnv(smtp))
	const email = "bea@example.com"

	register(t, srv, email, "Bea")
	srv.waitFailedAttempt(t)
	smtp.Restart()

	activateFromOnlyMail(t, smtp, srv, email, "Bea", srv.url)
}

// TestQueuedMailSurvivesRestart stops Keeper while its message is still queued, and
// starts it again over the same data once the SMTP server is up.
func TestQueuedMailSurvivesRestart(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Config{})
	smtp.Stop()
	env := smtpEnv(smtp)
	first := startServer(t, env)
	const email = "cy@example.com"

	register(t, first, email, "Cy")
	first.waitFailedAttempt(t)
	first.stop()
	smtp.Restart()
	second := startServerIn(t, first.dataDir, env)

	// The link points at the first start's address: it was made at registration.
	activateFromOnlyMail(t, smtp, second, email, "Cy", first.url)
	login(t, second, email)
}

// activateFromOnlyMail waits for the activation message, checks that it is the only
// one the SMTP server got once srv's outbox has recorded it sent, and activates the
// account with its token. linkBase is the public URL the link was made with.
func activateFromOnlyMail(t *testing.T, smtp *mailtest.Server, srv *testServer,
	email, name, linkBase string) {
	t.Helper()
	msgs := smtp.WaitFor(t, 1, mailWait)
	link := checkActivationMail(t, msgs[0], email, name, linkBase)
	srv.waitDelivered(t, 1)
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("got %d messages at the SMTP server, want 1", n)
	}
	res := call(t, srv, "POST", "/api/users/activate", "",
		map[string]string{"token": tokenFrom(t, link)})
	res.want(t, http.StatusOK, "")
}

// register creates an account and expects the answer that queues its activation mail.
func register(t *testing.T, srv *testServer, email, name string) {
	t.Helper()
	res := call(t, srv, "POST", "/api/users", "",
		map[string]string{"email": email, "name": name, "password": e2ePassword})
	res.want(t, http.StatusAccepted, "")
	if msg, _ := res.object(t)["message"].(string); msg == "" {
		t.Errorf("POST /api/users: got body %s, want a message", res.body)
	}
}

// login logs in with e2ePassword and returns the access token.
func login(t *testing.T, srv *testServer, email string) string {
	t.Helper()
	res := call(t, srv, "POST", "/api/auth/login", "", loginBody(email))
	res.want(t, http.StatusOK, "")
	pair := res.object(t)
	access, _ := pair["access_token"].(string)
	refresh, _ := pair["refresh_token"].(string)
	if access == "" || refresh == "" || pair["token_type"] != "Bearer" {
		t.Fatalf("POST /api/auth/login: got %s, want a Bearer access and refresh token",
			res.body)
	}
	return access
}

func loginBody(email string) map[string]string {
	return map[string]string{"email": email, "password": e2ePassword}
}

// checkActivationMail checks the envelope, headers and both bodies of an activation
// message, and returns its link, which must point at publicURL.
func checkActivationMail(t *testing.T, m mailtest.Message, to, name, publicURL string) string {
	t.Helper()
	if m.From != "no-reply@example.com" || !slices.Equal(m.To, []string{to}) {
		t.Errorf("got envelope from %q to %q, want from no-reply@example.com to [%s]",
			m.From, m.To, to)
	}
	p := mailtest.Parse(t, m.Data)
	if got := headerAddress(t, p, "To"); got != to {
		t.Errorf("got To %q, want %q", got, to)
	}
	if got := headerAddress(t, p, "From"); got != "no-reply@example.com" {
		t.Errorf("got From %q, want no-reply@example.com", got)
	}
	if got := p.Header.Get("Subject"); got != mail.SubjectActivation {
		t.Errorf("got Subject %q, want %q", got, mail.SubjectActivation)
	}

	link := publicURL + "/activate?token=" + tokenFrom(t, p.Text())
	if !strings.Contains(p.Text(), "Hello "+name+",") ||
		!strings.Contains(p.Text(), "\n"+link+"\n") {
		t.Errorf("got text part\n%s\nwant a greeting to %s and %s on a line of its own",
			p.Text(), name, link)
	}
	if !strings.Contains(p.HTML(), "Hello "+name+",") ||
		!strings.Contains(p.HTML(), `href="`+link+`"`) {
		t.Errorf("got HTML part\n%s\nwant a greeting to %s and a link to %s",
			p.HTML(), name, link)
	}
	return link
}

// headerAddress returns the address of a one-address header such as To.
func headerAddress(t *testing.T, p mailtest.Parsed, name string) string {
	t.Helper()
	addr, err := netmail.ParseAddress(p.Header.Get(name))
	if err != nil {
		t.Fatalf("header %s %q: %v", name, p.Header.Get(name), err)
	}
	return addr.Address
}

var (
	formRe   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// formOf returns the action and hidden fields of the one form on a page.
func formOf(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	forms := formRe.FindAllStringSubmatch(page, -1)
	if len(forms) != 1 {
		t.Fatalf("got %d forms on the page, want 1:\n%s", len(forms), page)
	}
	fields := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		fields.Add(m[1], m[2])
	}
	return forms[0][1], fields
}

// postForm posts fields as a browser submits a form, and returns the status and body.
func postForm(t *testing.T, url string, fields url.Values) (int, string) {
	t.Helper()
	res, err := http.PostForm(url, fields)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// checkProfile checks the public profile of the user whose account is me, and whose
// access token is access: the email shows only to the user.
func checkProfile(t *testing.T, srv *testServer, me map[string]any, access string) {
	t.Helper()
	id, ok := me["id"].(float64)
	if !ok {
		t.Fatalf("got user id %v, want a number", me["id"])
	}
	path := "/api/user/" + strconv.FormatInt(int64(id), 10)
	public := map[string]any{"id": me["id"], "name": me["name"], "created_at": me["created_at"]}
	own := maps.Clone(public)
	own["email"] = me["email"]

	tests := []struct {
		name   string
		bearer string
		want   map[string]any
	}{
		{name: "anyone", want: public},
		{name: "the user", bearer: access, want: own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, srv, "GET", path, tt.bearer, nil)
			res.want(t, http.StatusOK, "")
			if got := res.object(t); !maps.Equal(got, tt.want) {
				t.Errorf("GET %s: got %v, want %v", path, got, tt.want)
			}
		})
	}
}

// apiResponse is what the JSON API answered.
type apiResponse struct {
	request string
	status  int
	body    []byte
}

// call sends a request to srv with body as JSON (none when nil) and bearer as the
// access token (none when empty).
func call(t *testing.T, srv *testServer, method, path, bearer string, body any) apiResponse {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.url+path, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return apiResponse{request: method + " " + path, status: res.StatusCode, body: b}
}

// want fails the test unless the status is status and, when code is set, the body is
// a problem with that code.
func (r apiResponse) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: got %d, want %d:\n%s", r.request, r.status, status, r.body)
	}
	if got, _ := r.object(t)["code"].(string); code != "" && got != code {
		t.Fatalf("%s: got code %q, want %q:\n%s", r.request, got, code, r.body)
	}
}

// object decodes the body as a JSON object.
func (r apiResponse) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: got body %q, want a JSON object: %v", r.request, r.body, err)
	}
	return m
}

// waitFailedAttempt waits until the outbox records a failed delivery of its one
// message, which is still queued.
func (s *testServer) waitFailedAttempt(t *testing.T) {
	t.Helper()
	s.waitOutbox(t, "1 pending message with a failed attempt",
		func(all []keeper.OutboxMessage) bool {
			return len(all) == 1 && all[0].Status == keeper.OutboxPending &&
				all[0].LastError != ""
		})
}

// waitDelivered waits until the outbox holds n messages, every one recorded sent. From
// then on the worker has nothing left to send, so what the SMTP server holds is final.
func (s *testServer) waitDelivered(t *testing.T, n int) {
	t.Helper()
	s.waitOutbox(t, fmt.Sprintf("%d messages, all sent", n),
		func(all []keeper.OutboxMessage) bool {
			return len(all) == n && !slices.ContainsFunc(all, func(m keeper.OutboxMessage) bool {
				return m.Status != keeper.OutboxSent
			})
		})
}

// waitOutbox polls the server's outbox until done holds, for at most mailWait.
func (s *testServer) waitOutbox(t *testing.T, want string,
	done func([]keeper.OutboxMessage) bool) {
	t.Helper()
	outbox := sqlite.NewOutbox(s.app.db)
	var all []keeper.OutboxMessage
	for deadline := time.Now().Add(mailWait); time.Now().Before(deadline); {
		var err error
		all, err = outbox.List(context.Background())
		if err != nil {
			t.Fatalf("list outbox: %v", err)
		}
		if done(all) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}

	states := make([]string, len(all))
	for i, m := range all {
		states[i] = fmt.Sprintf("%s after %d attempts (%s)", m.Status, m.Attempts, m.LastError)
	}
	t.Fatalf("got outbox %v after %v, want %s", states, mailWait, want)
}
