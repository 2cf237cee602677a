package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keeperhq/keeper"
)

// Leeway is the clock skew tolerated when checking exp, nbf and iat, so that a token
// checked by another instance whose clock is a little ahead or behind is not refused.
// It is kept small because it extends every token's life past its exp.
const Leeway = 5 * time.Second

// maxTokenLen bounds the input Verify parses; Keeper's tokens are about 350 bytes.
const maxTokenLen = 4096

// Client-safe messages of the errors Verify returns.
const (
	msgExpired = "access token expired"
	msgInvalid = "access token invalid"
)

// Claims are the verified contents of an access token.
type Claims struct {
	UserID    int64     // sub
	ID        string    // jti, unique per token
	IssuedAt  time.Time // iat; zero if absent
	ExpiresAt time.Time // exp
}

// Tokens issues and verifies access tokens: JWTs signed with EdDSA (Ed25519) by the
// signing key of a KeySet. A Tokens is safe for concurrent use; make one with NewTokens.
type Tokens struct {
	keys     *KeySet
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

// TokenOption changes how NewTokens builds a Tokens.
type TokenOption func(*Tokens)

// WithClock makes Tokens read the time from now instead of time.Now, for tests.
func WithClock(now func() time.Time) TokenOption {
	return func(t *Tokens) { t.now = now }
}

// NewTokens returns a Tokens that signs with keys, names issuer as iss and audience as
// aud, and makes tokens valid for ttl. It panics when keys is nil, issuer or audience
// is empty, or ttl is not positive: configuration mistakes that cmd should catch.
func NewTokens(keys *KeySet, issuer, audience string, ttl time.Duration,
	opts ...TokenOption) *Tokens {
	if keys == nil || issuer == "" || audience == "" || ttl <= 0 {
		panic("auth.NewTokens: want keys, an issuer, an audience and a positive ttl")
	}

	t := &Tokens{keys: keys, issuer: issuer, audience: audience, ttl: ttl, now: time.Now}
	for _, opt := range opts {
		opt(t)
	}

	// Pinning the method refuses "none", HS256 signed with the public key and any other
	// algorithm before a key is even chosen.
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(t.now),
		jwt.WithStrictDecoding(),
	)
	return t
}

// TTL returns how long the tokens that t issues stay valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a new access token for the user and the time it expires. Its claims are
// sub (the user id in decimal), iss, aud, iat, exp and a random jti; its header names
// alg EdDSA, typ JWT and the signing key's kid. A user id that is not positive, which
// Verify would refuse, is an error.
func (t *Tokens) Issue(userID int64) (token string, expiresAt time.Time, err error) {
	if userID <= 0 {
		err := fmt.Errorf("issue access token: user id %d is not positive", userID)
		return "", time.Time{}, err
	}

	id, err := newTokenID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue access token: %w", err)
	}

	now := t.now()
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		Issuer:    t.issuer,
		Audience:  jwt.ClaimStrings{t.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		ID:        id,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.keys.signerID

	signed, err := tok.SignedString(t.keys.signer)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, claims.ExpiresAt.Time, nil
}

// Verify checks an access token and returns its claims: the signature by the key its
// kid names (signing or retired), alg EdDSA, typ JWT, exp present and not past, nbf and
// iat not in the future (each within Leeway), iss and aud equal to t's, and sub a
// positive user id. Every failure is an *keeper.Error with code unauthorized and the
// message "access token expired" or "access token invalid"; the detail is in its Err.
func (t *Tokens) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLen {
		return Claims{}, unauthorized(msgInvalid, fmt.Errorf("token of %d bytes", len(token)))
	}
	if !compactJWS(token) {
		return Claims{}, unauthorized(msgInvalid, errors.New("token has characters outside "+
			"base64url and dots"))
	}

	var rc jwt.RegisteredClaims
	if _, err := t.parser.ParseWithClaims(token, &rc, t.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, unauthorized(msgExpired, err)
		}
		return Claims{}, unauthorized(msgInvalid, err)
	}

	userID, err := parseSubject(rc.Subject)
	if err != nil {
		return Claims{}, unauthorized(msgInvalid, err)
	}

	c := Claims{UserID: userID, ID: rc.ID, ExpiresAt: rc.ExpiresAt.Time}
	if rc.IssuedAt != nil {
		c.IssuedAt = rc.IssuedAt.Time
	}
	return c, nil
}

// keyFor chooses the verifying key from the token's header. The parser has already
// refused any algorithm but EdDSA.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	if typ, ok := tok.Header["typ"]; ok && typ != "JWT" {
		return nil, fmt.Errorf("header typ %v, want JWT", typ)
	}
	// RFC 7515 requires refusing critical extensions we do not understand: we know none.
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("header has crit extensions")
	}

	kid, ok := tok.Header["kid"].(string)
	if !ok {
		return nil, errors.New("header has no kid string")
	}
	pub, ok := t.keys.publicKey(kid)
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return pub, nil
}

// compactJWS reports whether s holds only the characters of a compact JWS. The base64
// decoder would skip a newline, giving one token many spellings.
func compactJWS(s string) bool {
	for _, c := range []byte(s) {
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// parseSubject reads sub as a positive user id written canonically in decimal, so that
// one user has exactly one subject string.
func parseSubject(sub string) (int64, error) {
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != sub {
		return 0, fmt.Errorf("sub %q is not a positive user id", sub)
	}
	return id, nil
}

// newTokenID returns 16 random bytes in unpadded base64url, for jti.
func newTokenID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read token id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// unauthorized returns the error Verify gives for any refused token.
func unauthorized(msg string, cause error) *keeper.Error {
	return &keeper.Error{Code: keeper.CodeUnauthorized, Message: msg, Err: cause}
}
