package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/logging"
)

// Default lifetimes of the tokens the service hands out.
const (
	DefaultActivationTTL = 24 * time.Hour
	DefaultResetTTL      = time.Hour
	DefaultRefreshTTL    = 30 * 24 * time.Hour
)

// registerAttempts bounds Register's transactions. A second one runs only when another
// registration of the same address committed between the look-up and the insert.
const registerAttempts = 2

// Emails builds the account messages; *mail.Templates implements it.
type Emails interface {
	Activation(to, name, link string, ttl time.Duration) keeper.Message
	AlreadyRegistered(to, name, loginURL, resetURL string) keeper.Message
	PasswordReset(to, name, link string, ttl time.Duration) keeper.Message
}

// Config holds the plain values the service needs. Zero values take the defaults noted.
type Config struct {
	// PublicURL is where users reach Keeper, such as http://127.0.0.1:8080, without a
	// trailing slash. Mailed links are PublicURL+"/activate?token=…" and
	// PublicURL+"/reset-password?token=…"; the login page is PublicURL+"/" and the page
	// that asks for a reset link is PublicURL+"/forgot-password".
	PublicURL string

	ActivationTTL    time.Duration    // lifetime of an activation link; 0 → 24h
	ResetTTL         time.Duration    // lifetime of a password reset link; 0 → 1h
	RefreshTTL       time.Duration    // lifetime of each refresh token; 0 → 720h
	ProfileCacheSize int              // most active users cached; 0 → 100 000
	Now              func() time.Time // the clock; nil → time.Now
}

