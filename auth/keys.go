package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
)

// PEM block types accepted in a key file.
const (
	blockPrivate = "PRIVATE KEY" // PKCS#8
	blockPublic  = "PUBLIC KEY"  // PKIX
)

// maxKeyFileSize bounds how much of a key file is read; a real one is well under 10 KiB.
const maxKeyFileSize = 1 << 20

// KeySet holds the Ed25519 key that signs access tokens and the retired public keys that
// still verify tokens signed before a rotation. Keys are named by their kid, the RFC 7638
// JWK thumbprint. A KeySet is read-only and safe for concurrent use.
type KeySet struct {
	signer   ed25519.PrivateKey
	signerID string
	ids      []string // signing key first, then retired keys in file order
	public   map[string]ed25519.PublicKey
}

// NewKeySet returns a KeySet that signs with signer and also verifies with retired. It
// fails when a key has the wrong size or appears twice.
func NewKeySet(signer ed25519.PrivateKey, retired ...ed25519.PublicKey) (*KeySet, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key: %d bytes, want %d",
			len(signer), ed25519.PrivateKeySize)
	}

	k := &KeySet{signer: signer, public: make(map[string]ed25519.PublicKey)}
	all := append([]ed25519.PublicKey{signer.Public().(ed25519.PublicKey)}, retired...)
	for i, pub := range all {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d: %d bytes, want %d",
				i+1, len(pub), ed25519.PublicKeySize)
		}
		id := Thumbprint(pub)
		if _, dup := k.public[id]; dup {
			return nil, fmt.Errorf("key %d: the same key (kid %s) appears twice", i+1, id)
		}
		k.ids = append(k.ids, id)
		k.public[id] = pub
	}
	k.signerID = k.ids[0]
	return k, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key: the unpadded
// base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":"<key>"}. Keeper uses it as kid.
func Thumbprint(pub ed25519.PublicKey) string {
	// RFC 7638 fixes the members, their order and the absence of white space.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` +
		base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SigningKeyID returns the kid of the key that signs new tokens.
func (k *KeySet) SigningKeyID() string { return k.signerID }

// KeyIDs returns the kids of every key that verifies tokens, the signing key first.
func (k *KeySet) KeyIDs() []string { return slices.Clone(k.ids) }

// publicKey returns the verifying key named kid.
func (k *KeySet) publicKey(kid string) (ed25519.PublicKey, bool) {
	pub, ok := k.public[kid]
	return pub, ok
}

// jwk is the public form of one key in a JWKS document (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the JSON Web Key Set served at /.well-known/jwks.json: the public part of
// every key, the signing key first, so that other services can verify access tokens.
func (k *KeySet) JWKS() ([]byte, error) {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(k.ids))}

	for _, id := range k.ids {
		doc.Keys = append(doc.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(k.public[id]),
			Kid: id,
			Alg: "EdDSA",
			Use: "sig",
		})
	}

	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	return b, nil
}

// LoadKeys reads the PEM key file named by KEEPER_JWT_KEY_FILE. Its first block must be
// an Ed25519 "PRIVATE KEY" (PKCS#8, as made by GenerateKeyFile or by
// `openssl genpkey -algorithm ed25519`); it signs. Further "PRIVATE KEY" or "PUBLIC KEY"
// (PKIX) blocks are retired keys that only verify. The file must not be accessible to
// group or others. A missing file gives an error wrapping fs.ErrNotExist.
func LoadKeys(path string) (*KeySet, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}

	signer, retired, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("JWT key file %s: %w", path, err)
	}

	keys, err := NewKeySet(signer, retired...)
	if err != nil {
		return nil, fmt.Errorf("JWT key file %s: %w", path, err)
	}
	return keys, nil
}

// readKeyFile reads a key file after checking, on the open file, that only its owner
// can access it: the file holds a private key.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open JWT key file: %w", err)
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("JWT key file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("JWT key file %s: not a regular file", path)
	}
	// Windows has no such mode bits; its ACLs are the operator's business.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("JWT key file %s has mode %04o, open to group or others; "+
			"a private key file must be readable by its owner only: chmod 600 %s",
			path, perm, path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read JWT key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("JWT key file %s: larger than %d bytes", path, maxKeyFileSize)
	}
	return data, nil
}

