// Package keeper holds Keeper's domain: key–value entries, user accounts, tokens, outgoing
// mail, the interfaces that storage and delivery implement, and the error vocabulary that
// every layer shares. It imports no storage, HTTP or mail package; those depend on it.
package keeper

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Code is a stable, machine-readable error code. Codes are public API: clients match on
// them, so an existing code is never renamed or given another meaning.
type Code string

// Error codes shared by every layer. The HTTP layer maps each one to a status.
const (
	// Request shape.
	CodeInvalidRequest     Code = "invalid_request"     // malformed or missing input
	CodeInvalidJSON        Code = "invalid_json"        // body is not well-formed JSON
	CodeInvalidQuery       Code = "invalid_query"       // bad or unknown query parameter
	CodeUnknownField       Code = "unknown_field"       // JSON body has a field we do not accept
	CodeBodyTooLarge       Code = "body_too_large"      // request body over the configured limit
	CodeUnsupportedMedia   Code = "unsupported_media"   // wrong Content-Type
	CodeValidation         Code = "validation_failed"   // field-level errors, see Error.Fields
	CodeNotFound           Code = "not_found"           // no such route
	CodeMethodNotAllowed   Code = "method_not_allowed"  // route exists, method does not
	CodeRateLimited        Code = "rate_limited"        // too many requests
	CodeInternal           Code = "internal_error"      // anything unexpected
	CodeServiceUnavailable Code = "service_unavailable" // a dependency is down
	CodeNotAcceptable      Code = "not_acceptable"      // cannot produce what Accept asks for

	// Key–value state.
	CodeInvalidKey      Code = "invalid_key"      // key empty, too long, not UTF-8 or has controls
	CodeInvalidValue    Code = "invalid_value"    // value is not a UTF-8 string
	CodeValueTooLarge   Code = "value_too_large"  // value over the configured limit
	CodeTooManyKeys     Code = "too_many_keys"    // more keys in one request than allowed
	CodeDuplicateKey    Code = "duplicate_key"    // the same key twice in one request
	CodeKeyNotFound     Code = "key_not_found"    // no entry with that key
	CodeKeyExists       Code = "key_exists"       // create refused: key already present
	CodeVersionMismatch Code = "version_mismatch" // If-Match did not match the entry's version

	// Accounts and tokens.
	CodeEmailTaken          Code = "email_taken"           // store-level only, never sent to clients
	CodeUserNotFound        Code = "user_not_found"        // no visible user with that id
	CodeInvalidCredentials  Code = "invalid_credentials"   // wrong email or password
	CodeAccountNotActivated Code = "account_not_activated" // right password, pending account
	CodeAccountDisabled     Code = "account_disabled"      // account exists but is disabled
	CodeTokenInvalid        Code = "token_invalid"         // unknown or malformed token
	CodeTokenExpired        Code = "token_expired"         // token past its expiry
	CodeTokenUsed           Code = "token_used"            // single-use token already used
	CodeTokenRevoked        Code = "token_revoked"         // token revoked (logout, reset, reuse)
	CodeTokenReused         Code = "refresh_token_reused"  // rotated refresh token shown again
	CodeUnauthorized        Code = "unauthorized"          // missing or invalid access token
	CodeForbidden           Code = "forbidden"             // authenticated but not allowed
)

// FieldError describes one invalid field of a request body.
type FieldError struct {
	Field   string
	Code    string
	Message string
}

// Error is the error type of Keeper's domain. Message is safe to show to clients; Err,
// when set, is the internal cause and is only logged.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
}

// Error returns the code, the message and the cause, for logs.
func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// quoteMaxBytes is how much of a string Quote shows.
const quoteMaxBytes = 64

// Quote returns s quoted as %q would, for a message that names client input: a string
// longer than quoteMaxBytes is cut to its first quoteMaxBytes bytes, at a character
// boundary, and shown with "…" and its length, as "aaaa…" (8388608 bytes), so that a
// message never grows with what the client sent.
func Quote(s string) string {
	if len(s) <= quoteMaxBytes {
		return strconv.Quote(s)
	}
	cut := quoteMaxBytes
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return strconv.Quote(s[:cut]+"…") + " (" + strconv.Itoa(len(s)) + " bytes)"
}

// ErrorCode returns the code of the first *Error in err's chain, or CodeInternal when
// there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// HasCode reports whether err carries the given code.
func HasCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