// withDefaults fills the zero values of c.
func (c Config) withDefaults() Config {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.ActivationTTL <= 0 {
		c.ActivationTTL = DefaultActivationTTL
	}
	if c.ResetTTL <= 0 {
		c.ResetTTL = DefaultResetTTL
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.ProfileCacheSize <= 0 {
		c.ProfileCacheSize = defaultProfileCacheSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Service runs Keeper's account flows: registration with an emailed activation link,
// login with short-lived access tokens and rotating refresh tokens, logout, password
// reset by email, and the look-up of active users for public profiles and for every
// authenticated request. Mail goes into the store's outbox in the same transaction as
// the change it reports, and notify wakes the delivery worker after the commit.
//
// No answer tells whether an email address is registered: Register, ResendActivation
// and ForgotPassword succeed alike for every address, and Login gives
// invalid_credentials for an unknown address after the same hashing work as for a
// wrong password.
//
// Active users are cached in memory, by id, so that profiles and authentication cost no
// database read once warm. The cache belongs to this process: it stays exact for changes
// made through this Service, but a second process on the same database, or a change made
// to the database by hand (disabling a user, say), is not seen here until the entry is
// evicted. Running several instances would need a shared invalidation signal.
//
// A Service is safe for concurrent use; make one with NewService.
type Service struct {
	store    keeper.AccountStore
	hasher   *Hasher
	tokens   *Tokens
	emails   Emails
	notify   func()
	log      *slog.Logger
	cfg      Config
	profiles *profileCache
}

// NewService returns a Service on store that hashes passwords with hasher, signs access
// tokens with tokens and writes mail with emails. notify, which may be nil, is called
// after every commit that queued mail. A nil log discards. It panics when store, hasher,
// tokens or emails is nil, a wiring mistake that cmd makes at start.
func NewService(store keeper.AccountStore, hasher *Hasher, tokens *Tokens, emails Emails,
	notify func(), log *slog.Logger, cfg Config) *Service {
	if store == nil || hasher == nil || tokens == nil || emails == nil {
		panic("auth.NewService: want a store, a hasher, tokens and emails")
	}
	if notify == nil {
		notify = func() {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	cfg = cfg.withDefaults()
	return &Service{
		store: store, hasher: hasher, tokens: tokens, emails: emails,
		notify: notify, log: log, cfg: cfg,
		profiles: newProfileCache(cfg.ProfileCacheSize),
	}
}

// Registration is what a person gives to create an account.
type Registration struct {
	Email    string
	Name     string
	Password string
}

// TokenPair is what a login or a refresh returns: a signed access token valid for
// ExpiresIn, and an opaque refresh token that can be exchanged once for a new pair.
type TokenPair struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	UserID       int64
}

// Register creates a pending account and mails its activation link. Invalid input gives
// one validation_failed error listing every invalid field (email, name, password). Any
// valid registration then returns nil, whether or not the address is known, and takes
// the same password hashing work either way:
//
//   - a new address gets a pending user and an Activation message;
//   - a pending one gets a fresh Activation message, its older links revoked, and
//     nothing else changes: the password and name given now are dropped;
//   - an active or disabled one gets an AlreadyRegistered message addressed with the
//     stored name, and nothing changes.
//
// A concurrent registration of the same address ends the same way as the known-address
// cases.
//
// Keeping the first password of a pending account, as Supabase Auth does, has a known
// cost: whoever registered an address first, owner or not, knows the password the
// account has once the owner activates it. The owner notices at the first login, and a
// password reset, which ends every session, takes the account back.
func (s *Service) Register(ctx context.Context, r Registration) error {
	r, err := validateRegistration(r)
	if err != nil {
		return err
	}

	// Hashing comes before the look-up, for every address, so that a known address
	// answers no faster than a new one.
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}

	outcome, err := s.registerWithRetry(ctx, r, hash)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}

	s.notify()
	s.log.InfoContext(ctx, "registration",
		"email", logging.MaskEmail(r.Email), "outcome", outcome)
	return nil
}

// registerWithRetry runs register again when its insert lost a race for the address:
// the next transaction sees the winner's user and takes a known-address path.
func (s *Service) registerWithRetry(
	ctx context.Context, r Registration, hash string,
) (string, error) {
	for attempt := 1; ; attempt++ {
		outcome, err := s.register(ctx, r, hash)
		if !keeper.HasCode(err, keeper.CodeEmailTaken) {
			return outcome, err
		}
		if attempt == registerAttempts {
			// email_taken is never shown to clients: %v leaves only the text.
			return "", fmt.Errorf("address still taken after %d attempts: %v", attempt, err)
		}
	}
}

// register runs one registration transaction and names the path it took.
func (s *Service) register(ctx context.Context, r Registration, hash string) (string, error) {
	now := s.now()
	var outcome string
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		u, err := tx.UserByEmail(ctx, r.Email)
		switch {
		case keeper.HasCode(err, keeper.CodeUserNotFound):
			outcome = "created"
			return s.createPending(ctx, tx, r, hash, now)
		case err != nil:
			return err
		case u.Status == keeper.StatusPending:
			outcome = "activation_resent"
			return s.sendActivation(ctx, tx, u, now)
		default:
			outcome = "already_registered"
			m := s.emails.AlreadyRegistered(u.Email, u.Name,
				s.cfg.PublicURL+"/", s.cfg.PublicURL+"/forgot-password")
			return tx.Enqueue(ctx, m, now)
		}
	})
	return outcome, err
}

// createPending stores a new pending user and mails its activation link.
func (s *Service) createPending(
	ctx context.Context, tx keeper.AccountTx, r Registration, hash string, now time.Time,
) error {
	u, err := tx.CreateUser(ctx, keeper.User{
		Email:        r.Email,
		Name:         r.Name,
		PasswordHash: hash,
		Status:       keeper.StatusPending,
		CreatedAt:    now,
	})
	if err != nil {
		return err
	}
	return s.sendActivation(ctx, tx, u, now)
}

// sendActivation revokes the user's outstanding activation links and mails a new one,
// so that only the latest link works.
func (s *Service) sendActivation(
	ctx context.Context, tx keeper.AccountTx, u keeper.User, now time.Time,
) error {
	if err := tx.RevokeUserTokens(ctx, u.ID, keeper.PurposeActivation, now); err != nil {
		return err
	}
	secret, err := createToken(ctx, tx, u.ID, keeper.PurposeActivation, "",
		now.Add(s.cfg.ActivationTTL), now)
	if err != nil {
		return err
	}

	link := s.cfg.PublicURL + "/activate?token=" + secret
	return tx.Enqueue(ctx, s.emails.Activation(u.Email, u.Name, link, s.cfg.ActivationTTL), now)
}

