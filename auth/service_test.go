package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/sqlite"
)

const (
	publicURL   = "http://keeper.test"
	accessTTL   = 15 * time.Minute
	password    = "correct horse battery staple"
	newPassword = "another long passphrase"
)

// fastParams make hashing cheap enough for tests that hash hundreds of times. They are
// not meant for production; one test runs with DefaultParams.
var fastParams = auth.Params{Memory: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is a test clock that goroutines may read while the test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a Service on a fresh SQLite file, with the parts a test looks behind it with.
type env struct {
	svc      *auth.Service
	store    *sqlite.AccountStore
	outbox   *sqlite.Outbox
	hasher   *auth.Hasher
	tokens   *auth.Tokens
	emails   *mail.Templates
	clock    *clock
	logs     *syncBuffer
	notified atomic.Int64
	cfg      auth.Config
}

// syncBuffer is a bytes.Buffer that concurrent log calls may write to.
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

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, fastParams, auth.Config{})
}

func newEnvWith(t testing.TB, params auth.Params, cfg auth.Config) *env {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keeper.db"))
	if err != nil {
		t.Fatalf("open database: got error %v, want none", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: got error %v, want none", err)
		}
	})

	emails, err := mail.NewTemplates()
	if err != nil {
		t.Fatalf("templates: got error %v, want none", err)
	}

	e := &env{
		store:  sqlite.NewAccountStore(db),
		outbox: sqlite.NewOutbox(db),
		hasher: auth.NewHasher(params, 0),
		emails: emails,
		clock:  &clock{now: time.Now().UTC().Truncate(time.Second)},
		logs:   &syncBuffer{},
	}
	e.tokens = auth.NewTokens(newKeys(t), publicURL, "keeper-api", accessTTL,
		auth.WithClock(e.clock.Now))

	cfg.PublicURL = publicURL + "/"
	cfg.Now = e.clock.Now
	e.cfg = cfg
	e.svc = e.newService(e.hasher)
	return e
}

// newService returns another Service on e's store, clock and mail, hashing with hasher.
func (e *env) newService(hasher *auth.Hasher) *auth.Service {
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return auth.NewService(e.store, hasher, e.tokens, e.emails,
		func() { e.notified.Add(1) }, log, e.cfg)
}

func newKeys(t testing.TB) *auth.KeySet {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	keys, err := auth.NewKeySet(priv)
	if err != nil {
		t.Fatalf("NewKeySet: got error %v, want none", err)
	}
	return keys
}

// mails returns the messages in the outbox addressed to, oldest first.
func (e *env) mails(t testing.TB, to string) []keeper.Message {
	t.Helper()
	all, err := e.outbox.List(context.Background())
	if err != nil {
		t.Fatalf("list outbox: got error %v, want none", err)
	}
	var msgs []keeper.Message
	for _, m := range all {
		if m.Message.To == to {
			msgs = append(msgs, m.Message)
		}
	}
	return msgs
}

// lastMail returns the newest message to that address and checks its subject.
func (e *env) lastMail(t testing.TB, to, subject string) keeper.Message {
	t.Helper()
	msgs := e.mails(t, to)
	if len(msgs) == 0 {
		t.Fatalf("mail to %s: got none, want %q", to, subject)
	}
	m := msgs[len(msgs)-1]
	if m.Subject != subject {
		t.Fatalf("last mail to %s: got subject %q, want %q", to, m.Subject, subject)
	}
	return m
}

var linkToken = regexp.MustCompile(`http://keeper\.test(/[a-z-]+)\?token=([A-Za-z0-9_-]+)`)

// tokenFrom returns the token of the link to path in a message's text body.
func tokenFrom(t testing.TB, m keeper.Message, path string) string {
	t.Helper()
	match := linkToken.FindStringSubmatch(m.Text)
	if match == nil || match[1] != path {
		t.Fatalf("mail %q: got no %s link in %q", m.Subject, path, m.Text)
	}
	return match[2]
}

// activationToken returns the token of the newest activation mail to that address.
func (e *env) activationToken(t testing.TB, to string) string {
	t.Helper()
	return tokenFrom(t, e.lastMail(t, to, mail.SubjectActivation), "/activate")
}

// resetToken returns the token of the newest reset mail to that address.
func (e *env) resetToken(t testing.TB, to string) string {
	t.Helper()
	return tokenFrom(t, e.lastMail(t, to, mail.SubjectPasswordReset), "/reset-password")
}

func (e *env) register(t testing.TB, email, name, pw string) {
	t.Helper()
	r := auth.Registration{Email: email, Name: name, Password: pw}
	if err := e.svc.Register(context.Background(), r); err != nil {
		t.Fatalf("Register(%s): got error %v, want nil", email, err)
	}
}

// activeUser registers and activates a user through the mailed link.
func (e *env) activeUser(t testing.TB, email, name, pw string) keeper.User {
	t.Helper()
	e.register(t, email, name, pw)
	u, err := e.svc.Activate(context.Background(), e.activationToken(t, email))
	if err != nil {
		t.Fatalf("Activate(%s): got error %v, want nil", email, err)
	}
	return u
}

// disabledUser stores a disabled user directly: the service has no way to disable one.
func (e *env) disabledUser(t testing.TB, email, pw string) keeper.User {
	t.Helper()
	ctx := context.Background()
	hash, err := e.hasher.Hash(ctx, pw)
	if err != nil {
		t.Fatalf("hash: got error %v, want none", err)
	}

	var u keeper.User
	err = e.store.Tx(ctx, func(tx keeper.AccountTx) error {
		u, err = tx.CreateUser(ctx, keeper.User{Email: email, Name: "Disabled",
			PasswordHash: hash, Status: keeper.StatusDisabled, CreatedAt: e.clock.Now()})
		return err
	})
	if err != nil {
		t.Fatalf("create disabled user: got error %v, want none", err)
	}
	return u
}

func (e *env) user(t testing.TB, email string) keeper.User {
	t.Helper()
	u, err := e.store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("UserByEmail(%s): got error %v, want none", email, err)
	}
	return u
}

func (e *env) login(t testing.TB, email, pw string) auth.TokenPair {
	t.Helper()
	pair, err := e.svc.Login(context.Background(), email, pw)
	if err != nil {
		t.Fatalf("Login(%s): got error %v, want nil", email, err)
	}
	return pair
}

