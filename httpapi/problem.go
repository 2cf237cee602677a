package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/logging"
)

// problemTypeBase prefixes each problem's type URI. The server serves a short page for
// each code under it, so a problem's type is a link a developer can open.
const problemTypeBase = "/problems/"

// statusOf maps every error code that reaches a client to its HTTP status. A code
// missing here is a programming error and is answered as 500.
var statusOf = map[keeper.Code]int{
	keeper.CodeInvalidRequest:      http.StatusBadRequest,
	keeper.CodeInvalidJSON:         http.StatusBadRequest,
	keeper.CodeInvalidQuery:        http.StatusBadRequest,
	keeper.CodeUnknownField:        http.StatusBadRequest,
	keeper.CodeValidation:          http.StatusBadRequest,
	keeper.CodeInvalidKey:          http.StatusBadRequest,
	keeper.CodeInvalidValue:        http.StatusBadRequest,
	keeper.CodeTooManyKeys:         http.StatusBadRequest,
	keeper.CodeDuplicateKey:        http.StatusBadRequest,
	keeper.CodeTokenInvalid:        http.StatusBadRequest,
	keeper.CodeTokenExpired:        http.StatusBadRequest,
	keeper.CodeTokenUsed:           http.StatusBadRequest,
	keeper.CodeTokenRevoked:        http.StatusBadRequest,
	keeper.CodeUnauthorized:        http.StatusUnauthorized,
	keeper.CodeInvalidCredentials:  http.StatusUnauthorized,
	keeper.CodeTokenReused:         http.StatusUnauthorized,
	keeper.CodeAccountNotActivated: http.StatusForbidden,
	keeper.CodeAccountDisabled:     http.StatusForbidden,
	keeper.CodeForbidden:           http.StatusForbidden,
	keeper.CodeNotFound:            http.StatusNotFound,
	keeper.CodeKeyNotFound:         http.StatusNotFound,
	keeper.CodeUserNotFound:        http.StatusNotFound,
	keeper.CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	keeper.CodeNotAcceptable:       http.StatusNotAcceptable,
	keeper.CodeKeyExists:           http.StatusConflict,
	keeper.CodeVersionMismatch:     http.StatusPreconditionFailed,
	keeper.CodeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	keeper.CodeValueTooLarge:       http.StatusRequestEntityTooLarge,
	keeper.CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	keeper.CodeRateLimited:         http.StatusTooManyRequests,
	keeper.CodeInternal:            http.StatusInternalServerError,
	keeper.CodeServiceUnavailable:  http.StatusServiceUnavailable,
}

// problem is an RFC 9457 problem document with Keeper's extensions.
type problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Code      keeper.Code    `json:"code"`
	RequestID string         `json:"request_id"`
	Errors    []fieldProblem `json:"errors,omitempty"`
}

// fieldProblem is one entry of a validation problem's errors list.
type fieldProblem struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError is the one place where an error becomes a response. Domain errors keep
// their code and client-safe message; anything else is logged in full and answered
// with a bare 500 that names only the request id.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ke *keeper.Error
	status, known := 0, false
	if errors.As(err, &ke) {
		status, known = statusOf[ke.Code]
	}
	if clientClosed(r, err, known && status < 500) {
		writeClientClosed(w, r, log, err)
		return
	}

	switch {
	case !known:
		ke = &keeper.Error{Code: keeper.CodeInternal}
		status = http.StatusInternalServerError
		fallthrough
	case status >= 500:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method,
			"path", r.URL.Path, "error", err.Error())
	}
	sendProblem(w, r, status, ke)
}

// sendProblem writes ke as a problem document with the given status. Only the code and
// the client-safe message leave the server.
func sendProblem(w http.ResponseWriter, r *http.Request, status int, ke *keeper.Error) {
	ctx := r.Context()
	if state := stateFrom(ctx); state != nil {
		state.errCode = ke.Code
	}

	p := problem{
		Type:      problemTypeBase + string(ke.Code),
		Title:     titleOf(ke.Code),
		Status:    status,
		Detail:    ke.Message,
		Code:      ke.Code,
		RequestID: logging.RequestID(ctx),
	}
	for _, f := range ke.Fields {
		p.Errors = append(p.Errors, fieldProblem(f))
	}
	writeProblem(w, p)
}

// writeProblem sends a problem document with its status.
func writeProblem(w http.ResponseWriter, p problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// A problem holds only strings and ints; failing to encode it is impossible.
		panic(err)
	}

	h := w.Header()
	h.Del("ETag")
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// statusClientClosed is the status recorded for a request whose client went
// away before it was answered (nginx's 499). No client ever reads it.
const statusClientClosed = 499

// clientClosed reports whether err is only the echo of the client going away: the
// request's context has ended and the failure is that cancellation, or a failure that
// is not a client error (clientError) and so has no other explanation.
func clientClosed(r *http.Request, err error, clientError bool) bool {
	if r.Context().Err() == nil {
		return false
	}
	// Once the client is gone, the database driver may report the cancellation in its
	// own words ("sql: statement is closed", a rolled-back transaction) rather than as
	// context.Canceled: an unexplained failure of an abandoned request is the abort.
	return errors.Is(err, context.Canceled) || !clientError
}

// writeClientClosed ends a request its client abandoned. It is not a server failure:
// it is logged at info, and the bare 499 status it writes is for the access log, since
// nobody is left to read it.
func writeClientClosed(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	log.InfoContext(r.Context(), "client closed request", "method", r.Method,
		"path", r.URL.Path, "error", err.Error())
	w.Header().Del("ETag")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(statusClientClosed)
}
