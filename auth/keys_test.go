package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// opensslKey was made by `openssl genpkey -algorithm ed25519` (OpenSSL 3). Its kid was
// computed apart from this package: the public key from `openssl pkey -pubout`, the
// thumbprint with Python's hashlib.
const (
	opensslKey = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHUWHYpiXIgO5Fpo7KBl95yAwkYDjwsGTa+9LD85BVk/
-----END PRIVATE KEY-----
`
	opensslPublic = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAEOk2uv/WrrqiW+VaWtgueEg0MgJ3vXvp3DsVqPaEzSc=
-----END PUBLIC KEY-----
`
	opensslKid = "Wx_3Hag2UMk05tsCTuELw1EgBNNhGaXhZjjVUxjnuBo"
)

// writeKeyFile writes data to a file in a new temporary folder with exactly mode perm.
func writeKeyFile(t *testing.T, data string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatalf("write key file: %v", err)
	}
	// WriteFile's mode passes through the umask; set it exactly.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatalf("chmod key file: %v", err)
	}
	return path
}

// pemOf encodes der as one PEM block.
func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// newEd25519PEM returns a new Ed25519 key as a PRIVATE KEY block and as a PUBLIC KEY
// block, with its kid.
func newEd25519PEM(t *testing.T) (private, public, kid string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("marshal private key: %v", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pemOf("PRIVATE KEY", privDER), pemOf("PUBLIC KEY", pubDER), Thumbprint(pub)
}

func mustLoadKeys(t *testing.T, path string) *KeySet {
	t.Helper()
	keys, err := LoadKeys(path)
	if err != nil {
		t.Fatalf("LoadKeys: got error %v, want nil", err)
	}
	return keys
}

// TestThumbprintRFC8037 uses the key of RFC 8037, appendix A.1, and the thumbprint
// given for it in appendix A.3.
func TestThumbprintRFC8037(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	if err != nil {
		t.Fatalf("decode seed: %v", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)

	if got, want := base64.RawURLEncoding.EncodeToString(pub),
		"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"; got != want {
		t.Errorf("public key: got %s, want %s", got, want)
	}
	if got, want := Thumbprint(pub), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint: got %s, want %s", got, want)
	}
}

func TestLoadKeys(t *testing.T) {
	priv1, pub1, kid1 := newEd25519PEM(t)
	priv2, _, kid2 := newEd25519PEM(t)
	_, pub3, kid3 := newEd25519PEM(t)

	tests := []struct {
		name     string
		data     string
		wantKids []string
	}{
		{"made by openssl", opensslKey, []string{opensslKid}},
		{"one private key", priv1, []string{kid1}},
		{"retired public and private keys", priv1 + pub3 + priv2,
			[]string{kid1, kid3, kid2}},
		{"retired key made by openssl", priv1 + opensslPublic, []string{kid1, opensslKid}},
		{"text around the blocks", "# signing key\n" + priv2 + "\n# retired\n" + pub1 + "\n",
			[]string{kid2, kid1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := mustLoadKeys(t, writeKeyFile(t, tt.data, 0o600))

			if got := keys.KeyIDs(); !slices.Equal(got, tt.wantKids) {
				t.Errorf("KeyIDs: got %v, want %v", got, tt.wantKids)
			}
			if got := keys.SigningKeyID(); got != tt.wantKids[0] {
				t.Errorf("SigningKeyID: got %s, want %s", got, tt.wantKids[0])
			}
		})
	}
}

func TestLoadKeysRefuses(t *testing.T) {
	priv, pub, _ := newEd25519PEM(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ECDSA key: %v", err)
	}
	rsaPKCS8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	rsaPKIX, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)

	tests := []struct {
		name    string
		data    string
		perm    os.FileMode
		wantErr string
	}{
		{"readable by others", priv, 0o644, "chmod 600"},
		{"readable by group", priv, 0o640, "chmod 600"},
		{"writable by group", priv, 0o620, "chmod 600"},
		{"readable by others only", priv, 0o604, "chmod 600"},
		{"empty", "", 0o600, "no PEM block"},
		{"not PEM", "just some text\n", 0o600, "no PEM block"},
		{"public key first", pub + priv, 0o600, "signing key must come first"},
		{"RSA key", pemOf("PRIVATE KEY", rsaPKCS8), 0o600, "*rsa.PrivateKey key, want Ed25519"},
		{"ECDSA key", pemOf("PRIVATE KEY", ecPKCS8), 0o600, "*ecdsa.PrivateKey key, want Ed25519"},
		{"retired RSA public key", priv + pemOf("PUBLIC KEY", rsaPKIX), 0o600,
			"PEM block 2: PUBLIC KEY: *rsa.PublicKey key, want Ed25519"},
		{"PKCS#1 block type", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
			0o600, `type "RSA PRIVATE KEY"`},
		{"encrypted key", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), 0o600,
			`type "ENCRYPTED PRIVATE KEY"`},
		{"corrupt key", pemOf("PRIVATE KEY", []byte("not DER")), 0o600,
			"PEM block 1: PRIVATE KEY"},
		{"the same key twice", priv + pub, 0o600, "appears twice"},
		{"trailing garbage", priv + "garbage\n", 0o600, "after the last PEM block"},
		{"truncated block", priv[:len(priv)-20], 0o600, "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := LoadKeys(writeKeyFile(t, tt.data, tt.perm))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, %v, want an error containing %q", keys, err, tt.wantErr)
			}
		})
	}
}