// storedToken reads a token by its secret, as committed.
func (e *env) storedToken(t testing.TB, purpose keeper.TokenPurpose, secret string) keeper.Token {
	t.Helper()
	ctx := context.Background()
	var tok keeper.Token
	err := e.store.Tx(ctx, func(tx keeper.AccountTx) error {
		var err error
		tok, err = tx.TokenByHash(ctx, purpose, auth.HashSecret(secret))
		return err
	})
	if err != nil {
		t.Fatalf("TokenByHash: got error %v, want none", err)
	}
	return tok
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, what string, err error, code keeper.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: got error %v, want nil", what, err)
		}
		return
	}
	if !keeper.HasCode(err, code) {
		t.Fatalf("%s: got error %v, want code %s", what, err, code)
	}
}

// fieldCodes returns "field:code" for each field error of a validation error.
func fieldCodes(t *testing.T, err error) []string {
	t.Helper()
	var ke *keeper.Error
	if !errors.As(err, &ke) || ke.Code != keeper.CodeValidation {
		t.Fatalf("got error %v, want validation_failed", err)
	}
	var got []string
	for _, f := range ke.Fields {
		if f.Message == "" {
			t.Errorf("field %s: got an empty message, want one", f.Field)
		}
		got = append(got, f.Field+":"+f.Code)
	}
	return got
}