// Activate uses an activation token and activates its user, which it returns without
// PasswordHash. The token fails with token_invalid (malformed or unknown),
// token_revoked (a newer link was sent), token_used or token_expired, checked in that
// order; a disabled user gives account_disabled and the token stays unused. Of several
// concurrent activations with one token exactly one succeeds and the others get
// token_used. Every other activation link of the user dies with it.
func (s *Service) Activate(ctx context.Context, token string) (keeper.User, error) {
	if !ValidSecretFormat(token) {
		return keeper.User{}, errTokenInvalid()
	}

	now := s.now()
	var u keeper.User
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		tok, err := usableToken(ctx, tx, keeper.PurposeActivation, token, now)
		if err != nil {
			return err
		}
		if u, err = activate(ctx, tx, tok, now); err != nil {
			return err
		}
		return tx.RevokeUserTokens(ctx, u.ID, keeper.PurposeActivation, now)
	})
	if err != nil {
		return keeper.User{}, fmt.Errorf("activate: %w", err)
	}

	s.profiles.forget(u.ID)
	s.log.InfoContext(ctx, "account activated", "user_id", u.ID)
	return publicUser(u), nil
}

// activate uses tok and makes its user active, and returns the user as it now is.
func activate(
	ctx context.Context, tx keeper.AccountTx, tok keeper.Token, now time.Time,
) (keeper.User, error) {
	// UseToken changes the row only while it is unused: of concurrent activations on
	// engines that do not serialize them, the losers get token_used here.
	if err := tx.UseToken(ctx, tok.ID, now); err != nil {
		return keeper.User{}, err
	}
	if err := tx.ActivateUser(ctx, tok.UserID, now); err != nil {
		return keeper.User{}, err
	}

	u, err := tx.UserByID(ctx, tok.UserID)
	if err != nil {
		return keeper.User{}, err
	}
	// ActivateUser leaves a disabled user disabled; the token must then stay unused.
	if u.Status != keeper.StatusActive {
		return keeper.User{}, errAccountDisabled()
	}
	return u, nil
}

// CheckToken reports whether an activation or password reset token would be accepted
// now, with the token errors Activate and ResetPassword would give (token_invalid,
// token_revoked, token_used, token_expired), without using it: the page shown on GET
// calls it, so that a mail scanner that prefetches the link cannot burn it. It does not
// look at the user, so a disabled user's link passes here and fails on use. Other
// purposes are a programming error.
func (s *Service) CheckToken(
	ctx context.Context, purpose keeper.TokenPurpose, token string,
) error {
	if purpose != keeper.PurposeActivation && purpose != keeper.PurposePasswordReset {
		return fmt.Errorf("check token: purpose %q is not sent as a link", purpose)
	}
	if !ValidSecretFormat(token) {
		return errTokenInvalid()
	}

	// AccountStore has no token look-up outside a transaction; this one writes nothing.
	now := s.now()
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		_, err := usableToken(ctx, tx, purpose, token, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("check %s token: %w", purpose, err)
	}
	return nil
}

// ResendActivation mails a new activation link to a pending user, revoking the older
// ones. It returns nil, doing nothing, for an address that is malformed, unknown, or
// belongs to an account that is already active or disabled, so that the answer reveals
// nothing about the address.
func (s *Service) ResendActivation(ctx context.Context, email string) error {
	pending := func(st keeper.UserStatus) bool { return st == keeper.StatusPending }
	sent, err := s.mailUser(ctx, email, pending, s.sendActivation)
	if err != nil {
		return fmt.Errorf("resend activation: %w", err)
	}

	if sent {
		s.log.InfoContext(ctx, "activation resent", "email", logging.MaskEmail(email))
	}
	return nil
}

// ForgotPassword mails a password reset link, valid for Config.ResetTTL, to an active or
// pending user, revoking the user's older reset links. Pending users are included
// because resetting through the mailed link proves they control the address, which is
// what activation proves too: ResetPassword activates them. It returns nil, doing
// nothing, for an address that is malformed, unknown or disabled, so that the answer
// reveals nothing about the address.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	resettable := func(st keeper.UserStatus) bool {
		return st == keeper.StatusActive || st == keeper.StatusPending
	}
	sent, err := s.mailUser(ctx, email, resettable, s.sendReset)
	if err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}

	if sent {
		s.log.InfoContext(ctx, "password reset mailed", "email", logging.MaskEmail(email))
	}
	return nil
}