func TestLoadKeysMissingFile(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{"missing file", filepath.Join(t.TempDir(), "jwt.pem")},
		{"missing folder", filepath.Join(t.TempDir(), "secrets", "jwt.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKeys(tt.path)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
			}
		})
	}
}

func TestLoadKeysFolder(t *testing.T) {
	_, err := LoadKeys(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("got %v, want an error containing %q", err, "not a regular file")
	}
}

func TestGenerateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	path := filepath.Join(dir, "jwt.pem")

	if err := GenerateKeyFile(path); err != nil {
		t.Fatalf("GenerateKeyFile: got error %v, want nil", err)
	}

	assertMode(t, dir, 0o700)
	assertMode(t, path, 0o600)
	if got := mustLoadKeys(t, path).KeyIDs(); len(got) != 1 {
		t.Errorf("got %d keys, want 1", len(got))
	}
}

func TestGenerateKeyFileRefusesToOverwrite(t *testing.T) {
	priv, _, _ := newEd25519PEM(t)

	tests := []struct {
		name string
		data string
	}{
		{"a key file", priv},
		{"another file", "not a key, but someone's\n"},
		{"an empty file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.data, 0o600)

			err := GenerateKeyFile(path)
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("got %v, want an error wrapping fs.ErrExist", err)
			}
			if got := readFile(t, path); got != tt.data {
				t.Errorf("file now holds %q, want it unchanged: %q", got, tt.data)
			}
		})
	}
}

func TestLoadOrCreateKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev", "jwt.pem")

	first, created, err := LoadOrCreateKeys(path)
	if err != nil || !created {
		t.Fatalf("first call: got created %v, error %v, want true, nil", created, err)
	}
	assertMode(t, path, 0o600)

	second, created, err := LoadOrCreateKeys(path)
	if err != nil || created {
		t.Fatalf("second call: got created %v, error %v, want false, nil", created, err)
	}
	if first.SigningKeyID() != second.SigningKeyID() {
		t.Errorf("second call: got kid %s, want the first call's %s",
			second.SigningKeyID(), first.SigningKeyID())
	}
}

func TestLoadOrCreateKeysKeepsRefusals(t *testing.T) {
	priv, _, _ := newEd25519PEM(t)
	path := writeKeyFile(t, priv, 0o644)

	_, created, err := LoadOrCreateKeys(path)
	if err == nil || created {
		t.Errorf("got created %v, error %v, want false and the permission error", created, err)
	}
	if got := readFile(t, path); got != priv {
		t.Errorf("file now holds %q, want it unchanged", got)
	}
}

func TestRotateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	original := mustLoadKeys(t, path).SigningKeyID()

	rotate(t, path)
	once := mustLoadKeys(t, path)
	rotate(t, path)
	twice := mustLoadKeys(t, path)

	if once.SigningKeyID() == original || twice.SigningKeyID() == once.SigningKeyID() {
		t.Fatalf("got signing kids %s, %s, %s, want a new one at each rotation",
			original, once.SigningKeyID(), twice.SigningKeyID())
	}
	want := []string{once.SigningKeyID(), original}
	if got := once.KeyIDs(); !slices.Equal(got, want) {
		t.Errorf("after one rotation: got kids %v, want %v", got, want)
	}
	want = []string{twice.SigningKeyID(), once.SigningKeyID(), original}
	if got := twice.KeyIDs(); !slices.Equal(got, want) {
		t.Errorf("after two rotations: got kids %v, want %v", got, want)
	}

	// Retired keys only verify: their private part has no reason to stay on disk.
	data := readFile(t, path)
	if n := strings.Count(data, "-----BEGIN PRIVATE KEY-----"); n != 1 {
		t.Errorf("got %d private keys in the file, want 1", n)
	}
	assertMode(t, path, 0o600)
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("got %d entries in the folder, want only the key file (no temporary left)",
			len(entries))
	}
}