func TestRegisterValidation(t *testing.T) {
	e := newEnv(t)
	ok := func(n int) string { return strings.Repeat("é", n) } // 2 bytes each
	longEmail := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"

	tests := []struct {
		name  string
		email string
		uname string
		pw    string
		want  []string // field:code, nil for a valid registration
	}{
		{"valid", "ada@example.com", "Ada", password, nil},
		{"valid with spaces around email and name", "  bob@example.com ", " Bob ", password, nil},
		{"email of 254 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com",
			"Long", password, nil},
		{"name of 100 multi-byte characters", "eve@example.com", ok(100), password, nil},
		{"password of 128 multi-byte characters", "max@example.com", "Max", ok(128), nil},
		{"password of exactly 8 characters", "min@example.com", "Min", "12345678", nil},
		{"password with spaces around it", "sp@example.com", "Sp", "  secret  ", nil},
		{"empty email", "", "Ada", password, []string{"email:required"}},
		{"blank email", "   ", "Ada", password, []string{"email:required"}},
		{"no at sign", "ada.example.com", "Ada", password, []string{"email:invalid_format"}},
		{"display name", "Ada <ada@example.com>", "Ada", password,
			[]string{"email:invalid_format"}},
		{"angle brackets", "<ada@example.com>", "Ada", password,
			[]string{"email:invalid_format"}},
		{"two addresses", "a@example.com, b@example.com", "Ada", password,
			[]string{"email:invalid_format"}},
		{"comment", "ada@example.com (me)", "Ada", password, []string{"email:invalid_format"}},
		{"header injection", "ada@example.com\r\nBcc: x@example.com", "Ada", password,
			[]string{"email:invalid_format"}},
		{"email of 255 bytes", longEmail, "Ada", password, []string{"email:too_long"}},
		{"empty name", "n1@example.com", "", password, []string{"name:required"}},
		{"blank name", "n2@example.com", " \t ", password, []string{"name:required"}},
		{"name of 101 characters", "n3@example.com", ok(101), password,
			[]string{"name:too_long"}},
		{"name with newline", "n4@example.com", "Ada\nLovelace", password,
			[]string{"name:invalid_format"}},
		{"name with NUL", "n5@example.com", "Ada\x00", password,
			[]string{"name:invalid_format"}},
		{"name with right-to-left override", "n6@example.com", "Ada\u202egpj.exe", password,
			[]string{"name:invalid_format"}},
		{"empty password", "p1@example.com", "Ada", "", []string{"password:required"}},
		{"password of 7 characters", "p2@example.com", "Ada", "1234567",
			[]string{"password:too_short"}},
		{"password of 129 multi-byte characters", "p3@example.com", "Ada", ok(129),
			[]string{"password:too_long"}},
		{"password of 1 MB", "p4@example.com", "Ada", strings.Repeat("x", 1<<20),
			[]string{"password:too_long"}},
		{"every field at once", "nope", "", "short",
			[]string{"email:invalid_format", "name:required", "password:too_short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := auth.Registration{Email: tt.email, Name: tt.uname, Password: tt.pw}
			err := e.svc.Register(context.Background(), r)

			if tt.want == nil {
				wantCode(t, "Register", err, "")
				u := e.user(t, tt.email)
				trimmed := strings.TrimSpace
				if u.Email != trimmed(tt.email) || u.Name != trimmed(tt.uname) {
					t.Errorf("stored %q %q, want both trimmed", u.Email, u.Name)
				}
				return
			}
			if got := fieldCodes(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("got fields %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegisterValidationStoresNothing(t *testing.T) {
	e := newEnv(t)
	r := auth.Registration{Email: "ada@example.com", Name: "Ada", Password: "short"}
	if err := e.svc.Register(context.Background(), r); err == nil {
		t.Fatal("Register: got nil, want validation_failed")
	}

	_, err := e.store.UserByEmail(context.Background(), "ada@example.com")
	wantCode(t, "UserByEmail", err, keeper.CodeUserNotFound)
	if got := len(e.mails(t, "ada@example.com")); got != 0 {
		t.Errorf("got %d mails, want 0", got)
	}
	if got := e.notified.Load(); got != 0 {
		t.Errorf("got %d notifications, want 0", got)
	}
}

func TestRegisterNewAddress(t *testing.T) {
	e := newEnv(t)
	e.register(t, "Ada@Example.com", "Ada", password)

	u := e.user(t, "ada@example.com")
	if u.Status != keeper.StatusPending || u.Email != "Ada@Example.com" || u.Name != "Ada" {
		t.Errorf("got user %+v, want pending Ada with the address as given", u)
	}
	if ok, err := e.hasher.Verify(context.Background(), u.PasswordHash, password); !ok {
		t.Errorf("stored hash: got match %v (error %v), want a hash of the password", ok, err)
	}

	m := e.lastMail(t, "Ada@Example.com", mail.SubjectActivation)
	if !strings.Contains(m.Text, "Hello Ada,") {
		t.Errorf("activation mail: got %q, want it to greet Ada", m.Text)
	}
	tok := e.storedToken(t, keeper.PurposeActivation, tokenFrom(t, m, "/activate"))
	if want := e.clock.Now().Add(auth.DefaultActivationTTL); !tok.ExpiresAt.Equal(want) {
		t.Errorf("activation token expires %v, want %v", tok.ExpiresAt, want)
	}
	if got := e.notified.Load(); got != 1 {
		t.Errorf("got %d notifications, want 1", got)
	}
}

func TestRegisterKnownAddress(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, e *env) // creates ada@example.com
		wantSubject string
		wantStatus  keeper.UserStatus
	}{
		{"active", func(t *testing.T, e *env) {
			e.activeUser(t, "ada@example.com", "Ada", password)
		}, mail.SubjectAlreadyRegistered, keeper.StatusActive},
		{"pending", func(t *testing.T, e *env) {
			e.register(t, "ada@example.com", "Ada", password)
		}, mail.SubjectActivation, keeper.StatusPending},
		{"disabled", func(t *testing.T, e *env) {
			u := e.disabledUser(t, "ada@example.com", password)
			if u.Name != "Disabled" {
				t.Fatalf("got name %q, want Disabled", u.Name)
			}
		}, mail.SubjectAlreadyRegistered, keeper.StatusDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			before := e.user(t, "ada@example.com")
			mailsBefore := len(e.mails(t, before.Email))
			notifiedBefore := e.notified.Load()

			// A stranger registers the same address, spelled differently, with their
			// own name and password.
			e.register(t, " ADA@example.COM ", "Mallory", "mallory's password")

			after := e.user(t, "ada@example.com")
			if after != before {
				t.Errorf("user changed: got %+v, want %+v", after, before)
			}
			if after.Status != tt.wantStatus {
				t.Errorf("got status %s, want %s", after.Status, tt.wantStatus)
			}
			if got := len(e.mails(t, before.Email)); got != mailsBefore+1 {
				t.Errorf("got %d mails to the owner, want %d", got, mailsBefore+1)
			}
			if got := len(e.mails(t, "ADA@example.COM")); got != 0 {
				t.Errorf("got %d mails to the stranger's spelling, want 0", got)
			}
			m := e.lastMail(t, before.Email, tt.wantSubject)
			if strings.Contains(m.Text, "Mallory") || !strings.Contains(m.Text, before.Name) {
				t.Errorf("mail: got %q, want the stored name %q and not Mallory",
					m.Text, before.Name)
			}
			if got := e.notified.Load(); got != notifiedBefore+1 {
				t.Errorf("got %d notifications, want %d", got, notifiedBefore+1)
			}
		})
	}
}

func TestRegisterKnownAddressLinks(t *testing.T) {
	e := newEnv(t)
	e.activeUser(t, "ada@example.com", "Ada", password)
	e.register(t, "ada@example.com", "Mallory", "mallory's password")

	m := e.lastMail(t, "ada@example.com", mail.SubjectAlreadyRegistered)
	for _, want := range []string{publicURL + "/\n", publicURL + "/forgot-password"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("mail: got %q, want it to hold %q", m.Text, want)
		}
	}
	if linkToken.MatchString(m.Text) {
		t.Errorf("mail: got a token link in %q, want none", m.Text)
	}

	// The stored password is the owner's, not the stranger's.
	e.login(t, "ada@example.com", password)
	_, err := e.svc.Login(context.Background(), "ada@example.com", "mallory's password")
	wantCode(t, "Login with the stranger's password", err, keeper.CodeInvalidCredentials)
}

func TestRegisterPendingAgainRevokesOldLink(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register(t, "ada@example.com", "Ada", password)
	first := e.activationToken(t, "ada@example.com")

	e.register(t, "ada@example.com", "Ada", "a different password")
	second := e.activationToken(t, "ada@example.com")
	if first == second {
		t.Fatal("got the same token twice, want a new one")
	}

	_, err := e.svc.Activate(ctx, first)
	wantCode(t, "Activate(first link)", err, keeper.CodeTokenRevoked)
	if _, err := e.svc.Activate(ctx, second); err != nil {
		t.Fatalf("Activate(second link): got error %v, want nil", err)
	}

	// The password of the second registration was not applied.
	e.login(t, "ada@example.com", password)
}

// raceStore hides every user from look-ups by email inside the first transaction, as
// a transaction that read just before a concurrent registration committed would.
type raceStore struct {
	keeper.AccountStore
	txs atomic.Int64
}

func (s *raceStore) Tx(ctx context.Context, fn func(tx keeper.AccountTx) error) error {
	n := s.txs.Add(1)
	return s.AccountStore.Tx(ctx, func(tx keeper.AccountTx) error {
		if n == 1 {
			return fn(blindTx{tx})
		}
		return fn(tx)
	})
}

type blindTx struct{ keeper.AccountTx }

func (blindTx) UserByEmail(context.Context, string) (keeper.User, error) {
	return keeper.User{}, keeper.Errorf(keeper.CodeUserNotFound, "user not found")
}

func TestRegisterLosesInsertRace(t *testing.T) {
	e := newEnv(t)
	e.activeUser(t, "ada@example.com", "Ada", password)
	before := e.user(t, "ada@example.com")

	race := &raceStore{AccountStore: e.store}
	svc := auth.NewService(race, e.hasher, e.tokens, e.emails, nil, nil, e.cfg)
	r := auth.Registration{Email: "ada@example.com", Name: "Mallory", Password: "whatever123"}
	if err := svc.Register(context.Background(), r); err != nil {
		t.Fatalf("Register: got error %v, want nil", err)
	}

	if got := race.txs.Load(); got != 2 {
		t.Errorf("got %d transactions, want 2 (the insert loses, the retry sees the user)", got)
	}
	if after := e.user(t, "ada@example.com"); after != before {
		t.Errorf("user changed: got %+v, want %+v", after, before)
	}
	e.lastMail(t, "ada@example.com", mail.SubjectAlreadyRegistered)
}

func TestActivate(t *testing.T) {
	tests := []struct {
		name  string
		token func(t *testing.T, e *env) string
		want  keeper.Code
	}{
		{"fresh link", func(t *testing.T, e *env) string {
			return e.activationToken(t, "ada@example.com")
		}, ""},
		{"link a second before expiry", func(t *testing.T, e *env) string {
			e.clock.Add(auth.DefaultActivationTTL - time.Second)
			return e.activationToken(t, "ada@example.com")
		}, ""},
		{"expired link", func(t *testing.T, e *env) string {
			e.clock.Add(auth.DefaultActivationTTL)
			return e.activationToken(t, "ada@example.com")
		}, keeper.CodeTokenExpired},
		{"used link", func(t *testing.T, e *env) string {
			tok := e.activationToken(t, "ada@example.com")
			if _, err := e.svc.Activate(context.Background(), tok); err != nil {
				t.Fatalf("first Activate: got error %v, want nil", err)
			}
			return tok
		}, keeper.CodeTokenUsed},
		{"used and expired link", func(t *testing.T, e *env) string {
			tok := e.activationToken(t, "ada@example.com")
			if _, err := e.svc.Activate(context.Background(), tok); err != nil {
				t.Fatalf("first Activate: got error %v, want nil", err)
			}
			e.clock.Add(auth.DefaultActivationTTL)
			return tok
		}, keeper.CodeTokenUsed},
		{"unknown well-formed token", func(t *testing.T, e *env) string {
			secret, _, err := auth.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}, keeper.CodeTokenInvalid},
		{"reset token", func(t *testing.T, e *env) string {
			if err := e.svc.ForgotPassword(context.Background(), "ada@example.com"); err != nil {
				t.Fatal(err)
			}
			return e.resetToken(t, "ada@example.com")
		}, keeper.CodeTokenInvalid},
		{"empty", func(*testing.T, *env) string { return "" }, keeper.CodeTokenInvalid},
		{"garbage", func(*testing.T, *env) string { return "'; DROP TABLE users; --" },
			keeper.CodeTokenInvalid},
		{"43 characters outside base64url", func(*testing.T, *env) string {
			return strings.Repeat("!", 43)
		}, keeper.CodeTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.register(t, "ada@example.com", "Ada", password)
			token := tt.token(t, e)

			u, err := e.svc.Activate(context.Background(), token)
			wantCode(t, "Activate", err, tt.want)
			stored := e.user(t, "ada@example.com")
			if tt.want != "" {
				return
			}
			if u.Status != keeper.StatusActive || u.ID != stored.ID || u.Email != stored.Email {
				t.Errorf("got user %+v, want the stored user, active", u)
			}
			if u.PasswordHash != "" {
				t.Error("got a password hash in the returned user, want none")
			}
			if stored.Status != keeper.StatusActive || !stored.ActivatedAt.Equal(e.clock.Now()) {
				t.Errorf("stored user: got %s at %v, want active at %v",
					stored.Status, stored.ActivatedAt, e.clock.Now())
			}
		})
	}
}

func TestActivateDisabledUserKeepsToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.disabledUser(t, "ada@example.com", password)

	secret, hash, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.Tx(ctx, func(tx keeper.AccountTx) error {
		_, err := tx.CreateToken(ctx, keeper.Token{UserID: u.ID, Hash: hash,
			Purpose: keeper.PurposeActivation, ExpiresAt: e.clock.Now().Add(time.Hour)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.Activate(ctx, secret)
	wantCode(t, "Activate", err, keeper.CodeAccountDisabled)
	if tok := e.storedToken(t, keeper.PurposeActivation, secret); !tok.UsedAt.IsZero() {
		t.Errorf("token used at %v, want unused", tok.UsedAt)
	}
	if got := e.user(t, "ada@example.com").Status; got != keeper.StatusDisabled {
		t.Errorf("got status %s, want disabled", got)
	}
}

func TestActivateConcurrent(t *testing.T) {
	e := newEnv(t)
	e.register(t, "ada@example.com", "Ada", password)
	token := e.activationToken(t, "ada@example.com")

	const n = 20
	errs := make(chan error, n)
	var start sync.WaitGroup
	start.Add(1)
	for range n {
		go func() {
			start.Wait()
			_, err := e.svc.Activate(context.Background(), token)
			errs <- err
		}()
	}
	start.Done()

	wins, used := 0, 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case keeper.HasCode(err, keeper.CodeTokenUsed):
			used++
		default:
			t.Errorf("Activate: got error %v, want nil or token_used", err)
		}
	}
	if wins != 1 || used != n-1 {
		t.Errorf("got %d successes and %d token_used, want 1 and %d", wins, used, n-1)
	}
}

func TestCheckToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register(t, "ada@example.com", "Ada", password)
	token := e.activationToken(t, "ada@example.com")

	for i := range 3 {
		err := e.svc.CheckToken(ctx, keeper.PurposeActivation, token)
		wantCode(t, fmt.Sprintf("CheckToken #%d", i+1), err, "")
	}
	if tok := e.storedToken(t, keeper.PurposeActivation, token); !tok.UsedAt.IsZero() {
		t.Fatalf("token used at %v after checks, want unused", tok.UsedAt)
	}

	err := e.svc.CheckToken(ctx, keeper.PurposePasswordReset, token)
	wantCode(t, "CheckToken as a reset token", err, keeper.CodeTokenInvalid)
	err = e.svc.CheckToken(ctx, keeper.PurposeActivation, "garbage")
	wantCode(t, "CheckToken(garbage)", err, keeper.CodeTokenInvalid)

	if _, err := e.svc.Activate(ctx, token); err != nil {
		t.Fatalf("Activate after checks: got error %v, want nil", err)
	}
	err = e.svc.CheckToken(ctx, keeper.PurposeActivation, token)
	wantCode(t, "CheckToken after use", err, keeper.CodeTokenUsed)
}

