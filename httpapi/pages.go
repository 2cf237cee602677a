package httpapi

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/logging"
)

//go:embed pages/*.html
var pageFS embed.FS

// pageSet holds each page parsed together with the shared layout.
type pageSet map[string]*template.Template

func loadPages() pageSet {
	names, err := fs.Glob(pageFS, "pages/*.html")
	if err != nil {
		panic(err)
	}
	set := pageSet{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		set[name] = template.Must(template.ParseFS(pageFS, "pages/layout.html", n))
	}
	return set
}

// pageData is everything a page template may show.
type pageData struct {
	Title     string
	Message   string
	Token     string
	Purpose   keeper.TokenPurpose
	Code      keeper.Code // of a token problem
	Name      string
	RequestID string
}

// siteName ends every page's document title.
const siteName = "Keeper"

// DocTitle is the page's <title>: its heading followed by the site's name, or the
// site's name alone on a page whose heading is already that.
func (d pageData) DocTitle() string {
	if d.Title == "" || d.Title == siteName {
		return siteName
	}
	return d.Title + " · " + siteName
}

// pageHeaders keep pages that carry one-time tokens from leaking them: no caching, no
// Referer to other sites, no framing, no scripts.
var pageHeaders = map[string]string{
	"Content-Type":           "text/html; charset=utf-8",
	"Cache-Control":          "no-store",
	"Referrer-Policy":        "no-referrer",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

// render writes a page with its status.
func (a *API) render(w http.ResponseWriter, status int, name string, d pageData) error {
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		return err
	}
	for k, v := range pageHeaders {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// page registers a page handler whose errors become HTML error pages rather than
// problem documents: a person in a browser reads them.
func (a *API) page(pattern string, h handlerFunc) {
	a.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var ke *keeper.Error
		status, known := http.StatusInternalServerError, false
		if errors.As(err, &ke) {
			status, known = statusOf[ke.Code]
		}
		if clientClosed(r, err, known && status < 500) {
			writeClientClosed(w, r, a.log, err)
			return
		}
		d := pageData{Title: "Something went wrong", RequestID: logging.RequestID(r.Context())}
		if known && status < 500 {
			d.Title, d.Message = titleOf(ke.Code), ke.Message
			if s := stateFrom(r.Context()); s != nil {
				s.errCode = ke.Code
			}
		} else {
			a.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path,
				"error", err.Error())
			status = http.StatusInternalServerError
			d.Message = "The server failed to complete this request. Please try again later."
		}
		if rerr := a.render(w, status, "error", d); rerr != nil {
			a.log.ErrorContext(r.Context(), "render error page", "error", rerr.Error())
		}
	}))
}

// tokenProblem shows why a link's token cannot be used, with a way to get a new one.
// Errors other than token errors are returned for the error page.
func (a *API) tokenProblem(w http.ResponseWriter, r *http.Request,
	purpose keeper.TokenPurpose, err error) error {
	var ke *keeper.Error
	if !errors.As(err, &ke) {
		return err
	}
	switch ke.Code {
	case keeper.CodeTokenInvalid, keeper.CodeTokenExpired, keeper.CodeTokenUsed,
		keeper.CodeTokenRevoked:
	default:
		return err
	}

	if s := stateFrom(r.Context()); s != nil {
		s.errCode = ke.Code
	}
	msg := map[keeper.Code]string{
		keeper.CodeTokenInvalid: "This link is not valid. Check that you opened the whole link.",
		keeper.CodeTokenExpired: "This link has expired.",
		keeper.CodeTokenUsed:    "This link has already been used.",
		keeper.CodeTokenRevoked: "This link has been replaced by a newer one.",
	}[ke.Code]
	title := "Activation link unusable"
	if purpose == keeper.PurposePasswordReset {
		title = "Reset link unusable"
	}
	return a.render(w, statusOf[ke.Code], "token_problem",
		pageData{Title: title, Message: msg, Purpose: purpose, Code: ke.Code})
}

// formType is the media type of the pages' form posts.
const formType = "application/x-www-form-urlencoded"

// formValues reads an HTML form post and returns the values of the named fields, ""
// for one not sent. It is as strict as a JSON body: a field it does not name is
// unknown_field, a field sent twice is duplicate_key, and a malformed escape or a name
// or value that is not UTF-8 is invalid_request.
func formValues(w http.ResponseWriter, r *http.Request, names ...string) ([]string, error) {
	if err := requireMediaType(w, r, formType); err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, keeper.Errorf(keeper.CodeInvalidRequest, "the form is malformed")
	}

	out := make([]string, len(names))
	for _, name := range slices.Sorted(maps.Keys(form)) {
		i, vs := slices.Index(names, name), form[name]
		switch {
		case i < 0:
			return nil, keeper.Errorf(keeper.CodeUnknownField, "unknown form field %s",
				keeper.Quote(name))
		case len(vs) > 1:
			return nil, keeper.Errorf(keeper.CodeDuplicateKey,
				"form field %s is sent %d times", keeper.Quote(name), len(vs))
		case !utf8.ValidString(vs[0]):
			return nil, keeper.Errorf(keeper.CodeInvalidRequest,
				"form field %s is not valid UTF-8", keeper.Quote(name))
		}
		out[i] = vs[0]
	}
	return out, nil
}

