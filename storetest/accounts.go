package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
)

// Accounts runs the user and token cases. open returns a store on a fresh, empty database.
func Accounts(t *testing.T, open func(t *testing.T) keeper.AccountStore) {
	t.Run("CreateUser", func(t *testing.T) { accCreateUser(t, open(t)) })
	t.Run("EmailUnique", func(t *testing.T) { accEmailUnique(t, open(t)) })
	t.Run("UserNotFound", func(t *testing.T) { accUserNotFound(t, open(t)) })
	t.Run("TxRollback", func(t *testing.T) { accTxRollback(t, open(t)) })
	t.Run("TxIsolation", func(t *testing.T) { accTxIsolation(t, open(t)) })
	t.Run("TxCanceled", func(t *testing.T) { accTxCanceled(t, open(t)) })
	t.Run("ActivateUser", func(t *testing.T) { accActivate(t, open(t)) })
	t.Run("SetPassword", func(t *testing.T) { accSetPassword(t, open(t)) })
	t.Run("Tokens", func(t *testing.T) { accTokens(t, open(t)) })
	t.Run("UseToken", func(t *testing.T) { accUseToken(t, open(t)) })
	t.Run("UseTokenConcurrent", func(t *testing.T) { accUseTokenConcurrent(t, open(t)) })
	t.Run("RevokeUserTokens", func(t *testing.T) { accRevokeUserTokens(t, open(t)) })
	t.Run("RevokeFamily", func(t *testing.T) { accRevokeFamily(t, open(t)) })
}

func accCreateUser(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	in := newUser("Ann@Example.com")
	in.Name = "Ann Ödegaard"
	created := mustCreateUser(t, s, in)

	if created.ID <= 0 {
		t.Fatalf("got id %d, want a positive id", created.ID)
	}
	byID, err := s.UserByID(ctx, created.ID)
	noError(t, err, "user by id")
	byEmail, err := s.UserByEmail(ctx, "ann@example.com")
	noError(t, err, "user by email")

	in.ID = created.ID
	cases := []struct {
		name string
		got  keeper.User
	}{{"returned", created}, {"by id", byID}, {"by email", byEmail}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantUser(t, c.got, in) })
	}
}

func accEmailUnique(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	first := mustCreateUser(t, s, newUser("Ann.Smith@Example.com"))

	cases := []struct {
		name, email string
		want        keeper.Code // "" for success
	}{
		{"same", "Ann.Smith@Example.com", keeper.CodeEmailTaken},
		{"lower case", "ann.smith@example.com", keeper.CodeEmailTaken},
		{"upper case and spaces", "  ANN.SMITH@EXAMPLE.COM\t", keeper.CodeEmailTaken},
		{"another address", "ann.smith2@example.com", ""},
		// Unicode case mapping would fold the Kelvin sign to k, so this one would
		// claim kelly@example.com; ASCII folding keeps it a different address.
		{"kelvin sign", "\u212aelly@example.com", ""},
		{"the ascii look-alike", "kelly@example.com", ""},
		{"non-ascii stays case-sensitive", "\u00dcrs@example.com", ""},
		{"non-ascii lower case", "\u00fcrs@example.com", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Tx(ctx, func(tx keeper.AccountTx) error {
				_, err := tx.CreateUser(ctx, newUser(c.email))
				return err
			})
			if c.want == "" {
				noError(t, err, "create user")
				return
			}
			wantCode(t, err, c.want)
		})
	}

	got, err := s.UserByEmail(ctx, " ann.SMITH@example.COM ")
	noError(t, err, "user by email")
	if got.ID != first.ID || got.Email != "Ann.Smith@Example.com" {
		t.Errorf("got user %d <%s>, want %d <%s>", got.ID, got.Email, first.ID, first.Email)
	}
}

func accUserNotFound(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser("someone@example.com"))

	_, err := s.UserByID(ctx, 987654)
	wantCode(t, err, keeper.CodeUserNotFound)
	_, err = s.UserByEmail(ctx, "nobody@example.com")
	wantCode(t, err, keeper.CodeUserNotFound)

	err = s.Tx(ctx, func(tx keeper.AccountTx) error {
		_, err := tx.UserByID(ctx, 987654)
		wantCode(t, err, keeper.CodeUserNotFound)
		_, err = tx.UserByEmail(ctx, "nobody@example.com")
		wantCode(t, err, keeper.CodeUserNotFound)
		return nil
	})
	noError(t, err, "tx")
}

