// Package auth holds the cryptographic building blocks of Keeper's accounts: password
// hashing with argon2id, Ed25519 signing keys and their JWKS document, signed access
// tokens (JWT), and opaque secrets for activation, reset and refresh tokens.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters. Memory is in KiB; every hash in progress holds
// that much memory until it finishes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes computed in parallel
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of derived key
}

// DefaultParams returns OWASP's recommended minimum for argon2id (Password Storage Cheat
// Sheet): m=19456 KiB (19 MiB), t=2, p=1, with a 16-byte salt and a 32-byte key. One
// hash takes a few tens of milliseconds on a current core.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on parameters, for new hashes and for stored ones alike. A stored hash outside
// them is refused rather than computed: m=4 GiB in a tampered row must not take the
// process down.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// ErrInvalidHash is returned, wrapped, for an encoded hash that is not a well-formed
// argon2id PHC string or whose parameters are out of bounds.
var ErrInvalidHash = errors.New("invalid password hash encoding")

// Validate reports whether p is usable: every value within the package's sanity bounds
// (memory at most 256 MiB and at least 8 KiB per thread, at most 16 passes and 16
// threads, salt 8–64 bytes, key 16–64 bytes). It does not enforce DefaultParams as a
// minimum, so that tests can choose cheaper costs.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2 threads %d: want 1 to %d", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("argon2 memory %d KiB: want %d to %d",
			p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2 time %d: want 1 to %d", p.Time, maxTime)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2 salt length %d: want %d to %d",
			p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2 key length %d: want %d to %d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hasher hashes and verifies passwords with argon2id. It lets at most a fixed number of
// hashes run at once, because each one holds its full memory cost: without the bound a
// burst of 1000 logins would ask for 1000 × 19 MiB. Callers beyond the bound wait for a
// slot, or until their context ends. A Hasher is safe for concurrent use; make one with
// NewHasher.
type Hasher struct {
	params Params
	slots  chan struct{}
}

// NewHasher returns a Hasher that makes new hashes with params and runs at most
// maxConcurrent hashes at once; maxConcurrent ≤ 0 means max(2, GOMAXPROCS). It panics
// when params fail Validate, a configuration mistake that cmd should catch at start.
func NewHasher(params Params, maxConcurrent int) *Hasher {
	if err := params.Validate(); err != nil {
		panic("auth.NewHasher: " + err.Error())
	}
	if maxConcurrent <= 0 {
		maxConcurrent = max(2, runtime.GOMAXPROCS(0))
	}
	return &Hasher{params: params, slots: make(chan struct{}, maxConcurrent)}
}

// Params returns the parameters that h uses for new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of a new argon2id hash of password with a fresh random
// salt: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, both in unpadded standard base64.
// The whole password is hashed, however long. It returns ctx's error when ctx ends
// while waiting for a slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}

	key, err := h.derive(ctx, h.params, password, salt)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encodeHash(h.params, salt, key), nil
}

// Verify reports whether password matches encoded, a string made by Hash. It uses the
// parameters stored in encoded, so hashes made before a parameter change keep verifying
// (see NeedsRehash), and compares in constant time. A malformed encoding or parameters
// out of bounds give an error wrapping ErrInvalidHash; an ended ctx gives ctx's error.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}

	got, err := h.derive(ctx, p, password, salt)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyDummy does the work of Verify against a hash with h's parameters that no
// password matches, and discards the result. Call it when the user is unknown, so that
// the response takes as long as for a known user and does not reveal whether the email
// is registered. It returns only ctx's error, when ctx ends while waiting for a slot.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	// Random salt and key: the same parse, derivation and comparison as a real Verify.
	salt := make([]byte, h.params.SaltLen)
	key := make([]byte, h.params.KeyLen)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("dummy verify: read salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("dummy verify: read key: %w", err)
	}

	_, err := h.Verify(ctx, encodeHash(h.params, salt, key), password)
	return err
}

// NeedsRehash reports whether encoded was made with parameters other than h's, or cannot
// be read at all. After a successful Verify, the caller stores a new Hash of the same
// password when this is true.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decodeHash(encoded)
	return err != nil || p != h.params
}

// derive computes the argon2id key once a slot is free.
func (h *Hasher) derive(ctx context.Context, p Params, pw string, salt []byte) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()

	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// acquire waits for a free slot. A ctx that has already ended never gets one, even when
// a slot is free, so that abandoned requests do no hashing.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for hashing slot: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for hashing slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.slots }

// encodeHash writes the PHC string format used by the reference implementation.
func encodeHash(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// decodeHash reads a PHC string strictly: argon2id, version 19, the parameters in the
// order m, t, p, canonical unpadded base64, and every value within bounds.
func decodeHash(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrInvalidHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q, want v=%d",
			ErrInvalidHash, parts[2], argon2.Version)
	}

	if p, err = decodeParams(parts[3]); err != nil {
		return p, nil, nil, err
	}

	if salt, err = decodeBase64(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %v", ErrInvalidHash, err)
	}
	if key, err = decodeBase64(parts[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: key: %v", ErrInvalidHash, err)
	}

	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrInvalidHash, err)
	}
	return p, salt, key, nil
}

// decodeParams reads "m=<KiB>,t=<passes>,p=<threads>".
func decodeParams(s string) (Params, error) {
	var p Params
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return p, fmt.Errorf("%w: parameters %q, want m=,t=,p=", ErrInvalidHash, s)
	}

	m, errM := decodeParam(fields[0], "m=", 32)
	t, errT := decodeParam(fields[1], "t=", 32)
	threads, errP := decodeParam(fields[2], "p=", 8)
	if err := errors.Join(errM, errT, errP); err != nil {
		return p, fmt.Errorf("%w: parameters %q: %v", ErrInvalidHash, s, err)
	}

	p.Memory, p.Time, p.Threads = uint32(m), uint32(t), uint8(threads)
	return p, nil
}

// decodeParam reads one "name=value" with a decimal value that fits in bits.
func decodeParam(field, prefix string, bits int) (uint64, error) {
	digits, ok := strings.CutPrefix(field, prefix)
	if !ok {
		return 0, fmt.Errorf("%q does not start with %q", field, prefix)
	}
	return strconv.ParseUint(digits, 10, bits)
}

// decodeBase64 accepts only canonical unpadded standard base64. The decoder alone would
// skip embedded newlines, and an encoding that does not round-trip is not one we made.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical base64")
	}
	return b, nil
}