// pageToken reads the token of a link: the one ?token= parameter.
func pageToken(r *http.Request) (string, error) {
	q, err := parseQuery(r, "token")
	if err != nil {
		return "", err
	}
	token, _, err := oneParam(q, "token")
	return token, err
}

func (a *API) homePage(w http.ResponseWriter, r *http.Request) error {
	return a.render(w, http.StatusOK, "home", pageData{Title: "Keeper"})
}

// activatePage shows the button that activates; opening the link changes nothing.
func (a *API) activatePage(w http.ResponseWriter, r *http.Request) error {
	token, err := pageToken(r)
	if err != nil {
		return err
	}
	if err := a.accounts.CheckToken(r.Context(), keeper.PurposeActivation, token); err != nil {
		return a.tokenProblem(w, r, keeper.PurposeActivation, err)
	}
	return a.render(w, http.StatusOK, "activate",
		pageData{Title: "Activate your account", Token: token})
}

// activateSubmit activates the account when the button is pressed.
func (a *API) activateSubmit(w http.ResponseWriter, r *http.Request) error {
	v, err := formValues(w, r, "token")
	if err != nil {
		return err
	}
	u, err := a.accounts.Activate(r.Context(), v[0])
	if err != nil {
		return a.tokenProblem(w, r, keeper.PurposeActivation, err)
	}
	return a.render(w, http.StatusOK, "activated",
		pageData{Title: "Account activated", Name: u.Name})
}

func (a *API) resendPage(w http.ResponseWriter, r *http.Request) error {
	return a.render(w, http.StatusOK, "resend", pageData{Title: "New activation link"})
}

func (a *API) resendSubmit(w http.ResponseWriter, r *http.Request) error {
	v, err := formValues(w, r, "email")
	if err != nil {
		return err
	}
	if err := a.limitEmail(w, r, v[0]); err != nil {
		return err
	}
	if err := a.accounts.ResendActivation(r.Context(), v[0]); err != nil {
		return err
	}
	return a.render(w, http.StatusOK, "sent", pageData{Title: "Check your inbox",
		Message: msgResent})
}

func (a *API) forgotPage(w http.ResponseWriter, r *http.Request) error {
	return a.render(w, http.StatusOK, "forgot", pageData{Title: "Forgot your password?"})
}

func (a *API) forgotSubmit(w http.ResponseWriter, r *http.Request) error {
	v, err := formValues(w, r, "email")
	if err != nil {
		return err
	}
	if err := a.limitEmail(w, r, v[0]); err != nil {
		return err
	}
	if err := a.accounts.ForgotPassword(r.Context(), v[0]); err != nil {
		return err
	}
	return a.render(w, http.StatusOK, "sent", pageData{Title: "Check your inbox",
		Message: msgForgot})
}

// resetPage shows the new-password form of a reset link.
func (a *API) resetPage(w http.ResponseWriter, r *http.Request) error {
	token, err := pageToken(r)
	if err != nil {
		return err
	}
	if err := a.accounts.CheckToken(r.Context(), keeper.PurposePasswordReset, token); err != nil {
		return a.tokenProblem(w, r, keeper.PurposePasswordReset, err)
	}
	return a.render(w, http.StatusOK, "reset", pageData{Title: "Choose a new password",
		Token: token})
}

// resetSubmit sets the new password; a mistake in it shows the form again.
func (a *API) resetSubmit(w http.ResponseWriter, r *http.Request) error {
	v, err := formValues(w, r, "token", "password", "confirm")
	if err != nil {
		return err
	}
	token, password, confirm := v[0], v[1], v[2]
	// A token that no link could carry is not shown again in the form: it is client
	// text of any size, and the link is unusable anyway.
	if !auth.ValidSecretFormat(token) {
		return a.tokenProblem(w, r, keeper.PurposePasswordReset,
			keeper.Errorf(keeper.CodeTokenInvalid, "the token is not valid"))
	}
	again := pageData{Title: "Choose a new password", Token: token}
	if password != confirm {
		again.Message = "The two passwords differ."
		return a.render(w, http.StatusBadRequest, "reset", again)
	}

	err = a.accounts.ResetPassword(r.Context(), token, password)
	var ke *keeper.Error
	if errors.As(err, &ke) && ke.Code == keeper.CodeValidation {
		again.Message = "The password must be 8 to 128 characters long."
		if len(ke.Fields) > 0 {
			again.Message = ke.Fields[0].Message
		}
		return a.render(w, http.StatusBadRequest, "reset", again)
	}
	if err != nil {
		return a.tokenProblem(w, r, keeper.PurposePasswordReset, err)
	}
	return a.render(w, http.StatusOK, "reset_done", pageData{Title: "Password changed"})
}
