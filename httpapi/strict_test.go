package httpapi_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests of this file hold every endpoint to the README's "Strictness a client can
// rely on": input that encoding/json, url.ParseQuery or a lenient comparison would smooth
// over is refused with a 400 (or 415), and a refused request stores nothing.

const formType = "application/x-www-form-urlencoded"

// fixture is a server with an active user, a live session, a pending user and a live
// reset link, so that a request wrongly accepted would visibly change stored data.
type fixture struct {
	*env
	userID      int64
	access      string // access token of ada
	refresh     string // refresh token of ada
	activation  string // activation token of the pending user
	resetToken  string // reset token of ada
	colourETag  string // ETag of the entry "colour"
	colourValue string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := newEnv(t)
	f := &fixture{env: e, colourValue: "blue"}
	f.userID = e.activeUser("ada@example.com")
	_, tk := e.login("ada@example.com", pw)
	f.access, f.refresh = tk.AccessToken, tk.RefreshToken
	e.register("pending@example.com")
	f.activation = e.mailToken("pending@example.com", "activate")
	e.do(req{method: "POST", path: "/api/auth/password/forgot", ctype: "json",
		body: `{"email":"ada@example.com"}`})
	f.resetToken = e.mailToken("ada@example.com", "reset-password")
	e.seed(map[string]string{"colour": f.colourValue})
	f.colourETag = e.etag("colour")
	return f
}

// snapshot returns every row of every table of the test's database, so that a test can
// tell that a refused request stored nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()

	tables, err := column(db, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %q\n", table, vals)
		}
		if err := rows.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	return b.String()
}