// accTxRollback checks that an error from fn undoes fn's writes and comes back as it is.
func accTxRollback(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	domainErr := keeper.Errorf(keeper.CodeForbidden, "not now")
	for _, want := range []error{errPlanned, domainErr} {
		t.Run(want.Error(), func(t *testing.T) {
			err := s.Tx(ctx, func(tx keeper.AccountTx) error {
				if _, err := tx.CreateUser(ctx, newUser("rolled@example.com")); err != nil {
					return err
				}
				return want
			})
			if !errors.Is(err, want) {
				t.Fatalf("got error %v, want %v", err, want)
			}
			_, err = s.UserByEmail(ctx, "rolled@example.com")
			wantCode(t, err, keeper.CodeUserNotFound)
		})
	}
}

// accTxIsolation checks that reads outside a transaction see committed data only.
func accTxIsolation(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	err := s.Tx(ctx, func(tx keeper.AccountTx) error {
		u, err := tx.CreateUser(ctx, newUser("inside@example.com"))
		if err != nil {
			return err
		}
		if _, err := tx.UserByID(ctx, u.ID); err != nil {
			t.Errorf("inside: got error %v, want the new user", err)
		}
		_, err = s.UserByEmail(ctx, "inside@example.com")
		if !keeper.HasCode(err, keeper.CodeUserNotFound) {
			t.Errorf("outside before commit: got error %v, want user_not_found", err)
		}
		return nil
	})
	noError(t, err, "tx")

	_, err = s.UserByEmail(ctx, "inside@example.com")
	noError(t, err, "user by email after commit")
}

func accTxCanceled(t *testing.T, s keeper.AccountStore) {
	ctx := canceled()
	err := s.Tx(ctx, func(tx keeper.AccountTx) error {
		_, err := tx.CreateUser(ctx, newUser("canceled@example.com"))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("tx: got error %v, want context.Canceled", err)
	}
	_, err = s.UserByEmail(ctx, "canceled@example.com")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("user by email: got error %v, want context.Canceled", err)
	}

	_, err = s.UserByEmail(context.Background(), "canceled@example.com")
	wantCode(t, err, keeper.CodeUserNotFound)
}

func accActivate(t *testing.T, s keeper.AccountStore) {
	pending := mustCreateUser(t, s, newUser("pending@example.com"))
	disabledIn := newUser("disabled@example.com")
	disabledIn.Status = keeper.StatusDisabled
	disabled := mustCreateUser(t, s, disabledIn)
	first, second := base.Add(time.Hour), base.Add(2*time.Hour)

	cases := []struct {
		name       string
		id         int64
		at         time.Time
		wantErr    keeper.Code
		wantStatus keeper.UserStatus
		wantAt     time.Time
	}{
		{"pending", pending.ID, first, "", keeper.StatusActive, first},
		{"already active", pending.ID, second, "", keeper.StatusActive, first},
		{"disabled", disabled.ID, first, "", keeper.StatusDisabled, time.Time{}},
		{"missing", 987654, first, keeper.CodeUserNotFound, "", time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := inTx(s, func(tx keeper.AccountTx) error {
				return tx.ActivateUser(context.Background(), c.id, c.at)
			})
			if c.wantErr != "" {
				wantCode(t, err, c.wantErr)
				return
			}
			noError(t, err, "activate")

			got, err := s.UserByID(context.Background(), c.id)
			noError(t, err, "user by id")
			if got.Status != c.wantStatus {
				t.Errorf("got status %s, want %s", got.Status, c.wantStatus)
			}
			wantTime(t, "activated at", got.ActivatedAt, c.wantAt)
		})
	}
}

func accSetPassword(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	u := mustCreateUser(t, s, newUser("pw@example.com"))
	at := base.Add(time.Minute)

	err := inTx(s, func(tx keeper.AccountTx) error { return tx.SetPassword(ctx, u.ID, "new", at) })
	noError(t, err, "set password")
	got, err := s.UserByID(ctx, u.ID)
	noError(t, err, "user by id")
	if got.PasswordHash != "new" {
		t.Errorf("got hash %q, want %q", got.PasswordHash, "new")
	}
	wantTime(t, "updated at", got.UpdatedAt, at)

	err = inTx(s, func(tx keeper.AccountTx) error { return tx.SetPassword(ctx, 987654, "x", at) })
	wantCode(t, err, keeper.CodeUserNotFound)
}

func accTokens(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	u := mustCreateUser(t, s, newUser("tokens@example.com"))
	activation := mustCreateToken(t, s, newToken(u.ID, keeper.PurposeActivation, "a", ""))
	refresh := mustCreateToken(t, s, newToken(u.ID, keeper.PurposeRefresh, "r", "family-1"))

	cases := []struct {
		name    string
		purpose keeper.TokenPurpose
		secret  string
		want    *keeper.Token
	}{
		{"activation", keeper.PurposeActivation, "a", &activation},
		{"refresh with family", keeper.PurposeRefresh, "r", &refresh},
		{"wrong purpose", keeper.PurposePasswordReset, "a", nil},
		{"unknown hash", keeper.PurposeActivation, "nope", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tokenByHash(s, c.purpose, c.secret)
			if c.want == nil {
				wantCode(t, err, keeper.CodeTokenInvalid)
				return
			}
			noError(t, err, "token by hash")
			wantToken(t, got, *c.want)
		})
	}

	t.Run("missing user", func(t *testing.T) {
		err := inTx(s, func(tx keeper.AccountTx) error {
			_, err := tx.CreateToken(ctx, newToken(987654, keeper.PurposeActivation, "m", ""))
			return err
		})
		wantCode(t, err, keeper.CodeUserNotFound)
	})
}