// parseKeys reads the PEM blocks of a key file: the first is the signing key.
func parseKeys(data []byte) (ed25519.PrivateKey, []ed25519.PublicKey, error) {
	var (
		signer  ed25519.PrivateKey
		retired []ed25519.PublicKey
	)
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}

		priv, pub, err := parseBlock(block)
		if err != nil {
			return nil, nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		switch {
		case n == 1 && priv == nil:
			return nil, nil, fmt.Errorf("PEM block 1 is a %s; the signing key must come "+
				"first, as a %s block", block.Type, blockPrivate)
		case n == 1:
			signer = priv
		default:
			retired = append(retired, pub)
		}
	}

	if signer == nil {
		return nil, nil, fmt.Errorf("no PEM block found; want a %s block", blockPrivate)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, errors.New("data after the last PEM block is not a PEM block")
	}
	return signer, retired, nil
}

// parseBlock returns the Ed25519 key in one block; priv is nil for a public key block.
func parseBlock(block *pem.Block) (priv ed25519.PrivateKey, pub ed25519.PublicKey, err error) {
	var key any
	switch block.Type {
	case blockPrivate:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case blockPublic:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	default:
		return nil, nil, fmt.Errorf("type %q, want %q (PKCS#8) or %q (PKIX)",
			block.Type, blockPrivate, blockPublic)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", block.Type, err)
	}

	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k, k.Public().(ed25519.PublicKey), nil
	case ed25519.PublicKey:
		return nil, k, nil
	default:
		return nil, nil, fmt.Errorf("%s: %T key, want Ed25519", block.Type, key)
	}
}

// GenerateKeyFile writes a new Ed25519 signing key to path as a PKCS#8 "PRIVATE KEY"
// block, creating missing folders with mode 0700 and the file with mode 0600. It never
// overwrites: an existing file gives an error wrapping fs.ErrExist.
func GenerateKeyFile(path string) error {
	block, err := newPrivateBlock()
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create folder for JWT key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create JWT key file (an existing one is never overwritten): %w", err)
	}

	if err := writeAndClose(f, block); err != nil {
		os.Remove(path)
		return fmt.Errorf("write JWT key file %s: %w", path, err)
	}
	return nil
}

// LoadOrCreateKeys loads the key file at path, first generating it when it does not
// exist, and reports whether it did. It is meant for development, where a fresh key on
// first start is convenient; production should provision the file.
func LoadOrCreateKeys(path string) (*KeySet, bool, error) {
	keys, err := LoadKeys(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, false, err
	}

	// Another process starting at the same moment may have won the race; use its key.
	created := true
	if err := GenerateKeyFile(path); errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return nil, false, err
	}

	keys, err = LoadKeys(path)
	if err != nil {
		return nil, false, err
	}
	return keys, created, nil
}

// RotateKeyFile puts a new signing key first in the key file at path and keeps every key
// it held as a retired "PUBLIC KEY" block, so that tokens they signed keep verifying
// until they expire; the old private keys are dropped, as nothing signs with them again.
// The file is replaced atomically, with mode 0600. Running processes use the new key
// after they load the file again. Retired keys stay until removed by hand, which is safe
// once they are older than the access token lifetime.
func RotateKeyFile(path string) error {
	old, err := LoadKeys(path)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}

	var buf bytes.Buffer
	block, err := newPrivateBlock()
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	buf.Write(block)
	for _, id := range old.ids {
		der, err := x509.MarshalPKIXPublicKey(old.public[id])
		if err != nil {
			return fmt.Errorf("rotate: encode retired key %s: %w", id, err)
		}
		buf.Write(pem.EncodeToMemory(&pem.Block{Type: blockPublic, Bytes: der}))
	}

	if err := replaceFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("rotate JWT key file: %w", err)
	}
	return nil
}

// newPrivateBlock returns a new Ed25519 key as a PEM "PRIVATE KEY" block.
func newPrivateBlock() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode Ed25519 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockPrivate, Bytes: der}), nil
}

// replaceFile writes data to a temporary file beside path and renames it over path, so
// that a reader sees either the old file or the new one, never a part.
func replaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	// CreateTemp makes the file with mode 0600.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()

	if err := writeAndClose(f, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeAndClose writes data, flushes it to disk and closes f.
func writeAndClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDir flushes a folder's entries, so that a rename survives a crash.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
