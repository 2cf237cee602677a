// Package httpapi is Keeper's HTTP layer: routes, handlers, middleware, problem+json
// errors and the server-rendered pages. It depends on the domain package and on the
// services; nothing depends on it but cmd/keeper.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/api"
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
}

// API serves Keeper's HTTP interface.
type API struct {
	log      *slog.Logger
	kv       keeper.KVStore
	ready    func(context.Context) error
	maxValue int
	mux      *http.ServeMux
}

// New returns the complete HTTP handler: routes wrapped in Keeper's middleware.
func New(o Options) http.Handler {
	a := &API{
		log:      o.Logger,
		kv:       o.KV,
		ready:    o.Ready,
		maxValue: o.MaxValueBytes,
		mux:      http.NewServeMux(),
	}
	a.routes()

	return chain(a.mux,
		requestID,
		accessLog(a.log),
		recoverPanics(a.log),
		limitBody(a.log, o.MaxBodyBytes),
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

func (a *API) routes() {
	a.handle("GET /api/result", a.getResult)
	a.handle("PUT /api/result", a.putResult)
	a.handle("POST /api/result", a.postResult)
	a.handle("PATCH /api/result", a.patchResult)
	a.handle("DELETE /api/result", a.deleteResult)
	a.handle("GET /api/keys", a.listKeys)

	a.handle("GET /healthz", a.healthz)
	a.handle("GET /readyz", a.readyz)
	a.handle("GET /openapi.yaml", serveBytes("application/yaml", api.OpenAPI))
	a.handle("GET /problems/{code}", problemDoc)
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