// sendReset revokes the user's outstanding reset links and mails a new one.
func (s *Service) sendReset(
	ctx context.Context, tx keeper.AccountTx, u keeper.User, now time.Time,
) error {
	if err := tx.RevokeUserTokens(ctx, u.ID, keeper.PurposePasswordReset, now); err != nil {
		return err
	}
	secret, err := createToken(ctx, tx, u.ID, keeper.PurposePasswordReset, "",
		now.Add(s.cfg.ResetTTL), now)
	if err != nil {
		return err
	}

	link := s.cfg.PublicURL + "/reset-password?token=" + secret
	return tx.Enqueue(ctx, s.emails.PasswordReset(u.Email, u.Name, link, s.cfg.ResetTTL), now)
}

// mailUser calls send in a transaction for the user with that address when want accepts
// the user's status, and wakes the outbox worker after the commit. Malformed and unknown
// addresses, and users that want refuses, cost one read and no write. It reports whether
// send ran.
func (s *Service) mailUser(
	ctx context.Context, email string, want func(keeper.UserStatus) bool,
	send func(context.Context, keeper.AccountTx, keeper.User, time.Time) error,
) (bool, error) {
	email = strings.TrimSpace(email)
	if checkEmail(email) != nil {
		return false, nil
	}
	u, err := s.store.UserByEmail(ctx, email)
	if keeper.HasCode(err, keeper.CodeUserNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !want(u.Status) {
		return false, nil
	}

	sent, err := s.mailUserTx(ctx, u.ID, want, send)
	if sent {
		s.notify()
	}
	return sent, err
}

// mailUserTx reads the user again inside the transaction, since its status may have
// changed since the first read, and calls send when want still accepts it.
func (s *Service) mailUserTx(
	ctx context.Context, id int64, want func(keeper.UserStatus) bool,
	send func(context.Context, keeper.AccountTx, keeper.User, time.Time) error,
) (bool, error) {
	now := s.now()
	sent := false
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		u, err := tx.UserByID(ctx, id)
		if keeper.HasCode(err, keeper.CodeUserNotFound) {
			return nil
		}
		if err != nil || !want(u.Status) {
			return err
		}
		sent = true
		return send(ctx, tx, u, now)
	})
	return sent && err == nil, err
}

// ResetPassword sets a new password with a reset token. An unacceptable password gives
// validation_failed with a "password" field error; the token fails as in Activate
// (token_invalid, token_revoked, token_used, token_expired), and a disabled user gives
// account_disabled. On success the token is used, every refresh token and every other
// reset link of the user is revoked, so that each session must log in again, and a
// pending user becomes active: following the mailed link proved control of the address.
// Access tokens already issued stay valid until they expire.
func (s *Service) ResetPassword(ctx context.Context, token, password string) error {
	if err := validatePassword(password); err != nil {
		return err
	}
	// A dead link costs no hashing: the token is checked before the password is hashed,
	// and again, under the write lock, when it is used.
	if err := s.CheckToken(ctx, keeper.PurposePasswordReset, token); err != nil {
		return fmt.Errorf("reset password: %w", err)
	}

	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}

	now := s.now()
	var u keeper.User
	err = s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		tok, err := usableToken(ctx, tx, keeper.PurposePasswordReset, token, now)
		if err != nil {
			return err
		}
		u, err = resetPassword(ctx, tx, tok, hash, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}

	s.profiles.forget(u.ID)
	s.log.InfoContext(ctx, "password reset", "user_id", u.ID, "was_pending",
		u.Status == keeper.StatusPending)
	return nil
}

// resetPassword uses tok, stores the new hash and revokes what the old password gave
// access to. It returns the user as it was before.
func resetPassword(
	ctx context.Context, tx keeper.AccountTx, tok keeper.Token, hash string, now time.Time,
) (keeper.User, error) {
	u, err := tx.UserByID(ctx, tok.UserID)
	if err != nil {
		return keeper.User{}, err
	}
	if u.Status == keeper.StatusDisabled {
		return keeper.User{}, errAccountDisabled()
	}

	steps := []func() error{
		func() error { return tx.UseToken(ctx, tok.ID, now) },
		func() error { return tx.SetPassword(ctx, u.ID, hash, now) },
		func() error { return tx.RevokeUserTokens(ctx, u.ID, keeper.PurposeRefresh, now) },
		func() error { return tx.RevokeUserTokens(ctx, u.ID, keeper.PurposePasswordReset, now) },
	}
	if u.Status == keeper.StatusPending {
		steps = append(steps,
			func() error { return tx.ActivateUser(ctx, u.ID, now) },
			func() error { return tx.RevokeUserTokens(ctx, u.ID, keeper.PurposeActivation, now) })
	}

	for _, step := range steps {
		if err := step(); err != nil {
			return keeper.User{}, err
		}
	}
	return u, nil
}