func accUseToken(t *testing.T, s keeper.AccountStore) {
	ctx := context.Background()
	u := mustCreateUser(t, s, newUser("use@example.com"))
	at := base.Add(time.Minute)

	cases := []struct {
		name  string
		setUp func(tx keeper.AccountTx, tok keeper.Token) error
		want  keeper.Code // "" for success
	}{
		{"fresh", nil, ""},
		{"used", func(tx keeper.AccountTx, tok keeper.Token) error {
			return tx.UseToken(ctx, tok.ID, base)
		}, keeper.CodeTokenUsed},
		{"revoked", func(tx keeper.AccountTx, tok keeper.Token) error {
			return tx.RevokeUserTokens(ctx, u.ID, tok.Purpose, base)
		}, keeper.CodeTokenRevoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := mustCreateToken(t, s, newToken(u.ID, keeper.PurposeActivation, c.name, ""))
			if c.setUp != nil {
				noError(t, inTx(s, func(tx keeper.AccountTx) error { return c.setUp(tx, tok) }),
					"set up")
			}
			before, err := tokenByHash(s, tok.Purpose, c.name)
			noError(t, err, "token before")

			err = inTx(s, func(tx keeper.AccountTx) error { return tx.UseToken(ctx, tok.ID, at) })
			got, lookupErr := tokenByHash(s, tok.Purpose, c.name)
			noError(t, lookupErr, "token after")
			if c.want != "" {
				wantCode(t, err, c.want)
				wantToken(t, got, before)
				return
			}
			noError(t, err, "use token")
			wantTime(t, "used at", got.UsedAt, at)
		})
	}

	t.Run("missing", func(t *testing.T) {
		err := inTx(s, func(tx keeper.AccountTx) error { return tx.UseToken(ctx, 987654, at) })
		wantCode(t, err, keeper.CodeTokenInvalid)
	})
}

// accUseTokenConcurrent uses one token from 50 transactions at once: exactly one wins.
func accUseTokenConcurrent(t *testing.T, s keeper.AccountStore) {
	const callers = 50
	u := mustCreateUser(t, s, newUser("race@example.com"))
	tok := mustCreateToken(t, s, newToken(u.ID, keeper.PurposeActivation, "race", ""))

	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			errs[i] = inTx(s, func(tx keeper.AccountTx) error {
				return tx.UseToken(context.Background(), tok.ID, base.Add(time.Duration(i)))
			})
		})
	}
	wg.Wait()

	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !keeper.HasCode(err, keeper.CodeTokenUsed):
			t.Errorf("caller %d: got error %v, want none or token_used", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("got %d successful uses, want exactly 1", wins)
	}
}

func accRevokeUserTokens(t *testing.T, s keeper.AccountStore) {
	u := mustCreateUser(t, s, newUser("revoke@example.com"))
	other := mustCreateUser(t, s, newUser("other@example.com"))
	used := newToken(u.ID, keeper.PurposeActivation, "used", "")
	used.UsedAt = base
	mustCreateToken(t, s, used)
	for _, tok := range []keeper.Token{
		newToken(u.ID, keeper.PurposeActivation, "unused-1", ""),
		newToken(u.ID, keeper.PurposeActivation, "unused-2", ""),
		newToken(u.ID, keeper.PurposePasswordReset, "reset", ""),
		newToken(other.ID, keeper.PurposeActivation, "other", ""),
	} {
		mustCreateToken(t, s, tok)
	}

	at := base.Add(time.Hour)
	err := inTx(s, func(tx keeper.AccountTx) error {
		return tx.RevokeUserTokens(context.Background(), u.ID, keeper.PurposeActivation, at)
	})
	noError(t, err, "revoke")

	wantRevoked(t, s, []revokedCase{
		{"unused-1", keeper.PurposeActivation, at},
		{"unused-2", keeper.PurposeActivation, at},
		{"used", keeper.PurposeActivation, time.Time{}},
		{"reset", keeper.PurposePasswordReset, time.Time{}},
		{"other", keeper.PurposeActivation, time.Time{}},
	})
}