func TestCheckTokenExpired(t *testing.T) {
	e := newEnv(t)
	e.activeUser(t, "ada@example.com", "Ada", password)
	if err := e.svc.ForgotPassword(context.Background(), "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	token := e.resetToken(t, "ada@example.com")

	e.clock.Add(auth.DefaultResetTTL)
	err := e.svc.CheckToken(context.Background(), keeper.PurposePasswordReset, token)
	wantCode(t, "CheckToken", err, keeper.CodeTokenExpired)
}

func TestCheckTokenRefusesRefreshPurpose(t *testing.T) {
	e := newEnv(t)
	secret, _, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	err = e.svc.CheckToken(context.Background(), keeper.PurposeRefresh, secret)
	if err == nil || keeper.ErrorCode(err) != keeper.CodeInternal {
		t.Errorf("got %v, want an internal error", err)
	}
}

func TestResendActivation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register(t, "pending@example.com", "Pen", password)
	old := e.activationToken(t, "pending@example.com")
	e.activeUser(t, "active@example.com", "Act", password)
	e.disabledUser(t, "disabled@example.com", password)

	tests := []struct {
		name     string
		email    string
		wantMail bool
	}{
		{"pending", " PENDING@example.com", true},
		{"active", "active@example.com", false},
		{"disabled", "disabled@example.com", false},
		{"unknown", "nobody@example.com", false},
		{"malformed", "not an address", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := strings.ToLower(strings.TrimSpace(tt.email))
			mailsBefore, notifiedBefore := len(e.mails(t, owner)), e.notified.Load()

			if err := e.svc.ResendActivation(ctx, tt.email); err != nil {
				t.Fatalf("ResendActivation: got error %v, want nil", err)
			}

			wantMails, wantNotified := mailsBefore, notifiedBefore
			if tt.wantMail {
				wantMails++
				wantNotified++
			}
			if got := len(e.mails(t, owner)); got != wantMails {
				t.Errorf("got %d mails, want %d", got, wantMails)
			}
			if got := e.notified.Load(); got != wantNotified {
				t.Errorf("got %d notifications, want %d", got, wantNotified)
			}
		})
	}

	_, err := e.svc.Activate(ctx, old)
	wantCode(t, "Activate(old link)", err, keeper.CodeTokenRevoked)
	if _, err := e.svc.Activate(ctx, e.activationToken(t, "pending@example.com")); err != nil {
		t.Errorf("Activate(new link): got error %v, want nil", err)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	prefix := strings.Repeat("a", 72)
	e.activeUser(t, "ada@example.com", "Ada", password)
	e.activeUser(t, "long@example.com", "Long", prefix+"X")
	e.register(t, "pending@example.com", "Pen", password)
	e.disabledUser(t, "disabled@example.com", password)

	tests := []struct {
		name  string
		email string
		pw    string
		want  keeper.Code
	}{
		{"right password", "ada@example.com", password, ""},
		{"address spelled differently", "  ADA@Example.com ", password, ""},
		{"wrong password", "ada@example.com", password + "!", keeper.CodeInvalidCredentials},
		{"password with a space added", "ada@example.com", " " + password,
			keeper.CodeInvalidCredentials},
		{"unknown address", "nobody@example.com", password, keeper.CodeInvalidCredentials},
		{"empty address", "", password, keeper.CodeInvalidCredentials},
		{"empty password", "ada@example.com", "", keeper.CodeInvalidCredentials},
		{"password of 1 MB", "ada@example.com", strings.Repeat("x", 1<<20),
			keeper.CodeInvalidCredentials},
		{"address of 1 MB", strings.Repeat("a", 1<<20), password,
			keeper.CodeInvalidCredentials},
		{"same first 72 bytes", "long@example.com", prefix + "Y", keeper.CodeInvalidCredentials},
		{"long password", "long@example.com", prefix + "X", ""},
		{"pending, right password", "pending@example.com", password,
			keeper.CodeAccountNotActivated},
		{"pending, wrong password", "pending@example.com", "wrong password",
			keeper.CodeInvalidCredentials},
		{"disabled, right password", "disabled@example.com", password,
			keeper.CodeAccountDisabled},
		{"disabled, wrong password", "disabled@example.com", "wrong password",
			keeper.CodeInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := e.svc.Login(ctx, tt.email, tt.pw)
			wantCode(t, "Login", err, tt.want)
			if tt.want != "" {
				if pair != (auth.TokenPair{}) {
					t.Errorf("got pair %+v with the error, want none", pair)
				}
				return
			}

			u := e.user(t, tt.email)
			if pair.UserID != u.ID || pair.ExpiresIn != accessTTL ||
				!auth.ValidSecretFormat(pair.RefreshToken) {
				t.Errorf("got pair %+v, want user %d, expiry %v and a refresh secret",
					pair, u.ID, accessTTL)
			}
			got, err := e.svc.Authenticate(ctx, pair.AccessToken)
			if err != nil || got.ID != u.ID {
				t.Errorf("Authenticate: got user %d, error %v, want user %d", got.ID, err, u.ID)
			}
		})
	}
}

func TestLoginRefreshToken(t *testing.T) {
	e := newEnv(t)
	e.activeUser(t, "ada@example.com", "Ada", password)
	first := e.login(t, "ada@example.com", password)
	second := e.login(t, "ada@example.com", password)

	a := e.storedToken(t, keeper.PurposeRefresh, first.RefreshToken)
	b := e.storedToken(t, keeper.PurposeRefresh, second.RefreshToken)
	if a.Family == "" || a.Family == b.Family {
		t.Errorf("got families %q and %q, want two different ones", a.Family, b.Family)
	}
	if want := e.clock.Now().Add(auth.DefaultRefreshTTL); !a.ExpiresAt.Equal(want) {
		t.Errorf("refresh token expires %v, want %v", a.ExpiresAt, want)
	}
}

func TestLoginRehash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.activeUser(t, "ada@example.com", "Ada", password)
	old := e.user(t, "ada@example.com").PasswordHash

	stronger := fastParams
	stronger.Time = 2
	hasher := auth.NewHasher(stronger, 0)
	svc := e.newService(hasher)
	if !hasher.NeedsRehash(old) {
		t.Fatal("NeedsRehash: got false, want true for a hash with other parameters")
	}

	if _, err := svc.Login(ctx, "ada@example.com", password); err != nil {
		t.Fatalf("Login: got error %v, want nil", err)
	}
	renewed := e.user(t, "ada@example.com").PasswordHash
	if renewed == old || hasher.NeedsRehash(renewed) {
		t.Errorf("stored hash: got %q, want a new one with the current parameters", renewed)
	}
	if _, err := svc.Login(ctx, "ada@example.com", password); err != nil {
		t.Errorf("Login after rehash: got error %v, want nil", err)
	}
}

