package keeper

import (
	"context"
	"strings"
	"time"
)

// UserStatus is the life-cycle state of an account.
type UserStatus string

// Account states. A user starts pending and becomes active through the activation link.
const (
	StatusPending  UserStatus = "pending"
	StatusActive   UserStatus = "active"
	StatusDisabled UserStatus = "disabled"
)

// User is an account. Email is stored as the person gave it; uniqueness and look-ups use
// NormalizeEmail. PasswordHash is an encoded hash, never the password.
type User struct {
	ID           int64
	Email        string
	Name         string
	PasswordHash string
	Status       UserStatus
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ActivatedAt  time.Time // zero until the account is activated
}

// NormalizeEmail returns the form of an address used for uniqueness and look-ups:
// trimmed of surrounding space, with ASCII letters lower-cased. Only ASCII is folded:
// Unicode case mapping sends some other characters to ASCII ones (the Kelvin sign K
// becomes k), which would let a registration of "\u212aate@example.com" claim
// kate@example.com and receive its mail.
func NormalizeEmail(email string) string {
	email = strings.TrimSpace(email)
	for i := 0; i < len(email); i++ {
		if c := email[i]; 'A' <= c && c <= 'Z' {
			return strings.Map(lowerASCII, email)
		}
	}
	return email
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

// TokenPurpose says what a stored token is for.
type TokenPurpose string

// Token purposes.
const (
	PurposeActivation    TokenPurpose = "activation"
	PurposePasswordReset TokenPurpose = "password_reset"
	PurposeRefresh       TokenPurpose = "refresh"
)

// Token is a stored single-use or refresh token. Only the SHA-256 hash of the secret is
// kept; the secret itself leaves the process once, in an email or a response.
type Token struct {
	ID        int64
	UserID    int64
	Purpose   TokenPurpose
	Hash      []byte
	Family    string // refresh tokens: the rotation chain the token belongs to
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
	RevokedAt time.Time // zero unless revoked
	CreatedAt time.Time
}

// AccountStore keeps users, their tokens and the mail outbox. Reads outside Tx see
// committed data only.
type AccountStore interface {
	// Tx runs fn in one transaction. When fn returns an error, nothing it did is kept
	// and that error is returned.
	Tx(ctx context.Context, fn func(tx AccountTx) error) error

	// UserByID returns the user with that id, or user_not_found.
	UserByID(ctx context.Context, id int64) (User, error)

	// UserByEmail returns the user whose normalized email equals NormalizeEmail(email),
	// or user_not_found.
	UserByEmail(ctx context.Context, email string) (User, error)
}

// AccountTx is the set of operations available inside AccountStore.Tx.
type AccountTx interface {
	// CreateUser stores a new user and returns it with its id: email_taken when the
	// normalized email is already registered.
	CreateUser(ctx context.Context, u User) (User, error)

	// UserByID and UserByEmail behave as on AccountStore, inside the transaction.
	UserByID(ctx context.Context, id int64) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)

	// ActivateUser moves a pending user to active at the given time: user_not_found
	// when there is no such user. Activating an active user changes nothing.
	ActivateUser(ctx context.Context, id int64, at time.Time) error

	// SetPassword replaces a user's password hash: user_not_found when absent.
	SetPassword(ctx context.Context, id int64, hash string, at time.Time) error

	// CreateToken stores a token and returns it with its id.
	CreateToken(ctx context.Context, t Token) (Token, error)

	// TokenByHash returns the token of that purpose and hash, or token_invalid.
	TokenByHash(ctx context.Context, purpose TokenPurpose, hash []byte) (Token, error)

	// UseToken marks an unused, unrevoked token used: token_used when it was already
	// used and token_revoked when revoked. Of two concurrent calls exactly one succeeds.
	UseToken(ctx context.Context, id int64, at time.Time) error

	// RevokeUserTokens revokes every unused, unrevoked token of the user with that
	// purpose.
	RevokeUserTokens(ctx context.Context, userID int64, purpose TokenPurpose, at time.Time) error

	// RevokeFamily revokes every unrevoked refresh token of a rotation family.
	RevokeFamily(ctx context.Context, family string, at time.Time) error

	// Enqueue adds a message to the outbox, due at the given time.
	Enqueue(ctx context.Context, m Message, at time.Time) error
}
