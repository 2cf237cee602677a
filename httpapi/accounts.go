package httpapi

import (
	"net/http"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/auth"
)

// Request bodies of the account endpoints. Each lists exactly the fields it accepts;
// anything else, such as id or status, is refused as unknown_field.
type (
	registerRequest struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	emailRequest struct {
		Email string `json:"email"`
	}
	tokenRequest struct {
		Token string `json:"token"`
	}
	loginRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	refreshRequest struct {
		RefreshToken string `json:"refresh_token"`
	}
	resetRequest struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
)

// Response bodies of the account endpoints.
type (
	acceptedJSON struct {
		Message string `json:"message"`
	}
	tokenJSON struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	// profileJSON is a user as others see it; Email is present only for the user.
	profileJSON struct {
		ID        int64     `json:"id"`
		Name      string    `json:"name"`
		Email     string    `json:"email,omitempty"`
		CreatedAt time.Time `json:"created_at"`
	}
	// meJSON is a user as the user sees it.
	meJSON struct {
		ID          int64      `json:"id"`
		Name        string     `json:"name"`
		Email       string     `json:"email"`
		Status      string     `json:"status"`
		CreatedAt   time.Time  `json:"created_at"`
		ActivatedAt *time.Time `json:"activated_at"`
	}
)

// Messages of the 202 answers. They are the same whether or not an account exists, so
// that the answer reveals nothing.
const (
	msgRegistered = "If this address can be registered, an email with an activation link " +
		"is on its way. Check your inbox."
	msgResent = "If an account with this address awaits activation, a new link is on its way."
	msgForgot = "If an account with this address exists, a password reset link is on its way."
)

// register answers POST /api/users.
func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := a.limitEmail(w, r, req.Email); err != nil {
		return err
	}

	err := a.accounts.Register(r.Context(), auth.Registration(req))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, acceptedJSON{Message: msgRegistered})
}

// activate answers POST /api/users/activate.
func (a *API) activate(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}

	u, err := a.accounts.Activate(r.Context(), req.Token)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toMe(u))
}

// resendActivation answers POST /api/users/activation.
func (a *API) resendActivation(w http.ResponseWriter, r *http.Request) error {
	var req emailRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := a.limitEmail(w, r, req.Email); err != nil {
		return err
	}

	if err := a.accounts.ResendActivation(r.Context(), req.Email); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, acceptedJSON{Message: msgResent})
}

// login answers POST /api/auth/login.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := a.limitEmail(w, r, req.Email); err != nil {
		return err
	}

	pair, err := a.accounts.Login(r.Context(), req.Email, req.Password)
	if err != nil {
		return err
	}
	return writeTokens(w, pair)
}

// refresh answers POST /api/auth/refresh.
func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}

	pair, err := a.accounts.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	return writeTokens(w, pair)
}

// logout answers POST /api/auth/logout: 204 whether or not the token was live.
func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}

	if err := a.accounts.Logout(r.Context(), req.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// forgotPassword answers POST /api/auth/password/forgot.
func (a *API) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var req emailRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := a.limitEmail(w, r, req.Email); err != nil {
		return err
	}

	if err := a.accounts.ForgotPassword(r.Context(), req.Email); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, acceptedJSON{Message: msgForgot})
}

// resetPassword answers POST /api/auth/password/reset.
func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var req resetRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}

	if err := a.accounts.ResetPassword(r.Context(), req.Token, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// userProfile answers GET /api/user/{id}: the public profile of an active user, with
// the email only when the caller is that user. An id is read only in the form the API
// writes it, so "01" and "+1" name no user.
func (a *API) userProfile(w http.ResponseWriter, r *http.Request) error {
	id, ok := canonicalInt(r.PathValue("id"))
	if !ok {
		return keeper.Errorf(keeper.CodeUserNotFound, "no user with id %s",
			keeper.Quote(r.PathValue("id")))
	}

	u, err := a.accounts.Profile(r.Context(), id)
	if err != nil {
		return err
	}
	p := profileJSON{ID: u.ID, Name: u.Name, CreatedAt: u.CreatedAt}
	if caller, ok := userFrom(r.Context()); ok && caller.ID == u.ID {
		p.Email = u.Email
	}
	return writeJSON(w, http.StatusOK, p)
}

// me answers GET /api/users/me with the authenticated user.
func (a *API) me(w http.ResponseWriter, r *http.Request) error {
	u, _ := userFrom(r.Context())
	// The account holds the email address: no shared cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, toMe(u))
}

// jwks answers GET /.well-known/jwks.json with the public keys that verify tokens.
func (a *API) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(a.jwksDoc)
	return nil
}

// writeTokens sends a token pair in the OAuth 2.0 shape (RFC 6749 section 5.1).
func writeTokens(w http.ResponseWriter, p auth.TokenPair) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, tokenJSON{
		AccessToken:  p.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.ExpiresIn / time.Second),
		RefreshToken: p.RefreshToken,
	})
}

// toMe converts a user to the shape its owner sees.
func toMe(u keeper.User) meJSON {
	m := meJSON{ID: u.ID, Name: u.Name, Email: u.Email, Status: string(u.Status),
		CreatedAt: u.CreatedAt}
	if !u.ActivatedAt.IsZero() {
		at := u.ActivatedAt
		m.ActivatedAt = &at
	}
	return m
}