// Login checks an email and password and starts a session. Failures: invalid_credentials
// for an unknown address, a wrong password, or input no registration could have made
// (empty, an address over 254 bytes, a password over 128 characters), each after the
// work of one password verification; account_not_activated and account_disabled only
// after the right password. A hash made with older parameters is replaced by one with
// the current parameters.
func (s *Service) Login(ctx context.Context, email, password string) (TokenPair, error) {
	email = strings.TrimSpace(email)
	u, err := s.checkCredentials(ctx, email, password)
	if err == nil {
		err = statusError(u.Status)
	}
	if err != nil {
		if code := keeper.ErrorCode(err); code != keeper.CodeInternal {
			s.log.InfoContext(ctx, "login refused",
				"email", logging.MaskEmail(email), "code", string(code))
		}
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}

	pair, err := s.startSession(ctx, u, password)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login user %d: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "login", "user_id", u.ID)
	return pair, nil
}

// checkCredentials returns the user whose address and password these are, whatever its
// status, or invalid_credentials.
func (s *Service) checkCredentials(
	ctx context.Context, email, password string,
) (keeper.User, error) {
	// Input no registration accepts is refused without a look-up, after the same work;
	// an over-long password is never hashed.
	if email == "" || len(email) > MaxEmailBytes || password == "" ||
		!passwordWithinMax(password) {
		return keeper.User{}, s.refuseCredentials(ctx, "")
	}

	u, err := s.store.UserByEmail(ctx, email)
	if keeper.HasCode(err, keeper.CodeUserNotFound) {
		return keeper.User{}, s.refuseCredentials(ctx, password)
	}
	if err != nil {
		return keeper.User{}, err
	}

	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return keeper.User{}, err
	}
	if !ok {
		return keeper.User{}, errInvalidCredentials()
	}
	return u, nil
}

// refuseCredentials does the work of one password verification and returns
// invalid_credentials, or ctx's error when the wait for a hashing slot ended.
func (s *Service) refuseCredentials(ctx context.Context, password string) error {
	if err := s.hasher.VerifyDummy(ctx, password); err != nil {
		return err
	}
	return errInvalidCredentials()
}

// startSession stores a refresh token of a new family for u and issues the pair. When
// the hash u was checked against needs new parameters it is replaced in the same
// transaction, but only if it is still the stored one.
func (s *Service) startSession(
	ctx context.Context, u keeper.User, password string,
) (TokenPair, error) {
	// Hashing happens before the transaction, so that it holds no lock.
	var rehash string
	if s.hasher.NeedsRehash(u.PasswordHash) {
		var err error
		if rehash, err = s.hasher.Hash(ctx, password); err != nil {
			return TokenPair{}, err
		}
	}

	now := s.now()
	family := rand.Text()
	var pair TokenPair
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		if err := stillValid(ctx, tx, u); err != nil {
			return err
		}
		if rehash != "" {
			if err := tx.SetPassword(ctx, u.ID, rehash, now); err != nil {
				return err
			}
		}
		var err error
		pair, err = s.newSession(ctx, tx, u.ID, family, now)
		return err
	})
	if err != nil {
		return TokenPair{}, err
	}

	if rehash != "" {
		s.profiles.forget(u.ID)
	}
	return pair, nil
}

// stillValid refuses a login whose check went stale before its transaction: the
// user is gone, its password changed (a reset) or its status did.
func stillValid(ctx context.Context, tx keeper.AccountTx, checked keeper.User) error {
	u, err := tx.UserByID(ctx, checked.ID)
	if keeper.HasCode(err, keeper.CodeUserNotFound) {
		return errInvalidCredentials()
	}
	if err != nil {
		return err
	}
	if u.PasswordHash != checked.PasswordHash {
		return errInvalidCredentials()
	}
	return statusError(u.Status)
}

