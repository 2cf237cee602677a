package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// secretBytes is the entropy of a secret: 256 bits, beyond any guessing.
const secretBytes = 32

// secretLen is the length of a secret in unpadded base64url.
var secretLen = base64.RawURLEncoding.EncodedLen(secretBytes)

// NewSecret returns a new opaque secret, 32 random bytes in unpadded base64url (43
// characters, safe in URLs), and its HashSecret. Activation, password reset and refresh
// tokens are such secrets: the secret goes to the user once, only the hash is stored.
func NewSecret() (secret string, hash []byte, err error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("new secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// HashSecret returns the SHA-256 of secret, the form in which it is stored and looked
// up. A fast hash suffices: unlike a password, a secret has 256 bits of entropy.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ValidSecretFormat reports whether s could be a secret made by NewSecret: exactly 43
// characters of canonical unpadded base64url. Check it before any look-up, so that
// garbage input costs no database work.
func ValidSecretFormat(s string) bool {
	if len(s) != secretLen {
		return false
	}
	// The decoder skips newlines; a round trip also pins the unused bits of the last
	// character, so that one secret has one spelling.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == secretBytes &&
		base64.RawURLEncoding.EncodeToString(b) == s
}
