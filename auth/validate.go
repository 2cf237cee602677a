package auth

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keeperhq/keeper"
)

// Limits on account fields. Lengths of names and passwords count characters (runes), so
// that a password of 128 Cyrillic letters is as acceptable as one of 128 Latin ones; the
// email limit counts bytes, as RFC 5321 does.
const (
	MaxEmailBytes    = 254
	MaxNameRunes     = 100
	MinPasswordRunes = 8
	MaxPasswordRunes = 128
)

// maxPasswordBytes is the most bytes MaxPasswordRunes characters of UTF-8 can take. A
// longer input is refused before its characters are even counted.
const maxPasswordBytes = MaxPasswordRunes * utf8.UTFMax

// Codes of the keeper.FieldError values that registration and password reset return.
// Like keeper.Code values they are public API.
const (
	FieldRequired      = "required"       // empty after trimming (passwords: empty)
	FieldInvalidFormat = "invalid_format" // not one plain address, or a name with controls
	FieldTooShort      = "too_short"      // password under MinPasswordRunes characters
	FieldTooLong       = "too_long"       // over MaxEmailBytes, MaxNameRunes or MaxPasswordRunes
)

// validateRegistration checks every field of r and returns r with email and name
// trimmed, or one validation_failed error that lists every invalid field at once.
func validateRegistration(r Registration) (Registration, error) {
	r.Email = strings.TrimSpace(r.Email)
	r.Name = strings.TrimSpace(r.Name)

	var fields []keeper.FieldError
	for _, fe := range []*keeper.FieldError{
		checkEmail(r.Email), checkName(r.Name), checkPassword(r.Password),
	} {
		if fe != nil {
			fields = append(fields, *fe)
		}
	}
	if len(fields) > 0 {
		return Registration{}, validationError(fields...)
	}
	return r, nil
}

// ValidateRegistration reports, without storing anything, whether Register would
// accept r's fields: nil, or the validation_failed error Register would return. Tools
// that create accounts directly, such as seed-users, hold them to the same rules.
func ValidateRegistration(r Registration) error {
	_, err := validateRegistration(r)
	return err
}

// validatePassword returns a validation_failed error naming the password field when
// password is not acceptable as a new password.
func validatePassword(password string) error {
	if fe := checkPassword(password); fe != nil {
		return validationError(*fe)
	}
	return nil
}

// validationError wraps field errors in the one error that reports them all.
func validationError(fields ...keeper.FieldError) error {
	return &keeper.Error{
		Code:    keeper.CodeValidation,
		Message: "some fields are invalid",
		Fields:  fields,
	}
}

// checkEmail accepts one plain address, already trimmed, exactly as net/mail reads it:
// no display name, comment, angle brackets or quoting that changes how it is spelled.
// Whether the address receives mail only the activation link can tell.
func checkEmail(email string) *keeper.FieldError {
	switch {
	case email == "":
		return fieldError("email", FieldRequired, "email is required")
	case len(email) > MaxEmailBytes:
		return fieldError("email", FieldTooLong, "email must be at most 254 bytes")
	case !plainAddress(email):
		return fieldError("email", FieldInvalidFormat,
			"email must be a single address such as name@example.com")
	}
	return nil
}

// plainAddress reports whether s is an address that net/mail reads back unchanged.
func plainAddress(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Name == "" && addr.Address == s
}

// checkName accepts 1 to MaxNameRunes characters, already trimmed, of valid UTF-8 with
// no character that could break or disguise the line it is shown on (see badNameRune).
func checkName(name string) *keeper.FieldError {
	switch {
	case name == "":
		return fieldError("name", FieldRequired, "name is required")
	case utf8.RuneCountInString(name) > MaxNameRunes:
		return fieldError("name", FieldTooLong, "name must be at most 100 characters")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, badNameRune):
		return fieldError("name", FieldInvalidFormat,
			"name must not contain control characters")
	}
	return nil
}

// badNameRune reports control characters (C0, DEL, C1), line and paragraph separators,
// and the bidirectional overrides and isolates that can make a name in an email read as
// something else. Joiners stay allowed: several scripts and emoji need them.
func badNameRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
}

// checkPassword accepts MinPasswordRunes to MaxPasswordRunes characters. A password is
// never trimmed: spaces at either end are part of it.
func checkPassword(password string) *keeper.FieldError {
	switch {
	case password == "":
		return fieldError("password", FieldRequired, "password is required")
	case !passwordWithinMax(password):
		return fieldError("password", FieldTooLong, "password must be at most 128 characters")
	case utf8.RuneCountInString(password) < MinPasswordRunes:
		return fieldError("password", FieldTooShort, "password must be at least 8 characters")
	}
	return nil
}

// passwordWithinMax reports whether password has at most MaxPasswordRunes characters,
// without counting through a huge input.
func passwordWithinMax(password string) bool {
	return len(password) <= maxPasswordBytes &&
		utf8.RuneCountInString(password) <= MaxPasswordRunes
}

func fieldError(field, code, message string) *keeper.FieldError {
	return &keeper.FieldError{Field: field, Code: code, Message: message}
}
