// Package httpapi is Keeper's HTTP layer: routes, handlers, middleware, problem+json
// errors and the server-rendered pages. It depends on the domain package and on the
// services; nothing depends on it but cmd/keeper.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/api"
	"github.com/keeperhq/keeper/auth"
)

// Options are the parts and limits the HTTP layer is built from.
type Options struct {
	Logger *slog.Logger

	// KV keeps the key–value state.
	KV keeper.KVStore

	// Ready reports whether the server can serve: nil when the database answers.
	Ready func(context.Context) error

	// MaxBodyBytes caps every request body; MaxValueBytes caps one value.
	MaxBodyBytes  int64
	MaxValueBytes int

	// MaxInflightBodyBytes bounds the bytes of request bodies served at once: a request
	// with a body takes its Content-Length (MaxBodyBytes when unknown) before reading
	// it and waits while the budget is spent. 0 means DefaultInflightBodyFactor ×
	// MaxBodyBytes. It should be at least MaxBodyBytes; a larger body waits for all of
	// it.
	MaxInflightBodyBytes int64

	// BodyWaitTimeout is how long a request may wait for its share of
	// MaxInflightBodyBytes before it is answered 503; 0 means DefaultBodyWaitTimeout.
	// Keep it well under the server's ReadTimeout, which runs on while the request
	// waits.
	BodyWaitTimeout time.Duration

	// Accounts serves registration, login and profiles.
	Accounts *auth.Service

	// JWKS is the JSON Web Key Set published at /.well-known/jwks.json.
	JWKS []byte

	// KVWriteAuth makes the key–value writes require an access token.
	KVWriteAuth bool

	// RateLimits bounds the account endpoints that send mail or check passwords.
	RateLimits RateLimits
}

// Defaults of the body budget options.
const (
	DefaultInflightBodyFactor = 8
	DefaultBodyWaitTimeout    = 10 * time.Second
)

// API serves Keeper's HTTP interface.
type API struct {
	log         *slog.Logger
	kv          keeper.KVStore
	ready       func(context.Context) error
	maxValue    int
	accounts    *auth.Service
	jwksDoc     []byte
	kvWriteAuth bool
	limits      *limiters
	pages       pageSet
	mux         *http.ServeMux
}

// New returns the complete HTTP handler: routes wrapped in Keeper's middleware.
func New(o Options) http.Handler {
	a := &API{
		log:         o.Logger,
		kv:          o.KV,
		ready:       o.Ready,
		maxValue:    o.MaxValueBytes,
		accounts:    o.Accounts,
		jwksDoc:     o.JWKS,
		kvWriteAuth: o.KVWriteAuth,
		limits:      newLimiters(o.RateLimits),
		pages:       loadPages(),
		mux:         http.NewServeMux(),
	}
	a.routes()

	budget := o.MaxInflightBodyBytes
	if budget <= 0 {
		budget = DefaultInflightBodyFactor * o.MaxBodyBytes
	}
	wait := o.BodyWaitTimeout
	if wait <= 0 {
		wait = DefaultBodyWaitTimeout
	}
	return chain(a.mux,
		requestID,
		accessLog(a.log),
		recoverPanics(a.log),
		requireCanonicalPath(a.log),
		limitBody(a.log, o.MaxBodyBytes),
		limitBodiesInFlight(a.log, budget, o.MaxBodyBytes, wait),
	)
}

// chain wraps h in middleware; the first one listed runs first.
func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc, sending any error it returns through writeError.
func (a *API) handle(pattern string, h handlerFunc) {
	a.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, a.log, err)
		}
	}))
}

// routes registers every call. The wrappers noQuery, noBody and noInput mark the calls
// that take no query parameters, no body, or neither; handlers check the rest of their
// input themselves.
func (a *API) routes() {
	a.handle("GET /api/result", noBody(a.getResult))
	a.handle("PUT /api/result", a.kvWrite(noBody(a.putResult)))
	a.handle("POST /api/result", a.kvWrite(noQuery(a.postResult)))
	a.handle("PATCH /api/result", a.kvWrite(a.patchResult))
	a.handle("DELETE /api/result", a.kvWrite(noBody(a.deleteResult)))
	a.handle("GET /api/keys", noBody(a.listKeys))

	a.handle("POST /api/users", a.limitIP(noQuery(a.register)))
	a.handle("POST /api/users/activate", noQuery(a.activate))
	a.handle("POST /api/users/activation", a.limitIP(noQuery(a.resendActivation)))
	a.handle("GET /api/users/me", a.requireAuth(noInput(a.me)))
	a.handle("GET /api/user/{id}", a.optionalAuth(noInput(a.userProfile)))
	a.handle("POST /api/auth/login", a.limitIP(noQuery(a.login)))
	a.handle("POST /api/auth/refresh", noQuery(a.refresh))
	a.handle("POST /api/auth/logout", noQuery(a.logout))
	a.handle("POST /api/auth/password/forgot", a.limitIP(noQuery(a.forgotPassword)))
	a.handle("POST /api/auth/password/reset", noQuery(a.resetPassword))
	a.handle("GET /.well-known/jwks.json", noInput(a.jwks))

	a.page("GET /{$}", noInput(a.homePage))
	a.page("GET /activate", noBody(a.activatePage))
	a.page("POST /activate", noQuery(a.activateSubmit))
	a.page("GET /activation/resend", noInput(a.resendPage))
	a.page("POST /activation/resend", a.limitIP(noQuery(a.resendSubmit)))
	a.page("GET /forgot-password", noInput(a.forgotPage))
	a.page("POST /forgot-password", a.limitIP(noQuery(a.forgotSubmit)))
	a.page("GET /reset-password", noBody(a.resetPage))
	a.page("POST /reset-password", noQuery(a.resetSubmit))

	a.handle("GET /healthz", noInput(a.healthz))
	a.handle("GET /readyz", noInput(a.readyz))
	a.handle("GET /openapi.yaml", noInput(serveBytes("application/yaml", api.OpenAPI)))
	a.handle("GET /problems/{code}", noInput(problemDoc))
	a.handle("/", a.unmatched)
}

// unmatched answers every request no route takes: 405 with Allow when the path exists
// for other methods, 404 otherwise, both as problems.
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}

	if len(allowed) == 0 {
		return keeper.Errorf(keeper.CodeNotFound, "no route for %s", r.URL.Path)
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return keeper.Errorf(keeper.CodeMethodNotAllowed, "%s is not allowed here; use %s",
		r.Method, strings.Join(allowed, ", "))
}

// healthz says the process is alive.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether the process can serve: its database answers.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.ready(r.Context()); err != nil {
		return &keeper.Error{Code: keeper.CodeServiceUnavailable,
			Message: "the database is not reachable", Err: err}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// serveBytes serves a fixed document.
func serveBytes(contentType string, body []byte) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
		return nil
	}
}