func accRevokeFamily(t *testing.T, s keeper.AccountStore) {
	u := mustCreateUser(t, s, newUser("family@example.com"))
	earlier, at := base.Add(time.Minute), base.Add(time.Hour)
	used := newToken(u.ID, keeper.PurposeRefresh, "f-used", "F")
	used.UsedAt = base
	revoked := newToken(u.ID, keeper.PurposeRefresh, "f-revoked", "F")
	revoked.RevokedAt = earlier
	for _, tok := range []keeper.Token{
		used, revoked,
		newToken(u.ID, keeper.PurposeRefresh, "f-1", "F"),
		newToken(u.ID, keeper.PurposeRefresh, "f-2", "F"),
		newToken(u.ID, keeper.PurposeRefresh, "g-1", "G"),
	} {
		mustCreateToken(t, s, tok)
	}

	err := inTx(s, func(tx keeper.AccountTx) error {
		return tx.RevokeFamily(context.Background(), "F", at)
	})
	noError(t, err, "revoke family")

	wantRevoked(t, s, []revokedCase{
		{"f-used", keeper.PurposeRefresh, at},
		{"f-revoked", keeper.PurposeRefresh, earlier},
		{"f-1", keeper.PurposeRefresh, at},
		{"f-2", keeper.PurposeRefresh, at},
		{"g-1", keeper.PurposeRefresh, time.Time{}},
	})
}

// revokedCase names a token by its secret and the RevokedAt it should have.
type revokedCase struct {
	secret  string
	purpose keeper.TokenPurpose
	want    time.Time
}

func wantRevoked(t *testing.T, s keeper.AccountStore, cases []revokedCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.secret, func(t *testing.T) {
			got, err := tokenByHash(s, c.purpose, c.secret)
			noError(t, err, "token by hash")
			wantTime(t, "revoked at", got.RevokedAt, c.want)
		})
	}
}

// newUser returns a pending user created at base.
func newUser(email string) keeper.User {
	return keeper.User{
		Email:        email,
		Name:         "Test User",
		PasswordHash: "hash of a password for " + email,
		Status:       keeper.StatusPending,
		CreatedAt:    base,
		UpdatedAt:    base,
	}
}

// newToken returns an unused token whose hash is that of secret.
func newToken(userID int64, purpose keeper.TokenPurpose, secret, family string) keeper.Token {
	hash := sha256.Sum256([]byte(secret))
	return keeper.Token{
		UserID:    userID,
		Purpose:   purpose,
		Hash:      hash[:],
		Family:    family,
		ExpiresAt: base.Add(24 * time.Hour),
		CreatedAt: base,
	}
}

// inTx runs fn in a transaction of s.
func inTx(s keeper.AccountStore, fn func(tx keeper.AccountTx) error) error {
	return s.Tx(context.Background(), fn)
}

func mustCreateUser(t *testing.T, s keeper.AccountStore, in keeper.User) keeper.User {
	t.Helper()
	var u keeper.User
	err := inTx(s, func(tx keeper.AccountTx) error {
		var err error
		u, err = tx.CreateUser(context.Background(), in)
		return err
	})
	noError(t, err, "create user "+in.Email)
	return u
}

func mustCreateToken(t *testing.T, s keeper.AccountStore, in keeper.Token) keeper.Token {
	t.Helper()
	var tok keeper.Token
	err := inTx(s, func(tx keeper.AccountTx) error {
		var err error
		tok, err = tx.CreateToken(context.Background(), in)
		return err
	})
	noError(t, err, "create token")
	if tok.ID <= 0 {
		t.Fatalf("got token id %d, want a positive id", tok.ID)
	}
	return tok
}

// tokenByHash looks a token up by the secret it was made from.
func tokenByHash(
	s keeper.AccountStore, purpose keeper.TokenPurpose, secret string,
) (keeper.Token, error) {
	hash := sha256.Sum256([]byte(secret))
	var tok keeper.Token
	err := inTx(s, func(tx keeper.AccountTx) error {
		var err error
		tok, err = tx.TokenByHash(context.Background(), purpose, hash[:])
		return err
	})
	return tok, err
}

func wantUser(t *testing.T, got, want keeper.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name ||
		got.PasswordHash != want.PasswordHash || got.Status != want.Status {
		t.Errorf("got %+v, want %+v", got, want)
	}
	wantTime(t, "created at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "updated at", got.UpdatedAt, want.UpdatedAt)
	wantTime(t, "activated at", got.ActivatedAt, want.ActivatedAt)
}

func wantToken(t *testing.T, got, want keeper.Token) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Purpose != want.Purpose ||
		string(got.Hash) != string(want.Hash) || got.Family != want.Family {
		t.Errorf("got %+v, want %+v", got, want)
	}
	wantTime(t, "expires at", got.ExpiresAt, want.ExpiresAt)
	wantTime(t, "used at", got.UsedAt, want.UsedAt)
	wantTime(t, "revoked at", got.RevokedAt, want.RevokedAt)
	wantTime(t, "created at", got.CreatedAt, want.CreatedAt)
}