// Refresh exchanges a refresh token for a new pair in the same family; the old token is
// used up. Failures are unauthorized ("refresh token invalid", "… expired", "… revoked"),
// also when the user is no longer active, except for a token that was already
// exchanged: that is a sign of theft, so the whole family is revoked, including the
// newest token, and refresh_token_reused is returned. The revocation is committed
// before that error is returned.
//
// Concurrent refreshes with one token run one after the other: the first succeeds and
// every later one is taken as reuse, which ends the session, the first one's new token
// included. A client must not refresh in parallel with one token; no grace period
// softens this.
//
// Each rotation starts a new RefreshTTL, so an active session lasts as long as it is
// used at least once per RefreshTTL.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	if !ValidSecretFormat(refreshToken) {
		return TokenPair{}, unauthorized("refresh token invalid", nil)
	}

	now := s.now()
	var pair TokenPair
	var reused keeper.Token
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		tok, err := findRefreshToken(ctx, tx, refreshToken, now)
		if keeper.HasCode(err, keeper.CodeTokenUsed) {
			// Returning nil commits the revocation; the error is returned after.
			reused = tok
			return tx.RevokeFamily(ctx, tok.Family, now)
		}
		if err != nil {
			return err
		}

		pair, err = s.rotate(ctx, tx, tok, now)
		if keeper.HasCode(err, keeper.CodeTokenUsed) {
			reused = tok
			return tx.RevokeFamily(ctx, tok.Family, now)
		}
		return err
	})
	if err != nil {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}

	if reused.ID != 0 {
		s.log.WarnContext(ctx, "refresh token reused; session revoked", "user_id", reused.UserID)
		return TokenPair{}, keeper.Errorf(keeper.CodeTokenReused,
			"refresh token was already used; the session has ended, log in again")
	}
	return pair, nil
}

// findRefreshToken finds the stored refresh token for a secret. A used token comes
// back with token_used, for the reuse check; every other refusal is unauthorized.
func findRefreshToken(
	ctx context.Context, tx keeper.AccountTx, secret string, now time.Time,
) (keeper.Token, error) {
	tok, err := tx.TokenByHash(ctx, keeper.PurposeRefresh, HashSecret(secret))
	switch {
	case keeper.HasCode(err, keeper.CodeTokenInvalid):
		return keeper.Token{}, unauthorized("refresh token invalid", nil)
	case err != nil:
		return keeper.Token{}, err
	}

	// Any exchange of a token already exchanged is reuse, even once its family has been
	// revoked: revoking again changes nothing, and the client learns why it failed.
	if !tok.UsedAt.IsZero() {
		return tok, keeper.Errorf(keeper.CodeTokenUsed, "refresh token already used")
	}
	switch err := tokenState(tok, now); {
	case keeper.HasCode(err, keeper.CodeTokenExpired):
		return keeper.Token{}, unauthorized("refresh token expired", nil)
	case err != nil:
		return keeper.Token{}, unauthorized("refresh token revoked", nil)
	}
	return tok, nil
}

// rotate uses tok and issues the next pair of its family, for an active user only.
func (s *Service) rotate(
	ctx context.Context, tx keeper.AccountTx, tok keeper.Token, now time.Time,
) (TokenPair, error) {
	u, err := tx.UserByID(ctx, tok.UserID)
	if keeper.HasCode(err, keeper.CodeUserNotFound) ||
		(err == nil && u.Status != keeper.StatusActive) {
		return TokenPair{}, unauthorized("refresh token invalid", nil)
	}
	if err != nil {
		return TokenPair{}, err
	}

	// token_used passes up to the reuse check; revoked means a logout or reset won.
	err = tx.UseToken(ctx, tok.ID, now)
	if keeper.HasCode(err, keeper.CodeTokenRevoked) {
		return TokenPair{}, unauthorized("refresh token revoked", nil)
	}
	if err != nil {
		return TokenPair{}, err
	}
	return s.newSession(ctx, tx, u.ID, tok.Family, now)
}