func TestRotateKeyFileRefuses(t *testing.T) {
	priv, _, _ := newEd25519PEM(t)

	tests := []struct {
		name string
		path string
	}{
		{"missing file", filepath.Join(t.TempDir(), "jwt.pem")},
		{"open to others", writeKeyFile(t, priv, 0o644)},
		{"not a key file", writeKeyFile(t, "hello\n", 0o600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(tt.path)
			if err := RotateKeyFile(tt.path); err == nil {
				t.Fatalf("got nil, want an error")
			}
			if after, _ := os.ReadFile(tt.path); !bytes.Equal(after, before) {
				t.Errorf("file changed to %q, want it unchanged", after)
			}
		})
	}
}

func TestNewKeySetRefuses(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}

	tests := []struct {
		name    string
		signer  ed25519.PrivateKey
		retired []ed25519.PublicKey
	}{
		{"no signing key", nil, nil},
		{"short signing key", priv[:32], nil},
		{"short retired key", priv, []ed25519.PublicKey{pub[:31]}},
		{"signing key retired too", priv, []ed25519.PublicKey{pub}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if keys, err := NewKeySet(tt.signer, tt.retired...); err == nil {
				t.Errorf("got %v, nil, want an error", keys.KeyIDs())
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	_, signer, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	retiredPub, retiredPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	keys, err := NewKeySet(signer, retiredPub)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}

	doc, err := keys.JWKS()
	if err != nil {
		t.Fatalf("JWKS: got error %v, want nil", err)
	}

	assertJWKSKeys(t, doc, []ed25519.PublicKey{signer.Public().(ed25519.PublicKey), retiredPub})
	for _, priv := range []ed25519.PrivateKey{signer, retiredPriv} {
		assertNoPrivateMaterial(t, doc, priv)
	}
}

// assertJWKSKeys checks that doc lists exactly the public keys want, in order, with
// exactly the members of a public Ed25519 JWK.
func assertJWKSKeys(t *testing.T, doc []byte, want []ed25519.PublicKey) {
	t.Helper()
	var got struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatalf("JWKS is not JSON: %v: %s", err, doc)
	}
	if len(got.Keys) != len(want) {
		t.Fatalf("got %d keys, want %d: %s", len(got.Keys), len(want), doc)
	}

	for i, pub := range want {
		wantKey := map[string]any{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
			"x":   base64.RawURLEncoding.EncodeToString(pub),
			"kid": Thumbprint(pub),
		}
		if len(got.Keys[i]) != len(wantKey) {
			t.Errorf("key %d: got members %v, want exactly %v", i, got.Keys[i], wantKey)
		}
		for name, value := range wantKey {
			if got.Keys[i][name] != value {
				t.Errorf("key %d, %s: got %v, want %v", i, name, got.Keys[i][name], value)
			}
		}
	}
}

// assertNoPrivateMaterial checks that no encoding of priv's seed appears in doc.
func assertNoPrivateMaterial(t *testing.T, doc []byte, priv ed25519.PrivateKey) {
	t.Helper()
	seed := priv.Seed()
	for _, enc := range []*base64.Encoding{
		base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding,
	} {
		// A prefix avoids the last character, which depends on what follows.
		if s := enc.EncodeToString(seed)[:40]; bytes.Contains(doc, []byte(s)) {
			t.Errorf("JWKS holds the private seed (%s): %s", s, doc)
		}
	}
	if bytes.Contains(doc, []byte(`"d"`)) {
		t.Errorf(`JWKS has a "d" member: %s`, doc)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: got mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func rotate(t *testing.T, path string) {
	t.Helper()
	if err := RotateKeyFile(path); err != nil {
		t.Fatalf("RotateKeyFile: got error %v, want nil", err)
	}
}