// column returns the first column of a query's rows.
func column(db *sql.DB, query string) ([]string, error) {
	rows, err := db.Query(query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// loggedCode returns the error code the access log recorded for a response, which is
// how a test learns the code behind an HTML error page. The line is written as the
// handler returns, so it may trail the response by a moment.
func (e *env) loggedCode(got resp) string {
	e.t.Helper()
	id := got.header.Get("X-Request-Id")
	for range 100 {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var rec struct {
				Msg       string `json:"msg"`
				RequestID string `json:"request_id"`
				Code      string `json:"code"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" &&
				rec.RequestID == id {
				return rec.Code
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no access log line with request_id %q", id)
	return ""
}

// refusal is one request that must be refused with a status and a code.
type refusal struct {
	name       string
	req        req
	wantStatus int
	wantCode   string
}

// checkRefusals sends each request and checks its status, its code (in the problem
// document, or in the access log for an HTML page) and that nothing stored changed.
func (f *fixture) checkRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	before := f.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := f.do(tc.req)
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (%s)", got.status, tc.wantStatus, got.body)
			}
			if strings.HasPrefix(got.header.Get("Content-Type"), "text/html") {
				if code := f.loggedCode(got); code != tc.wantCode {
					t.Errorf("code: got %q, want %q\n%s", code, tc.wantCode, got.body)
				}
			} else {
				checkProblem(t, got, tc.wantStatus, tc.wantCode)
			}
			if after := f.snapshot(); after != before {
				t.Errorf("a refused request changed the stored data:\nbefore:\n%s\nafter:\n%s",
					before, after)
			}
		})
	}
}

// jsonPost is a POST of a JSON body.
func jsonPost(path, body string) req {
	return req{method: "POST", path: path, ctype: "json", body: body}
}

// formPost is a POST of an HTML form body.
func formPost(path, body string) req {
	return req{method: "POST", path: path, ctype: formType, body: body}
}

func TestDuplicateJSONMembers(t *testing.T) {
	f := newFixture(t)
	patch := func(body string) req {
		return req{method: "PATCH", path: "/api/result?key=colour", ctype: "json", body: body}
	}
	cases := []refusal{
		{"patch value twice", patch(`{"value":"a","value":"b"}`), 400, "duplicate_key"},
		{"patch value twice, once escaped", patch(`{"value":"1","\u0076alue":"2"}`),
			400, "duplicate_key"},
		{"post pair twice, once escaped", jsonPost("/api/result", `{"k":"1","\u006b":"2"}`),
			400, "duplicate_key"},
		{"register email twice", jsonPost("/api/users", `{"email":"x@example.com",`+
			`"name":"X","password":"`+pw+`","email":"y@example.com"}`), 400, "duplicate_key"},
		{"login password twice", jsonPost("/api/auth/login", `{"email":"ada@example.com",`+
			`"password":"wrong","password":"`+pw+`"}`), 400, "duplicate_key"},
		{"forgot email twice", jsonPost("/api/auth/password/forgot",
			`{"email":"x@example.com","email":"ada@example.com"}`), 400, "duplicate_key"},
		{"resend email twice", jsonPost("/api/users/activation",
			`{"email":"x@example.com","email":"pending@example.com"}`), 400, "duplicate_key"},
		{"logout token twice", jsonPost("/api/auth/logout",
			`{"refresh_token":"x","refresh_token":"`+f.refresh+`"}`), 400, "duplicate_key"},
		{"refresh token twice", jsonPost("/api/auth/refresh",
			`{"refresh_token":"x","refresh_token":"`+f.refresh+`"}`), 400, "duplicate_key"},
		{"activate token twice", jsonPost("/api/users/activate",
			`{"token":"x","token":"`+f.activation+`"}`), 400, "duplicate_key"},
		{"reset token twice", jsonPost("/api/auth/password/reset",
			`{"token":"x","token":"`+f.resetToken+`","password":"a new passphrase"}`),
			400, "duplicate_key"},
	}
	f.checkRefusals(t, cases)
}

func TestLoneSurrogates(t *testing.T) {
	f := newFixture(t)
	patch := func(value string) req {
		return req{method: "PATCH", path: "/api/result?key=colour", ctype: "json",
			body: `{"value":"` + value + `"}`}
	}
	cases := []refusal{
		{"high alone in a value", jsonPost("/api/result", `{"k":"\ud800"}`),
			400, "invalid_value"},
		{"low alone in a value", jsonPost("/api/result", `{"k":"\udc00x"}`),
			400, "invalid_value"},
		{"high then a letter", jsonPost("/api/result", `{"k":"\uD800\u0041"}`),
			400, "invalid_value"},
		{"low before high", jsonPost("/api/result", `{"k":"\udc00\ud800"}`),
			400, "invalid_value"},
		{"high at the end after a pair", jsonPost("/api/result", `{"k":"\ud83d\ude00\ud83d"}`),
			400, "invalid_value"},
		{"in a key", jsonPost("/api/result", `{"a\udfffb":"v"}`), 400, "invalid_key"},
		{"in a patch value", patch(`\ud800`), 400, "invalid_value"},
		{"in a registration name", jsonPost("/api/users", `{"email":"x@example.com",`+
			`"name":"Ada\udbff","password":"`+pw+`"}`), 400, "invalid_value"},
		{"in a password", jsonPost("/api/auth/login",
			`{"email":"ada@example.com","password":"`+pw+`\ud800"}`), 400, "invalid_value"},
		{"in a token", jsonPost("/api/users/activate", `{"token":"\udc00"}`),
			400, "invalid_value"},
		{"in a field name", jsonPost("/api/auth/password/forgot",
			`{"email":"ada@example.com","\ud800":"x"}`), 400, "unknown_field"},
	}
	f.checkRefusals(t, cases)

	// Pairs and escaped backslashes are characters like any other.
	for _, body := range []string{`{"smile":"\ud83d\ude00"}`, `{"slash":"\\ud800"}`} {
		if got := f.do(jsonPost("/api/result", body)); got.status != http.StatusCreated {
			t.Errorf("%s: got %d %s, want 201", body, got.status, got.body)
		}
	}
	if st := f.state(); st["smile"] != "😀" || st["slash"] != `\ud800` {
		t.Errorf("stored: got %q and %q, want 😀 and \\ud800", st["smile"], st["slash"])
	}
}

func TestUnknownQueryParameters(t *testing.T) {
	f := newFixture(t)
	withQuery := func(rq req, q string) req {
		rq.path += q
		return rq
	}
	get := func(path string) req { return req{method: "GET", path: path} }
	bodies := []struct {
		name string
		req  req
	}{
		{"register", jsonPost("/api/users",
			`{"email":"x@example.com","name":"X","password":"`+pw+`"}`)},
		{"activate", jsonPost("/api/users/activate", `{"token":"`+f.activation+`"}`)},
		{"resend", jsonPost("/api/users/activation", `{"email":"pending@example.com"}`)},
		{"login", jsonPost("/api/auth/login", `{"email":"ada@example.com","password":"`+pw+`"}`)},
		{"refresh", jsonPost("/api/auth/refresh", `{"refresh_token":"`+f.refresh+`"}`)},
		{"logout", jsonPost("/api/auth/logout", `{"refresh_token":"`+f.refresh+`"}`)},
		{"forgot", jsonPost("/api/auth/password/forgot", `{"email":"ada@example.com"}`)},
		{"reset", jsonPost("/api/auth/password/reset",
			`{"token":"`+f.resetToken+`","password":"a new passphrase"}`)},
		{"me", req{method: "GET", path: "/api/users/me", headers: bearer(f.access)}},
		{"profile", get("/api/user/" + strconv.FormatInt(f.userID, 10))},
		{"healthz", get("/healthz")},
		{"readyz", get("/readyz")},
		{"openapi", get("/openapi.yaml")},
		{"jwks", get("/.well-known/jwks.json")},
		{"problem page", get("/problems/key_not_found")},
		{"keys", get("/api/keys")},
	}
	pages := []struct {
		name string
		req  req
	}{
		{"home page", get("/")},
		{"resend page", get("/activation/resend")},
		{"forgot page", get("/forgot-password")},
		{"activate form", formPost("/activate", "token="+f.activation)},
		{"resend form", formPost("/activation/resend", "email=pending%40example.com")},
		{"forgot form", formPost("/forgot-password", "email=ada%40example.com")},
		{"reset form", formPost("/reset-password", url.Values{"token": {f.resetToken},
			"password": {"a new passphrase"}, "confirm": {"a new passphrase"}}.Encode())},
	}

	var cases []refusal
	for _, b := range bodies {
		cases = append(cases,
			refusal{b.name + " unknown", withQuery(b.req, "?x=1"), 400, "invalid_query"},
			refusal{b.name + " repeated", withQuery(b.req, "?x=1&x=1"), 400, "invalid_query"},
			refusal{b.name + " bare name", withQuery(b.req, "?debug"), 400, "invalid_query"})
	}
	for _, p := range pages {
		cases = append(cases,
			refusal{p.name + " unknown", withQuery(p.req, "?x=1"), 400, "invalid_query"},
			refusal{p.name + " token", withQuery(p.req, "?token=x"), 400, "invalid_query"})
	}
	cases = append(cases,
		refusal{"activate page token twice", get("/activate?token=" + f.activation +
			"&token=" + f.activation), 400, "invalid_query"},
		refusal{"reset page token and more", get("/reset-password?token=" + f.resetToken +
			"&next=/"), 400, "invalid_query"})
	f.checkRefusals(t, cases)
}

func TestBodyOnCallWithoutBody(t *testing.T) {
	f := newFixture(t)
	withBody := func(method, path string, headers map[string]string) req {
		return req{method: method, path: path, ctype: "json", body: `{"value":"x"}`,
			headers: headers}
	}
	cases := []refusal{
		{"get result", withBody("GET", "/api/result?key=colour", nil), 400, "invalid_request"},
		{"list keys", withBody("GET", "/api/keys", nil), 400, "invalid_request"},
		{"me", withBody("GET", "/api/users/me", bearer(f.access)), 400, "invalid_request"},
		{"profile", withBody("GET", "/api/user/"+strconv.FormatInt(f.userID, 10), nil),
			400, "invalid_request"},
		{"healthz", withBody("GET", "/healthz", nil), 400, "invalid_request"},
		{"readyz", withBody("GET", "/readyz", nil), 400, "invalid_request"},
		{"openapi", withBody("GET", "/openapi.yaml", nil), 400, "invalid_request"},
		{"jwks", withBody("GET", "/.well-known/jwks.json", nil), 400, "invalid_request"},
		{"problem page", withBody("GET", "/problems/key_not_found", nil),
			400, "invalid_request"},
		{"home page", withBody("GET", "/", nil), 400, "invalid_request"},
		{"activate page", withBody("GET", "/activate?token="+f.activation, nil),
			400, "invalid_request"},
		{"reset page", withBody("GET", "/reset-password?token="+f.resetToken, nil),
			400, "invalid_request"},
		{"resend page", withBody("GET", "/activation/resend", nil), 400, "invalid_request"},
		{"forgot page", withBody("GET", "/forgot-password", nil), 400, "invalid_request"},
	}
	f.checkRefusals(t, cases)
}

func TestContentCodingAndType(t *testing.T) {
	f := newFixture(t)
	coded := func(rq req, coding string) req {
		rq.headers = map[string]string{"Content-Encoding": coding}
		return rq
	}
	twoTypes := func(rq req, second string) req {
		rq.lines = http.Header{"Content-Type": {second}}
		return rq
	}
	patch := req{method: "PATCH", path: "/api/result?key=colour", ctype: "json",
		body: `{"value":"red"}`}
	post := jsonPost("/api/result", `{"k":"v"}`)
	register := jsonPost("/api/users", `{"email":"x@example.com","name":"X","password":"`+
		pw+`"}`)
	activate := formPost("/activate", "token="+f.activation)
	cases := []refusal{
		{"post gzip", coded(post, "gzip"), 415, "unsupported_media"},
		{"post identity then gzip", coded(post, "identity, gzip"), 415, "unsupported_media"},
		{"patch deflate", coded(patch, "deflate"), 415, "unsupported_media"},
		{"register br", coded(register, "br"), 415, "unsupported_media"},
		{"form gzip", coded(activate, "gzip"), 415, "unsupported_media"},
		{"post second json type", twoTypes(post, "application/json"), 400, "invalid_request"},
		{"post second text type", twoTypes(post, "text/plain"), 400, "invalid_request"},
		{"patch second type", twoTypes(patch, "text/plain"), 400, "invalid_request"},
		{"form second type", twoTypes(activate, formType), 400, "invalid_request"},
	}
	f.checkRefusals(t, cases)

	t.Run("415 names the coding the server takes", func(t *testing.T) {
		got := f.do(coded(post, "gzip"))
		if ae := got.header.Get("Accept-Encoding"); ae != "identity" {
			t.Errorf("Accept-Encoding: got %q, want identity", ae)
		}
	})
	t.Run("identity is no coding", func(t *testing.T) {
		if got := f.do(coded(post, "Identity")); got.status != http.StatusCreated {
			t.Errorf("got %d %s, want 201", got.status, got.body)
		}
	})
}

func TestStrictForms(t *testing.T) {
	f := newFixture(t)
	reset := func(extra string) req {
		return formPost("/reset-password", url.Values{"token": {f.resetToken},
			"password": {"a new passphrase"}, "confirm": {"a new passphrase"}}.Encode()+extra)
	}
	cases := []refusal{
		{"activate token twice", formPost("/activate", "token=x&token="+f.activation),
			400, "duplicate_key"},
		{"activate unknown field", formPost("/activate", "token="+f.activation+"&x=1"),
			400, "unknown_field"},
		{"activate field in other case", formPost("/activate", "Token="+f.activation),
			400, "unknown_field"},
		{"activate token not utf-8", formPost("/activate", "token=%ff"),
			400, "invalid_request"},
		{"resend email twice", formPost("/activation/resend",
			"email=x%40example.com&email=pending%40example.com"), 400, "duplicate_key"},
		{"resend unknown field", formPost("/activation/resend",
			"email=pending%40example.com&name=x"), 400, "unknown_field"},
		{"forgot email twice", formPost("/forgot-password",
			"email=x%40example.com&email=ada%40example.com"), 400, "duplicate_key"},
		{"forgot unknown field", formPost("/forgot-password", "email=ada%40example.com&x="),
			400, "unknown_field"},
		{"forgot email not utf-8", formPost("/forgot-password", "email=ada%C0%40example.com"),
			400, "invalid_request"},
		{"reset confirm twice", reset("&confirm=other"), 400, "duplicate_key"},
		{"reset password twice", reset("&password=other"), 400, "duplicate_key"},
		{"reset unknown field", reset("&admin=1"), 400, "unknown_field"},
		{"reset password not utf-8", formPost("/reset-password", "token="+f.resetToken+
			"&password=%ff%fe%fd%fc%fb%fa%f9%f8&confirm=%ff%fe%fd%fc%fb%fa%f9%f8"),
			400, "invalid_request"},
		{"reset field name not utf-8", reset("&%ff=1"), 400, "unknown_field"},
		{"reset semicolon", reset(";x=1"), 400, "invalid_request"},
	}
	f.checkRefusals(t, cases)
	if r, _ := f.login("ada@example.com", pw); r.status != http.StatusOK {
		t.Errorf("the old password stopped working: login %d", r.status)
	}
}

func TestEntityTagsCompareExactly(t *testing.T) {
	f := newFixture(t)
	n := strings.Trim(f.colourETag, `"`)
	get := func(lines ...string) resp {
		return f.do(req{method: "GET", path: "/api/result?key=colour",
			lines: http.Header{"If-None-Match": lines}})
	}
	noneMatch := []struct {
		name   string
		lines  []string
		status int
	}{
		{"same tag", []string{`"` + n + `"`}, 304},
		{"weak form of the tag", []string{`W/"` + n + `"`}, 304},
		{"star", []string{"*"}, 304},
		{"the tag in a list", []string{`"x", "` + n + `"`}, 304},
		{"the tag on a second line", []string{`"x"`, `"` + n + `"`}, 304},
		{"plus sign", []string{`"+` + n + `"`}, 200},
		{"leading zero", []string{`"0` + n + `"`}, 200},
		{"unquoted", []string{n}, 200},
		{"weak star", []string{"W/*"}, 200},
		{"star inside a list", []string{`"x", *`}, 200},
		{"star on a second line", []string{`"x"`, "*"}, 200},
		{"comma inside another tag", []string{`"x,` + n + `"`}, 200},
	}
	for _, tc := range noneMatch {
		t.Run("If-None-Match "+tc.name, func(t *testing.T) {
			if got := get(tc.lines...); got.status != tc.status {
				t.Errorf("If-None-Match %q: got %d, want %d", tc.lines, got.status, tc.status)
			}
		})
	}

	patch := func(lines ...string) req {
		return req{method: "PATCH", path: "/api/result?key=colour", ctype: "json",
			body: `{"value":"red"}`, lines: http.Header{"If-Match": lines}}
	}
	del := func(lines ...string) req {
		return req{method: "DELETE", path: "/api/result?key=colour",
			lines: http.Header{"If-Match": lines}}
	}
	f.checkRefusals(t, []refusal{
		{"If-Match plus sign", patch(`"+` + n + `"`), 412, "version_mismatch"},
		{"If-Match leading zero", patch(`"0` + n + `"`), 412, "version_mismatch"},
		{"If-Match weak tag", patch(`W/"` + n + `"`), 412, "version_mismatch"},
		{"If-Match weak star", patch("W/*"), 412, "version_mismatch"},
		{"If-Match star inside a list", patch(`"1000000", *`), 412, "version_mismatch"},
		{"If-Match star on a second line", patch(`"1000000"`, "*"), 412, "version_mismatch"},
		{"If-Match tag split by a comma", patch(`"x,` + n + `"`), 412, "version_mismatch"},
		{"delete If-Match leading zeros", del(`"00` + n + `"`), 412, "version_mismatch"},
	})

	if got := f.do(patch(`"x"`, `"`+n+`"`)); got.status != http.StatusOK {
		t.Errorf("If-Match with the tag on a second line: got %d %s, want 200",
			got.status, got.body)
	}
}

func TestUserIDsAreCanonical(t *testing.T) {
	f := newFixture(t)
	id := strconv.FormatInt(f.userID, 10)
	if got := f.do(req{method: "GET", path: "/api/user/" + id}); got.status != 200 {
		t.Fatalf("/api/user/%s: got %d, want 200", id, got.status)
	}
	var cases []refusal
	for _, p := range []string{"+" + id, "0" + id, "000" + id, "%2B" + id, "0", "-" + id,
		id + "%20", "%20" + id, id + ".0", "1e0", "0x1", "99999999999999999999"} {
		cases = append(cases, refusal{p, req{method: "GET", path: "/api/user/" + p},
			404, "user_not_found"})
	}
	f.checkRefusals(t, cases)
}

func TestNonStringPatchValue(t *testing.T) {
	f := newFixture(t)
	var cases []refusal
	for _, v := range []string{`1`, `null`, `true`, `{}`, `["x"]`, `1e999`} {
		cases = append(cases, refusal{v, req{method: "PATCH", path: "/api/result?key=colour",
			ctype: "json", body: `{"value":` + v + `}`}, 400, "invalid_value"})
	}
	cases = append(cases,
		refusal{"missing", req{method: "PATCH", path: "/api/result?key=colour",
			ctype: "json", body: `{}`}, 400, "invalid_request"},
		refusal{"account field number", jsonPost("/api/auth/login",
			`{"email":"ada@example.com","password":1e999}`), 400, "invalid_request"})
	f.checkRefusals(t, cases)
}
