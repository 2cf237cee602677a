package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/api"
	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/sqlite"
)

// The contract: every response the tests receive must match the OpenAPI document for
// its operation and status, every status must be documented, and every request the
// server accepts (2xx) must itself be valid by the document. Requests the server
// rejects may be invalid by design, so their validation is not required to pass.

var (
	specOnce   sync.Once
	specRouter routers.Router
	specDoc    *openapi3.T
	specErr    error
)

func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(api.OpenAPI)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		specRouter, specErr = legacy.NewRouter(specDoc)
	})
	if specErr != nil {
		t.Fatalf("api/openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// env is one test's server: the full handler stack over a real SQLite file.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	db     *sqlite.DB
	dbPath string
	kv     keeper.KVStore
	outbox *sqlite.Outbox
	logs   *syncBuffer
	client *http.Client
}

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type envOption func(*httpapi.Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "keeper.db")
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })

	logs := &syncBuffer{}
	log, err := logging.New(logs, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	kv := kvcache.New(sqlite.NewKVStore(db), 1<<20)
	accounts, jwks := newAccounts(t, db, log)
	o := httpapi.Options{
		Logger:        log,
		KV:            kv,
		Ready:         db.Ping,
		MaxBodyBytes:  64 << 10,
		MaxValueBytes: 16 << 10,
		Accounts:      accounts,
		JWKS:          jwks,
		RateLimits:    httpapi.RateLimits{PerIPPerMinute: 1000, PerEmailPerHour: 1000},
	}
	for _, opt := range opts {
		opt(&o)
	}

	srv := httptest.NewServer(httpapi.New(o))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, db: db, dbPath: dbPath, kv: kv, outbox: sqlite.NewOutbox(db),
		logs: logs, client: srv.Client()}
}

// newAccounts builds the real account service over db, with cheap hashing parameters
// so that tests stay quick. Mail stays in the outbox, where tests read it.
func newAccounts(t testing.TB, db *sqlite.DB, log *slog.Logger) (*auth.Service, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(priv)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}

	fast := auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	tokens := auth.NewTokens(keys, "http://keeper.test", "keeper", 15*time.Minute)
	svc := auth.NewService(sqlite.NewAccountStore(db), auth.NewHasher(fast, 4), tokens,
		templates, nil, log, auth.Config{PublicURL: "http://keeper.test"})
	return svc, jwks
}

// req describes one request of a test.
type req struct {
	method  string
	path    string // with query
	body    string
	ctype   string // Content-Type; "json" is short for application/json
	headers map[string]string
	lines   http.Header // header lines added after headers, for repeated fields
}

// resp is a response with its body read.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem+json body.
func (r resp) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type: got %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	return p
}

// do sends the request through real HTTP and holds both sides to the contract.
func (e *env) do(rq req) resp {
	e.t.Helper()
	got, err := e.try(rq)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// try is do for goroutines other than the test's: it reports transport failures as
// errors instead of stopping the test.
func (e *env) try(rq req) (resp, error) {
	e.t.Helper()
	ctype := rq.ctype
	if ctype == "json" {
		ctype = "application/json"
	}

	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequest(rq.method, e.srv.URL+rq.path, body)
	if err != nil {
		return resp{}, fmt.Errorf("new request: %w", err)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	for k, vs := range rq.lines {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}

	res, err := e.client.Do(r)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %w", rq.method, rq.path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: read body: %w", rq.method, rq.path, err)
	}

	got := resp{status: res.StatusCode, header: res.Header, body: out}
	checkContract(e.t, rq, ctype, got)
	return got, nil
}

// checkContract validates a request/response pair against api/openapi.yaml.
func checkContract(t *testing.T, rq req, ctype string, got resp) {
	t.Helper()
	doc, router := loadSpec(t)
	ctx := context.Background()

	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, "http://127.0.0.1:8080"+rq.path, body)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	for k, vs := range rq.lines {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}

	route, params, err := router.FindRoute(r)
	if err != nil {
		checkUnroutedProblem(t, doc, rq, got)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if got.status < 300 && reqErr != nil {
		t.Errorf("%s %s was accepted (%d) but the document calls the request invalid: %v",
			rq.method, rq.path, got.status, reqErr)
	}

	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 got.status,
		Header:                 got.header,
		Body:                   io.NopCloser(bytes.NewReader(got.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s → %d does not match the document: %v\nbody: %s",
			rq.method, rq.path, got.status, err, got.body)
	}
}

// checkUnroutedProblem holds answers to paths the document does not describe (unknown
// routes, wrong methods) to the Problem schema.
func checkUnroutedProblem(t *testing.T, doc *openapi3.T, rq req, got resp) {
	t.Helper()
	if got.status != http.StatusNotFound && got.status != http.StatusMethodNotAllowed {
		t.Errorf("%s %s: no documented route, yet status %d", rq.method, rq.path, got.status)
		return
	}
	var v any
	if err := json.Unmarshal(got.body, &v); err != nil {
		t.Errorf("%s %s: body is not JSON: %s", rq.method, rq.path, got.body)
		return
	}
	schema := doc.Components.Schemas["Problem"].Value
	if err := schema.VisitJSON(v); err != nil {
		t.Errorf("%s %s: body does not match Problem: %v", rq.method, rq.path, err)
	}
}