func TestLoginDefaultParams(t *testing.T) {
	e := newEnvWith(t, auth.DefaultParams(), auth.Config{})
	e.activeUser(t, "ada@example.com", "Ada", password)

	e.login(t, "ada@example.com", password)
	_, err := e.svc.Login(context.Background(), "nobody@example.com", password)
	wantCode(t, "Login(unknown)", err, keeper.CodeInvalidCredentials)
	if e.hasher.NeedsRehash(e.user(t, "ada@example.com").PasswordHash) {
		t.Error("NeedsRehash: got true, want false for a hash made with the same parameters")
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.activeUser(t, "ada@example.com", "Ada", password)
	first := e.login(t, "ada@example.com", password)

	e.clock.Add(time.Minute)
	second, err := e.svc.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: got error %v, want nil", err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Error("got the same tokens back, want new ones")
	}
	if second.UserID != first.UserID || second.ExpiresIn != accessTTL {
		t.Errorf("got pair %+v, want user %d and expiry %v", second, first.UserID, accessTTL)
	}

	old := e.storedToken(t, keeper.PurposeRefresh, first.RefreshToken)
	next := e.storedToken(t, keeper.PurposeRefresh, second.RefreshToken)
	if old.UsedAt.IsZero() || next.Family != old.Family {
		t.Errorf("got old used at %v, families %q and %q, want old used and one family",
			old.UsedAt, old.Family, next.Family)
	}
	if want := e.clock.Now().Add(auth.DefaultRefreshTTL); !next.ExpiresAt.Equal(want) {
		t.Errorf("new refresh token expires %v, want %v", next.ExpiresAt, want)
	}

	third, err := e.svc.Refresh(ctx, second.RefreshToken)
	if err != nil {
		t.Fatalf("second Refresh: got error %v, want nil", err)
	}
	if _, err := e.svc.Authenticate(ctx, third.AccessToken); err != nil {
		t.Errorf("Authenticate(new access token): got error %v, want nil", err)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.activeUser(t, "ada@example.com", "Ada", password)
	stolen := e.login(t, "ada@example.com", password)
	other := e.login(t, "ada@example.com", password)
	legit, err := e.svc.Refresh(ctx, stolen.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: got error %v, want nil", err)
	}

	_, err = e.svc.Refresh(ctx, stolen.RefreshToken)
	wantCode(t, "Refresh(rotated token)", err, keeper.CodeTokenReused)

	// The revocation was committed though Refresh failed, and reached the newest token.
	if tok := e.storedToken(t, keeper.PurposeRefresh, legit.RefreshToken); tok.RevokedAt.IsZero() {
		t.Error("newest token of the family: got unrevoked, want revoked")
	}
	_, err = e.svc.Refresh(ctx, legit.RefreshToken)
	wantCode(t, "Refresh(newest token)", err, keeper.CodeUnauthorized)
	_, err = e.svc.Refresh(ctx, stolen.RefreshToken)
	wantCode(t, "Refresh(rotated token) again", err, keeper.CodeTokenReused)

	// Another session of the same user lives on.
	if _, err := e.svc.Refresh(ctx, other.RefreshToken); err != nil {
		t.Errorf("Refresh(other session): got error %v, want nil", err)
	}
}

func TestRefreshRefusals(t *testing.T) {
	tests := []struct {
		name  string
		token func(t *testing.T, e *env, pair auth.TokenPair) string
		want  string // message of the unauthorized error
	}{
		{"garbage", func(*testing.T, *env, auth.TokenPair) string { return "nope" },
			"refresh token invalid"},
		{"unknown", func(t *testing.T, _ *env, _ auth.TokenPair) string {
			secret, _, err := auth.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}, "refresh token invalid"},
		{"activation token", func(t *testing.T, e *env, _ auth.TokenPair) string {
			e.register(t, "other@example.com", "Other", password)
			return e.activationToken(t, "other@example.com")
		}, "refresh token invalid"},
		{"expired", func(_ *testing.T, e *env, pair auth.TokenPair) string {
			e.clock.Add(auth.DefaultRefreshTTL)
			return pair.RefreshToken
		}, "refresh token expired"},
		{"logged out", func(t *testing.T, e *env, pair auth.TokenPair) string {
			if err := e.svc.Logout(context.Background(), pair.RefreshToken); err != nil {
				t.Fatal(err)
			}
			return pair.RefreshToken
		}, "refresh token revoked"},
		{"user disabled", func(t *testing.T, e *env, pair auth.TokenPair) string {
			// No API disables a user: a token is made for a disabled one by hand.
			u := e.disabledUser(t, "disabled@example.com", password)
			return refreshTokenFor(t, e, u.ID)
		}, "refresh token invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.activeUser(t, "ada@example.com", "Ada", password)
			pair := e.login(t, "ada@example.com", password)
			token := tt.token(t, e, pair)

			_, err := e.svc.Refresh(context.Background(), token)
			wantCode(t, "Refresh", err, keeper.CodeUnauthorized)
			var ke *keeper.Error
			if errors.As(err, &ke) && ke.Message != tt.want {
				t.Errorf("got message %q, want %q", ke.Message, tt.want)
			}
		})
	}
}

// refreshTokenFor stores a fresh refresh token for a user and returns its secret.
func refreshTokenFor(t *testing.T, e *env, userID int64) string {
	t.Helper()
	ctx := context.Background()
	secret, hash, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.Tx(ctx, func(tx keeper.AccountTx) error {
		_, err := tx.CreateToken(ctx, keeper.Token{UserID: userID, Purpose: keeper.PurposeRefresh,
			Hash: hash, Family: "by-hand", ExpiresAt: e.clock.Now().Add(time.Hour)})
		return err
	})
	if err != nil {
		t.Fatalf("create refresh token: got error %v, want none", err)
	}
	return secret
}