// newSession stores a refresh token in family and issues an access token.
func (s *Service) newSession(
	ctx context.Context, tx keeper.AccountTx, userID int64, family string, now time.Time,
) (TokenPair, error) {
	secret, err := createToken(ctx, tx, userID, keeper.PurposeRefresh, family,
		now.Add(s.cfg.RefreshTTL), now)
	if err != nil {
		return TokenPair{}, err
	}

	access, _, err := s.tokens.Issue(userID)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{
		AccessToken:  access,
		ExpiresIn:    s.tokens.TTL(),
		RefreshToken: secret,
		UserID:       userID,
	}, nil
}

// Logout ends the session of a refresh token: the token's family is revoked, which
// revokes that token, the only live one of its family, and leaves the user's other
// sessions alone. A token of the session that was already exchanged ends it as well. Malformed, unknown and already revoked tokens give nil too, so that
// logout can be repeated and reveals nothing. Access tokens already issued stay valid
// until they expire.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	if !ValidSecretFormat(refreshToken) {
		return nil
	}

	now := s.now()
	var userID int64
	err := s.store.Tx(ctx, func(tx keeper.AccountTx) error {
		tok, err := tx.TokenByHash(ctx, keeper.PurposeRefresh, HashSecret(refreshToken))
		if keeper.HasCode(err, keeper.CodeTokenInvalid) {
			return nil
		}
		if err != nil || !tok.RevokedAt.IsZero() {
			return err
		}
		userID = tok.UserID
		return tx.RevokeFamily(ctx, tok.Family, now)
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}

	if userID != 0 {
		s.log.InfoContext(ctx, "logout", "user_id", userID)
	}
	return nil
}

// usableToken finds the token of that purpose whose secret is given and returns it when
// it can be used now; see tokenState.
func usableToken(
	ctx context.Context, tx keeper.AccountTx, purpose keeper.TokenPurpose, secret string,
	now time.Time,
) (keeper.Token, error) {
	tok, err := tx.TokenByHash(ctx, purpose, HashSecret(secret))
	if keeper.HasCode(err, keeper.CodeTokenInvalid) {
		return keeper.Token{}, errTokenInvalid()
	}
	if err != nil {
		return keeper.Token{}, err
	}
	return tok, tokenState(tok, now)
}

// tokenState says why a stored token cannot be used now, or nil. Final states come
// before expiry: a link used yesterday reads "used", not "expired". Revoked comes first,
// as in AccountTx.UseToken.
func tokenState(tok keeper.Token, now time.Time) error {
	switch {
	case !tok.RevokedAt.IsZero():
		return keeper.Errorf(keeper.CodeTokenRevoked, "token has been revoked")
	case !tok.UsedAt.IsZero():
		return keeper.Errorf(keeper.CodeTokenUsed, "token has already been used")
	case !now.Before(tok.ExpiresAt):
		return keeper.Errorf(keeper.CodeTokenExpired, "token has expired")
	}
	return nil
}

// createToken stores a new token and returns its secret, which only the user sees.
func createToken(
	ctx context.Context, tx keeper.AccountTx, userID int64, purpose keeper.TokenPurpose,
	family string, expires, now time.Time,
) (string, error) {
	secret, hash, err := NewSecret()
	if err != nil {
		return "", err
	}
	_, err = tx.CreateToken(ctx, keeper.Token{
		UserID:    userID,
		Purpose:   purpose,
		Hash:      hash,
		Family:    family,
		ExpiresAt: expires,
		CreatedAt: now,
	})
	return secret, err
}

// statusError is the login refusal for a user's status, nil for an active user.
func statusError(st keeper.UserStatus) error {
	switch st {
	case keeper.StatusActive:
		return nil
	case keeper.StatusPending:
		return keeper.Errorf(keeper.CodeAccountNotActivated,
			"account is not activated; follow the link in the activation email")
	default:
		return errAccountDisabled()
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

func errTokenInvalid() error {
	return keeper.Errorf(keeper.CodeTokenInvalid, "token invalid")
}

func errInvalidCredentials() error {
	return keeper.Errorf(keeper.CodeInvalidCredentials, "invalid email or password")
}

func errAccountDisabled() error {
	return keeper.Errorf(keeper.CodeAccountDisabled, "account is disabled")
}
