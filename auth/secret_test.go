package auth

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	secret, hash, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: got error %v, want nil", err)
	}
	other, otherHash, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: got error %v, want nil", err)
	}

	if len(secret) != 43 {
		t.Errorf("got a secret of %d characters, want 43", len(secret))
	}
	if !ValidSecretFormat(secret) {
		t.Errorf("ValidSecretFormat(%q): got false, want true", secret)
	}
	if !bytes.Equal(hash, HashSecret(secret)) {
		t.Errorf("got hash %x, want HashSecret(secret) %x", hash, HashSecret(secret))
	}
	if secret == other || bytes.Equal(hash, otherHash) {
		t.Errorf("got the same secret or hash twice (%q), want fresh ones", secret)
	}
}

func TestHashSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		want   string // hex
	}{
		// FIPS 180-2 example: SHA-256("abc").
		{"known answer", "abc",
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"empty", "",
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(HashSecret(tt.secret)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestValidSecretFormat(t *testing.T) {
	valid, _, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: got error %v, want nil", err)
	}
	// 43 characters whose last one leaves no unused bits set: a canonical encoding.
	canonical := strings.Repeat("A", 42) + "E"

	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"from NewSecret", valid, true},
		{"canonical by hand", canonical, true},
		{"empty", "", false},
		{"one short", valid[:42], false},
		{"one long", valid + "A", false},
		{"padded", valid + "=", false},
		{"standard alphabet plus", strings.Repeat("A", 42) + "+", false},
		{"standard alphabet slash", "/" + valid[1:], false},
		{"space inside", valid[:20] + " " + valid[21:], false},
		{"newline inside", valid[:20] + "\n" + valid[21:], false},
		{"non-canonical last character", strings.Repeat("A", 42) + "F", false},
		{"multi-byte characters", strings.Repeat("é", 21) + "A", false},
		{"SQL", "' OR 1=1 --" + strings.Repeat("A", 32), false},
		{"a JWT", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSecretFormat(tt.in); got != tt.want {
				t.Errorf("ValidSecretFormat(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkNewSecret(b *testing.B) {
	for b.Loop() {
		if _, _, err := NewSecret(); err != nil {
			b.Fatal(err)
		}
	}
}
