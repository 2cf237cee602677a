package keeper

import (
	"context"
	"unicode"
	"unicode/utf8"
)

// Limits of the key–value state.
const (
	// MaxKeyBytes is the longest key, in bytes of UTF-8.
	MaxKeyBytes = 256
	// DefaultMaxValueBytes is the default limit on one value, in bytes.
	DefaultMaxValueBytes = 1 << 20
	// MaxListLimit is the largest page that List returns.
	MaxListLimit = 1000
)

// Entry is one key–value pair. Version identifies the entry's current content: it comes
// from a store-wide revision counter, so a key that is deleted and created again never
// reuses an old version.
type Entry struct {
	Key     string
	Value   string
	Version int64
}

// KVStore keeps the shared key–value state. Every method is atomic: it applies whole or
// changes nothing. Implementations return *Error values with the codes named below and
// wrap anything else as an internal error.
type KVStore interface {
	// Get returns the entry for key, or key_not_found.
	Get(ctx context.Context, key string) (Entry, error)

	// Create adds every entry, or none of them: key_exists (naming the present keys)
	// when any key is already present. The returned entries carry their versions.
	Create(ctx context.Context, entries []Entry) ([]Entry, error)

	// Update replaces the value of an existing key: key_not_found when it is absent,
	// version_mismatch when ifMatch is non-empty and holds none of its versions.
	Update(ctx context.Context, key, value string, ifMatch []int64) (Entry, error)

	// Delete removes an existing key: key_not_found when absent, version_mismatch as
	// for Update.
	Delete(ctx context.Context, key string, ifMatch []int64) error

	// List returns up to limit keys that start with prefix and sort after the key
	// after (byte order), in byte order.
	List(ctx context.Context, prefix, after string, limit int) ([]string, error)
}

// ValidateKey returns invalid_key unless key is 1–MaxKeyBytes bytes of valid UTF-8
// without control characters.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return Errorf(CodeInvalidKey, "key must not be empty")
	case len(key) > MaxKeyBytes:
		return Errorf(CodeInvalidKey, "key is %d bytes; the limit is %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return Errorf(CodeInvalidKey, "key is not valid UTF-8")
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalidKey, "key contains the control character %U", r)
		}
	}
	return nil
}

// ValidateValue returns invalid_value unless value is valid UTF-8, and value_too_large
// when it is longer than maxBytes.
func ValidateValue(value string, maxBytes int) error {
	if len(value) > maxBytes {
		return Errorf(CodeValueTooLarge, "value is %d bytes; the limit is %d",
			len(value), maxBytes)
	}
	if !utf8.ValidString(value) {
		return Errorf(CodeInvalidValue, "value is not valid UTF-8")
	}
	return nil
}
