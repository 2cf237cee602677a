package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keeperhq/keeper"
)

const (
	userColumns = `id, email, name, password_hash, status, created_at, updated_at, activated_at`

	userByID = `SELECT ` + userColumns + ` FROM users WHERE id = ?`

	userByEmail = `SELECT ` + userColumns + ` FROM users WHERE email_normalized = ?`

	userInsert = `INSERT INTO users (email, email_normalized, name, password_hash, status,
		created_at, updated_at, activated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`

	userActivate = `UPDATE users SET status = ?, activated_at = ?, updated_at = ?
		WHERE id = ? AND status = ?`

	userExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`

	userSetPassword = `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`

	tokenColumns = `id, user_id, purpose, hash, family, expires_at, used_at, revoked_at,
		created_at`

	tokenInsert = `INSERT INTO tokens (user_id, purpose, hash, family, expires_at, used_at,
		revoked_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`

	tokenByHash = `SELECT ` + tokenColumns + ` FROM tokens WHERE purpose = ? AND hash = ?`

	// tokenUse is conditional, so that of two concurrent uses exactly one changes a row.
	tokenUse = `UPDATE tokens SET used_at = ?
		WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`

	tokenState = `SELECT used_at IS NOT NULL, revoked_at IS NOT NULL FROM tokens WHERE id = ?`

	tokenRevokeUser = `UPDATE tokens SET revoked_at = ?
		WHERE user_id = ? AND purpose = ? AND used_at IS NULL AND revoked_at IS NULL`

	tokenRevokeFamily = `UPDATE tokens SET revoked_at = ?
		WHERE family = ? AND purpose = ? AND revoked_at IS NULL`
)

// AccountStore is the SQLite implementation of keeper.AccountStore: users, their tokens
// and, through AccountTx.Enqueue, the mail outbox.
type AccountStore struct {
	db *DB
}

var _ keeper.AccountStore = (*AccountStore)(nil)

// NewAccountStore returns an account store on db.
func NewAccountStore(db *DB) *AccountStore {
	return &AccountStore{db: db}
}

// Tx runs fn in one write transaction and commits it when fn returns nil. When fn returns
// an error, nothing it did is kept and that very error is returned. Writes queue on the one
// writer connection, so fn must use only tx for writes: starting another write from fn
// (another Tx, a KVStore write, an Outbox call) would wait for fn itself.
func (s *AccountStore) Tx(ctx context.Context, fn func(tx keeper.AccountTx) error) error {
	var fnErr error
	err := s.db.write(ctx, func(tx *sql.Tx) error {
		fnErr = fn(&AccountTx{tx: tx})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrap("account tx", err)
}

// UserByID returns the committed user with that id, or user_not_found.
func (s *AccountStore) UserByID(ctx context.Context, id int64) (keeper.User, error) {
	return findUser(ctx, s.db.reader, userByID, id)
}

// UserByEmail returns the committed user whose normalized email equals
// keeper.NormalizeEmail(email), or user_not_found.
func (s *AccountStore) UserByEmail(ctx context.Context, email string) (keeper.User, error) {
	return findUser(ctx, s.db.reader, userByEmail, keeper.NormalizeEmail(email))
}

// AccountTx is the SQLite implementation of keeper.AccountTx, valid only while the
// function given to AccountStore.Tx runs.
type AccountTx struct {
	tx *sql.Tx
}

var _ keeper.AccountTx = (*AccountTx)(nil)

// CreateUser stores a new user and returns it as stored: with its id, status pending when
// none is given, CreatedAt now when zero, UpdatedAt CreatedAt when zero, and every time
// in UTC at microsecond precision. It returns email_taken when the normalized email is
// already registered.
func (t *AccountTx) CreateUser(ctx context.Context, u keeper.User) (keeper.User, error) {
	u = userDefaults(u)
	err := t.tx.QueryRowContext(ctx, userInsert,
		u.Email, keeper.NormalizeEmail(u.Email), u.Name, u.PasswordHash, string(u.Status),
		micros(u.CreatedAt), micros(u.UpdatedAt), nullMicros(u.ActivatedAt),
	).Scan(&u.ID)
	if isUniqueViolation(err) {
		return keeper.User{}, keeper.Errorf(keeper.CodeEmailTaken, "email already registered")
	}
	if err != nil {
		return keeper.User{}, wrap("create user", err)
	}
	return u, nil
}

// UserByID returns the user with that id as this transaction sees it, or user_not_found.
func (t *AccountTx) UserByID(ctx context.Context, id int64) (keeper.User, error) {
	return findUser(ctx, t.tx, userByID, id)
}

// UserByEmail returns the user with that normalized email as this transaction sees it,
// or user_not_found.
func (t *AccountTx) UserByEmail(ctx context.Context, email string) (keeper.User, error) {
	return findUser(ctx, t.tx, userByEmail, keeper.NormalizeEmail(email))
}

// ActivateUser moves a pending user to active at the given time: user_not_found when
// there is no such user. An active user stays as it is, and so does a disabled one:
// activation never re-enables an account.
func (t *AccountTx) ActivateUser(ctx context.Context, id int64, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, userActivate,
		string(keeper.StatusActive), micros(at), micros(at), id, string(keeper.StatusPending))
	if err != nil {
		return wrap("activate user", err)
	}
	n, err := rowsAffected(res)
	if err != nil || n > 0 {
		return wrap("activate user", err)
	}
	return wrap("activate user", t.mustExist(ctx, id))
}

// SetPassword replaces a user's password hash: user_not_found when absent.
func (t *AccountTx) SetPassword(ctx context.Context, id int64, hash string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, userSetPassword, hash, micros(at), id)
	if err != nil {
		return wrap("set password", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return wrap("set password", err)
	}
	if n == 0 {
		return userNotFound(id)
	}
	return nil
}

// CreateToken stores a token and returns it as stored, with its id: user_not_found when
// its user does not exist. CreatedAt is now when zero.
func (t *AccountTx) CreateToken(ctx context.Context, tok keeper.Token) (keeper.Token, error) {
	tok = tokenDefaults(tok)
	err := t.tx.QueryRowContext(ctx, tokenInsert,
		tok.UserID, string(tok.Purpose), tok.Hash, nullString(tok.Family),
		micros(tok.ExpiresAt), nullMicros(tok.UsedAt), nullMicros(tok.RevokedAt),
		micros(tok.CreatedAt),
	).Scan(&tok.ID)
	if isForeignKeyViolation(err) {
		return keeper.Token{}, userNotFound(tok.UserID)
	}
	if err != nil {
		return keeper.Token{}, wrap("create token", err)
	}
	return tok, nil
}

// TokenByHash returns the token of that purpose and hash, or token_invalid.
func (t *AccountTx) TokenByHash(
	ctx context.Context, purpose keeper.TokenPurpose, hash []byte,
) (keeper.Token, error) {
	tok, err := scanToken(t.tx.QueryRowContext(ctx, tokenByHash, string(purpose), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return keeper.Token{}, keeper.Errorf(keeper.CodeTokenInvalid, "unknown token")
	}
	if err != nil {
		return keeper.Token{}, wrap("token by hash", err)
	}
	return tok, nil
}

// UseToken marks an unused, unrevoked token used: token_revoked when it was revoked
// (whether used or not), token_used when it was already used, token_invalid when there is
// no such token. It does not look at the expiry, which the caller checks.
func (t *AccountTx) UseToken(ctx context.Context, id int64, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, tokenUse, micros(at), id)
	if err != nil {
		return wrap("use token", err)
	}
	n, err := rowsAffected(res)
	if err != nil || n > 0 {
		return wrap("use token", err)
	}
	return wrap("use token", t.whyUnusable(ctx, id))
}

// RevokeUserTokens revokes every unused, unrevoked token of the user with that purpose.
func (t *AccountTx) RevokeUserTokens(
	ctx context.Context, userID int64, purpose keeper.TokenPurpose, at time.Time,
) error {
	_, err := t.tx.ExecContext(ctx, tokenRevokeUser, micros(at), userID, string(purpose))
	return wrap("revoke user tokens", err)
}

// RevokeFamily revokes every unrevoked refresh token of a rotation family, used or not.
func (t *AccountTx) RevokeFamily(ctx context.Context, family string, at time.Time) error {
	_, err := t.tx.ExecContext(ctx, tokenRevokeFamily,
		micros(at), family, string(keeper.PurposeRefresh))
	return wrap("revoke token family", err)
}

// Enqueue adds a message to the outbox, due at the given time, in this transaction: the
// message is sent only if everything else the transaction did is kept. Its CreatedAt is
// the time of the call.
func (t *AccountTx) Enqueue(ctx context.Context, m keeper.Message, at time.Time) error {
	return wrap("enqueue mail", enqueue(ctx, t.tx, m, at))
}

// mustExist returns user_not_found unless the user exists.
func (t *AccountTx) mustExist(ctx context.Context, id int64) error {
	var exists bool
	if err := t.tx.QueryRowContext(ctx, userExists, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return userNotFound(id)
	}
	return nil
}

// whyUnusable explains why tokenUse changed no row.
func (t *AccountTx) whyUnusable(ctx context.Context, id int64) error {
	var used, revoked bool
	err := t.tx.QueryRowContext(ctx, tokenState, id).Scan(&used, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return keeper.Errorf(keeper.CodeTokenInvalid, "unknown token")
	case err != nil:
		return err
	case revoked:
		return keeper.Errorf(keeper.CodeTokenRevoked, "token has been revoked")
	case used:
		return keeper.Errorf(keeper.CodeTokenUsed, "token has already been used")
	}
	return fmt.Errorf("token %d is usable but was not marked used", id)
}

// findUser runs a query for one user and returns user_not_found when there is none.
func findUser(ctx context.Context, q querier, query string, arg any) (keeper.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return keeper.User{}, keeper.Errorf(keeper.CodeUserNotFound, "user not found")
	}
	if err != nil {
		return keeper.User{}, wrap("find user", err)
	}
	return u, nil
}

// scanUser reads one row of userColumns.
func scanUser(row scanner) (keeper.User, error) {
	var u keeper.User
	var status string
	var created, updated int64
	var activated sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &status,
		&created, &updated, &activated)
	if err != nil {
		return keeper.User{}, err
	}

	u.Status = keeper.UserStatus(status)
	u.CreatedAt = fromMicros(created)
	u.UpdatedAt = fromMicros(updated)
	u.ActivatedAt = fromNullMicros(activated)
	return u, nil
}

// scanToken reads one row of tokenColumns.
func scanToken(row scanner) (keeper.Token, error) {
	var tok keeper.Token
	var purpose string
	var family sql.NullString
	var expires, created int64
	var used, revoked sql.NullInt64
	err := row.Scan(&tok.ID, &tok.UserID, &purpose, &tok.Hash, &family,
		&expires, &used, &revoked, &created)
	if err != nil {
		return keeper.Token{}, err
	}

	tok.Purpose = keeper.TokenPurpose(purpose)
	tok.Family = family.String
	tok.ExpiresAt = fromMicros(expires)
	tok.UsedAt = fromNullMicros(used)
	tok.RevokedAt = fromNullMicros(revoked)
	tok.CreatedAt = fromMicros(created)
	return tok, nil
}

// userDefaults fills what CreateUser may leave out and rounds times to what is stored.
func userDefaults(u keeper.User) keeper.User {
	if u.Status == "" {
		u.Status = keeper.StatusPending
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt = truncate(u.CreatedAt)
	u.UpdatedAt = truncate(u.UpdatedAt)
	u.ActivatedAt = truncate(u.ActivatedAt)
	return u
}

// tokenDefaults fills what CreateToken may leave out and rounds times to what is stored.
func tokenDefaults(tok keeper.Token) keeper.Token {
	if tok.CreatedAt.IsZero() {
		tok.CreatedAt = time.Now()
	}
	tok.CreatedAt = truncate(tok.CreatedAt)
	tok.ExpiresAt = truncate(tok.ExpiresAt)
	tok.UsedAt = truncate(tok.UsedAt)
	tok.RevokedAt = truncate(tok.RevokedAt)
	return tok
}

// nullString stores the empty string as NULL.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

func userNotFound(id int64) error {
	return keeper.Errorf(keeper.CodeUserNotFound, "user %d not found", id)
}