func TestRefreshConcurrent(t *testing.T) {
	e := newEnv(t)
	e.activeUser(t, "ada@example.com", "Ada", password)
	pair := e.login(t, "ada@example.com", password)

	const n = 10
	type result struct {
		pair auth.TokenPair
		err  error
	}
	results := make(chan result, n)
	var start sync.WaitGroup
	start.Add(1)
	for range n {
		go func() {
			start.Wait()
			p, err := e.svc.Refresh(context.Background(), pair.RefreshToken)
			results <- result{p, err}
		}()
	}
	start.Done()

	var winner auth.TokenPair
	wins, reused := 0, 0
	for range n {
		r := <-results
		switch {
		case r.err == nil:
			wins++
			winner = r.pair
		case keeper.HasCode(r.err, keeper.CodeTokenReused):
			reused++
		default:
			t.Errorf("Refresh: got error %v, want nil or refresh_token_reused", r.err)
		}
	}
	if wins != 1 || reused != n-1 {
		t.Fatalf("got %d successes and %d reuses, want 1 and %d", wins, reused, n-1)
	}

	// Reuse ended the session, the winner's new token included.
	_, err := e.svc.Refresh(context.Background(), winner.RefreshToken)
	wantCode(t, "Refresh(winner's token)", err, keeper.CodeUnauthorized)
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.activeUser(t, "ada@example.com", "Ada", password)
	pair := e.login(t, "ada@example.com", password)
	other := e.login(t, "ada@example.com", password)
	unknown, _, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}

	for _, token := range []string{pair.RefreshToken, pair.RefreshToken, "garbage", "", unknown} {
		if err := e.svc.Logout(ctx, token); err != nil {
			t.Errorf("Logout(%.8q): got error %v, want nil", token, err)
		}
	}

	_, err = e.svc.Refresh(ctx, pair.RefreshToken)
	wantCode(t, "Refresh after logout", err, keeper.CodeUnauthorized)
	if _, err := e.svc.Refresh(ctx, other.RefreshToken); err != nil {
		t.Errorf("Refresh(other session): got error %v, want nil", err)
	}
}

func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.activeUser(t, "ada@example.com", "Ada", password)
	session := e.login(t, "ada@example.com", password)

	if err := e.svc.ForgotPassword(ctx, " Ada@Example.com"); err != nil {
		t.Fatalf("ForgotPassword: got error %v, want nil", err)
	}
	earlier := e.resetToken(t, "ada@example.com")
	if err := e.svc.ForgotPassword(ctx, "ada@example.com"); err != nil {
		t.Fatalf("ForgotPassword: got error %v, want nil", err)
	}
	token := e.resetToken(t, "ada@example.com")
	tok := e.storedToken(t, keeper.PurposePasswordReset, token)
	if want := e.clock.Now().Add(auth.DefaultResetTTL); !tok.ExpiresAt.Equal(want) {
		t.Errorf("reset token expires %v, want %v", tok.ExpiresAt, want)
	}

	err := e.svc.ResetPassword(ctx, earlier, newPassword)
	wantCode(t, "ResetPassword(earlier link)", err, keeper.CodeTokenRevoked)
	err = e.svc.ResetPassword(ctx, token, "short")
	if got := fieldCodes(t, err); !slices.Equal(got, []string{"password:too_short"}) {
		t.Errorf("ResetPassword(short): got fields %v, want password:too_short", got)
	}
	if err := e.svc.ResetPassword(ctx, token, newPassword); err != nil {
		t.Fatalf("ResetPassword: got error %v, want nil", err)
	}

	err = e.svc.ResetPassword(ctx, token, "yet another password")
	wantCode(t, "ResetPassword again", err, keeper.CodeTokenUsed)
	_, err = e.svc.Login(ctx, "ada@example.com", password)
	wantCode(t, "Login(old password)", err, keeper.CodeInvalidCredentials)
	e.login(t, "ada@example.com", newPassword)
	_, err = e.svc.Refresh(ctx, session.RefreshToken)
	wantCode(t, "Refresh(session before reset)", err, keeper.CodeUnauthorized)

	if got := e.user(t, "ada@example.com"); got.ID != u.ID || got.Status != keeper.StatusActive {
		t.Errorf("got user %+v, want user %d, active", got, u.ID)
	}
}

func TestPasswordResetActivatesPending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register(t, "ada@example.com", "Ada", password)
	activation := e.activationToken(t, "ada@example.com")

	if err := e.svc.ForgotPassword(ctx, "ada@example.com"); err != nil {
		t.Fatalf("ForgotPassword: got error %v, want nil", err)
	}
	reset := e.resetToken(t, "ada@example.com")
	if err := e.svc.ResetPassword(ctx, reset, newPassword); err != nil {
		t.Fatalf("ResetPassword: got error %v, want nil", err)
	}

	e.login(t, "ada@example.com", newPassword)
	_, err := e.svc.Activate(ctx, activation)
	wantCode(t, "Activate(link from before the reset)", err, keeper.CodeTokenRevoked)
}

func TestPasswordResetRefusals(t *testing.T) {
	tests := []struct {
		name  string
		token func(t *testing.T, e *env) string
		want  keeper.Code
	}{
		{"garbage", func(*testing.T, *env) string { return "x" }, keeper.CodeTokenInvalid},
		{"activation token", func(t *testing.T, e *env) string {
			e.register(t, "other@example.com", "Other", password)
			return e.activationToken(t, "other@example.com")
		}, keeper.CodeTokenInvalid},
		{"expired", func(t *testing.T, e *env) string {
			if err := e.svc.ForgotPassword(context.Background(), "ada@example.com"); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(auth.DefaultResetTTL)
			return e.resetToken(t, "ada@example.com")
		}, keeper.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.activeUser(t, "ada@example.com", "Ada", password)
			err := e.svc.ResetPassword(context.Background(), tt.token(t, e), newPassword)
			wantCode(t, "ResetPassword", err, tt.want)
			e.login(t, "ada@example.com", password)
		})
	}
}

func TestForgotPasswordSendsNothing(t *testing.T) {
	e := newEnv(t)
	e.disabledUser(t, "disabled@example.com", password)

	for _, email := range []string{"nobody@example.com", "disabled@example.com", "bad", ""} {
		if err := e.svc.ForgotPassword(context.Background(), email); err != nil {
			t.Errorf("ForgotPassword(%q): got error %v, want nil", email, err)
		}
	}
	all, err := e.outbox.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 || e.notified.Load() != 0 {
		t.Errorf("got %d mails and %d notifications, want none", len(all), e.notified.Load())
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	active := e.activeUser(t, "ada@example.com", "Ada", password)
	e.register(t, "pending@example.com", "Pen", password)
	pending := e.user(t, "pending@example.com")
	disabled := e.disabledUser(t, "disabled@example.com", password)
	pair := e.login(t, "ada@example.com", password)

	issue := func(id int64) string {
		token, _, err := e.tokens.Issue(id)
		if err != nil {
			t.Fatalf("Issue(%d): got error %v, want none", id, err)
		}
		return token
	}
	tampered := []byte(pair.AccessToken)
	tampered[len(tampered)-2] ^= 1

	tests := []struct {
		name  string
		token string
		want  keeper.Code
	}{
		{"active user", pair.AccessToken, ""},
		{"tampered signature", string(tampered), keeper.CodeUnauthorized},
		{"garbage", "not.a.token", keeper.CodeUnauthorized},
		{"empty", "", keeper.CodeUnauthorized},
		{"pending user", issue(pending.ID), keeper.CodeUnauthorized},
		{"disabled user", issue(disabled.ID), keeper.CodeUnauthorized},
		{"unknown user", issue(disabled.ID + 1000), keeper.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second call may be served from the cache.
			for range 2 {
				u, err := e.svc.Authenticate(ctx, tt.token)
				wantCode(t, "Authenticate", err, tt.want)
				if tt.want == "" && (u.ID != active.ID || u.PasswordHash != "") {
					t.Errorf("got user %+v, want user %d without hash", u, active.ID)
				}
			}
		})
	}

	e.clock.Add(accessTTL + auth.Leeway)
	_, err := e.svc.Authenticate(ctx, pair.AccessToken)
	wantCode(t, "Authenticate(expired)", err, keeper.CodeUnauthorized)
}

func TestProfile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	active := e.activeUser(t, "ada@example.com", "Ada", password)
	e.register(t, "pending@example.com", "Pen", password)
	pending := e.user(t, "pending@example.com")
	disabled := e.disabledUser(t, "disabled@example.com", password)

	tests := []struct {
		name string
		id   int64
		want keeper.Code
	}{
		{"active", active.ID, ""},
		{"pending", pending.ID, keeper.CodeUserNotFound},
		{"disabled", disabled.ID, keeper.CodeUserNotFound},
		{"unknown", disabled.ID + 1000, keeper.CodeUserNotFound},
		{"zero", 0, keeper.CodeUserNotFound},
		{"negative", -1, keeper.CodeUserNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 {
				u, err := e.svc.Profile(ctx, tt.id)
				wantCode(t, "Profile", err, tt.want)
				if tt.want != "" {
					var ke *keeper.Error
					if errors.As(err, &ke) && ke.Message != "user not found" {
						t.Errorf("got message %q, want the same for every miss", ke.Message)
					}
					continue
				}
				if u.ID != active.ID || u.Name != "Ada" || u.PasswordHash != "" {
					t.Errorf("got %+v, want Ada without password hash", u)
				}
			}
		})
	}

	// A miss is not cached: the pending user shows at once after activation.
	if _, err := e.svc.Activate(ctx, e.activationToken(t, "pending@example.com")); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Profile(ctx, pending.ID)
	if err != nil || u.Status != keeper.StatusActive {
		t.Errorf("Profile after activation: got %+v, %v, want the active user", u, err)
	}
}

func TestProfileStaysExact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.activeUser(t, "ada@example.com", "Ada", password)
	before, err := e.svc.Profile(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}

	e.clock.Add(time.Hour)
	if err := e.svc.ForgotPassword(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	reset := e.resetToken(t, "ada@example.com")
	if err := e.svc.ResetPassword(ctx, reset, newPassword); err != nil {
		t.Fatal(err)
	}

	after, err := e.svc.Profile(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := publicView(e.user(t, "ada@example.com")); after != want || after == before {
		t.Errorf("Profile after reset: got %+v, want the stored user %+v", after, want)
	}
}

func publicView(u keeper.User) keeper.User {
	u.PasswordHash = ""
	return u
}

func TestProfileSmallCache(t *testing.T) {
	e := newEnvWith(t, fastParams, auth.Config{ProfileCacheSize: 2})
	ctx := context.Background()
	var users []keeper.User
	for i := range 5 {
		users = append(users, e.activeUser(t, fmt.Sprintf("u%d@example.com", i), "U", password))
	}

	for round := range 3 {
		for _, want := range users {
			got, err := e.svc.Profile(ctx, want.ID)
			if err != nil || got.ID != want.ID || got.Email != want.Email {
				t.Errorf("round %d: Profile(%d): got %+v, %v, want %s",
					round, want.ID, got, err, want.Email)
			}
		}
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.activeUser(t, "ada.lovelace@example.com", "Ada", password)
	activation := e.activationToken(t, "ada.lovelace@example.com")
	pair := e.login(t, "ada.lovelace@example.com", password)
	_, _ = e.svc.Login(ctx, "ada.lovelace@example.com", "wrong password")
	if _, err := e.svc.Refresh(ctx, pair.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, _ = e.svc.Refresh(ctx, pair.RefreshToken)
	if err := e.svc.ForgotPassword(ctx, "ada.lovelace@example.com"); err != nil {
		t.Fatal(err)
	}
	reset := e.resetToken(t, "ada.lovelace@example.com")
	if err := e.svc.ResetPassword(ctx, reset, newPassword); err != nil {
		t.Fatal(err)
	}

	logs := e.logs.String()
	if !strings.Contains(logs, "a***@example.com") {
		t.Errorf("logs: got %q, want masked addresses", logs)
	}
	secrets := []string{"ada.lovelace", password, "wrong password", newPassword, activation,
		reset, pair.RefreshToken, pair.AccessToken}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs: got %q in %q, want it left out", s, logs)
		}
	}
}

func TestNewServicePanicsWithoutParts(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewService(nil store): got no panic, want one")
		}
	}()
	auth.NewService(nil, nil, nil, nil, nil, nil, auth.Config{})
}

func BenchmarkProfile(b *testing.B) {
	e := newEnv(b)
	u := e.activeUser(b, "ada@example.com", "Ada", password)
	ctx := context.Background()
	if _, err := e.svc.Profile(ctx, u.ID); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Profile(ctx, u.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkLogin(b *testing.B) {
	for _, bc := range []struct {
		name   string
		params auth.Params
	}{
		{"default-params", auth.DefaultParams()},
		{"fast-params", fastParams},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnvWith(b, bc.params, auth.Config{})
			e.activeUser(b, "ada@example.com", "Ada", password)
			ctx := context.Background()

			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Login(ctx, "ada@example.com", password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	e.activeUser(b, "ada@example.com", "Ada", password)
	pair := e.login(b, "ada@example.com", password)
	ctx := context.Background()

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Authenticate(ctx, pair.AccessToken); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
