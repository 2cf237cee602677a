package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keeperhq/keeper"
)

const (
	testIssuer   = "https://keeper.test"
	testAudience = "keeper-api"
	testTTL      = 15 * time.Minute
)

// testStart is the time every test clock starts at.
var testStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testClock is a clock that tests move by hand.
type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time { return c.now }

func newTestKeys(t testing.TB) *KeySet {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	keys, err := NewKeySet(priv)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return keys
}

func newTestTokens(keys *KeySet) (*Tokens, *testClock) {
	clock := &testClock{now: testStart}
	return NewTokens(keys, testIssuer, testAudience, testTTL, WithClock(clock.Now)), clock
}

func mustIssue(t testing.TB, tokens *Tokens, userID int64) string {
	t.Helper()
	token, _, err := tokens.Issue(userID)
	if err != nil {
		t.Fatalf("Issue(%d): got error %v, want nil", userID, err)
	}
	return token
}

// segment decodes one part of a compact JWS as a JSON object.
func segment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatalf("decode segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("segment %d is not a JSON object: %v", i, err)
	}
	return m
}

func TestIssueVerify(t *testing.T) {
	keys := newTestKeys(t)
	tokens, _ := newTestTokens(keys)

	for _, userID := range []int64{1, 42, math.MaxInt64} {
		t.Run("user "+strconv.FormatInt(userID, 10), func(t *testing.T) {
			token, expiresAt, err := tokens.Issue(userID)
			if err != nil {
				t.Fatalf("Issue: got error %v, want nil", err)
			}
			claims, err := tokens.Verify(token)
			if err != nil {
				t.Fatalf("Verify: got error %v, want nil", err)
			}

			want := Claims{UserID: userID, ID: claims.ID, IssuedAt: testStart,
				ExpiresAt: testStart.Add(testTTL)}
			if !claims.IssuedAt.Equal(want.IssuedAt) || !claims.ExpiresAt.Equal(want.ExpiresAt) ||
				claims.UserID != want.UserID {
				t.Errorf("Verify: got %+v, want %+v", claims, want)
			}
			if !expiresAt.Equal(want.ExpiresAt) {
				t.Errorf("Issue: got expiry %v, want %v", expiresAt, want.ExpiresAt)
			}
			id, err := base64.RawURLEncoding.DecodeString(claims.ID)
			if err != nil || len(id) != 16 {
				t.Errorf("jti: got %q, want 16 bytes in base64url", claims.ID)
			}
		})
	}
}

func TestIssueShape(t *testing.T) {
	keys := newTestKeys(t)
	tokens, _ := newTestTokens(keys)
	token := mustIssue(t, tokens, 42)

	header := segment(t, token, 0)
	wantHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": keys.SigningKeyID()}
	assertMembers(t, "header", header, wantHeader)

	payload := segment(t, token, 1)
	wantPayload := map[string]any{
		"sub": "42", "iss": testIssuer, "aud": []any{testAudience},
		"iat": float64(testStart.Unix()), "exp": float64(testStart.Add(testTTL).Unix()),
		"jti": payload["jti"],
	}
	assertMembers(t, "payload", payload, wantPayload)

	if other := segment(t, mustIssue(t, tokens, 42), 1); other["jti"] == payload["jti"] {
		t.Errorf("got jti %v twice, want a new one per token", other["jti"])
	}
}

// assertMembers checks that a decoded JSON object has exactly the members of want.
func assertMembers(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("%s: got %s, want %s", what, gotJSON, wantJSON)
	}
}

func TestIssueRefusesNonPositiveUser(t *testing.T) {
	tokens, _ := newTestTokens(newTestKeys(t))

	for _, userID := range []int64{0, -1, math.MinInt64} {
		t.Run(strconv.FormatInt(userID, 10), func(t *testing.T) {
			if token, _, err := tokens.Issue(userID); err == nil {
				t.Errorf("got token %q, want an error", token)
			}
		})
	}
}

// TestVerifyClaims signs tokens with the right key and varies their claims and the
// verifier's clock. An empty wantMsg means the token is accepted.
func TestVerifyClaims(t *testing.T) {
	keys := newTestKeys(t)
	now := testStart.Unix()
	minute := int64(60)

	tests := []struct {
		name    string
		change  func(c jwt.MapClaims)
		advance time.Duration
		wantMsg string
	}{
		{"valid", func(jwt.MapClaims) {}, 0, ""},
		{"expired", func(jwt.MapClaims) {}, testTTL + Leeway + time.Second, msgExpired},
		{"expired within the leeway", func(jwt.MapClaims) {}, testTTL + Leeway/2, ""},
		{"exp missing", func(c jwt.MapClaims) { delete(c, "exp") }, 0, msgInvalid},
		{"not yet valid", func(c jwt.MapClaims) { c["nbf"] = now + 2*minute }, 0, msgInvalid},
		{"nbf within the leeway", func(c jwt.MapClaims) { c["nbf"] = now + 3 }, 0, ""},
		{"nbf past the leeway", func(c jwt.MapClaims) { c["nbf"] = now + 10 }, 0, msgInvalid},
		{"issued in the future", func(c jwt.MapClaims) { c["iat"] = now + 2*minute }, 0,
			msgInvalid},
		{"iat missing", func(c jwt.MapClaims) { delete(c, "iat") }, 0, ""},
		{"wrong issuer", func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }, 0, msgInvalid},
		{"issuer missing", func(c jwt.MapClaims) { delete(c, "iss") }, 0, msgInvalid},
		{"wrong audience", func(c jwt.MapClaims) { c["aud"] = "other-api" }, 0, msgInvalid},
		{"audience missing", func(c jwt.MapClaims) { delete(c, "aud") }, 0, msgInvalid},
		{"audience as a string", func(c jwt.MapClaims) { c["aud"] = testAudience }, 0, ""},
		{"audience among others",
			func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} }, 0, ""},
		{"sub missing", func(c jwt.MapClaims) { delete(c, "sub") }, 0, msgInvalid},
		{"sub zero", func(c jwt.MapClaims) { c["sub"] = "0" }, 0, msgInvalid},
		{"sub negative", func(c jwt.MapClaims) { c["sub"] = "-42" }, 0, msgInvalid},
		{"sub with a plus sign", func(c jwt.MapClaims) { c["sub"] = "+42" }, 0, msgInvalid},
		{"sub with a leading zero", func(c jwt.MapClaims) { c["sub"] = "042" }, 0, msgInvalid},
		{"sub with a space", func(c jwt.MapClaims) { c["sub"] = "42 " }, 0, msgInvalid},
		{"sub not a number", func(c jwt.MapClaims) { c["sub"] = "admin" }, 0, msgInvalid},
		{"sub over int64", func(c jwt.MapClaims) { c["sub"] = "9223372036854775808" }, 0,
			msgInvalid},
		{"sub as a JSON number", func(c jwt.MapClaims) { c["sub"] = 42 }, 0, msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, clock := newTestTokens(keys)
			claims := jwt.MapClaims{
				"sub": "42", "iss": testIssuer, "aud": []string{testAudience},
				"iat": now, "exp": now + int64(testTTL.Seconds()), "jti": "test-id",
			}
			tt.change(claims)
			token := signEdDSA(t, keys.signer, keys.SigningKeyID(), claims)
			clock.now = clock.now.Add(tt.advance)

			got, err := tokens.Verify(token)
			if tt.wantMsg == "" {
				if err != nil || got.UserID != 42 {
					t.Errorf("got %+v, %v, want user 42 and no error", got, err)
				}
				return
			}
			assertUnauthorized(t, err, tt.wantMsg)
		})
	}
}

// TestVerifyForgeries checks tokens that Keeper's signing key did not sign as they are.
func TestVerifyForgeries(t *testing.T) {
	keys := newTestKeys(t)
	tokens, _ := newTestTokens(keys)
	kid := keys.SigningKeyID()
	valid := mustIssue(t, tokens, 42)
	parts := strings.Split(valid, ".")
	claims := jwt.MapClaims{
		"sub": "42", "iss": testIssuer, "aud": testAudience,
		"iat": testStart.Unix(), "exp": testStart.Add(testTTL).Unix(),
	}
	pub := keys.signer.Public().(ed25519.PublicKey)
	pubPKIX, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ECDSA key: %v", err)
	}

	tests := []struct {
		name  string
		token string
	}{
		{"tampered payload", parts[0] + "." + encodeJSON(t, jwt.MapClaims{
			"sub": "1", "iss": testIssuer, "aud": testAudience,
			"iat": testStart.Unix(), "exp": testStart.Add(testTTL).Unix(),
		}) + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipBit(t, parts[2])},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"newline in the signature", parts[0] + "." + parts[1] + "." +
			parts[2][:10] + "\n" + parts[2][10:]},
		{"padded signature", valid + "=="},
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			kid, claims)},
		{"alg none keeping the signature", encodeJSON(t, map[string]any{
			"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the public key bytes", signWith(t, jwt.SigningMethodHS256,
			[]byte(pub), kid, claims)},
		{"HS256 keyed with the public key PEM", signWith(t, jwt.SigningMethodHS256,
			[]byte(pemOf("PUBLIC KEY", pubPKIX)), kid, claims)},
		{"RS256", signWith(t, jwt.SigningMethodRS256, rsaKey, kid, claims)},
		{"ES256", signWith(t, jwt.SigningMethodES256, ecKey, kid, claims)},
		{"RS256 header on an EdDSA signature", encodeJSON(t, map[string]any{
			"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{"unknown key and kid", signEdDSA(t, stranger, Thumbprint(
			stranger.Public().(ed25519.PublicKey)), claims)},
		{"unknown key with our kid", signEdDSA(t, stranger, kid, claims)},
		{"kid missing", signEdDSA(t, keys.signer, "", claims)},
		{"kid not a string", headerWith(t, keys.signer, map[string]any{"kid": 7}, claims)},
		{"typ not JWT", headerWith(t, keys.signer,
			map[string]any{"kid": kid, "typ": "at+jwt"}, claims)},
		{"crit header", headerWith(t, keys.signer,
			map[string]any{"kid": kid, "crit": []string{"exp"}}, claims)},
		{"empty", ""},
		{"garbage", "not a token"},
		{"three empty parts", ".."},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", valid + "." + parts[2]},
		{"over 4096 bytes", valid + strings.Repeat("A", 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokens.Verify(tt.token)
			assertUnauthorized(t, err, msgInvalid)
			if got != (Claims{}) {
				t.Errorf("got claims %+v, want none", got)
			}
		})
	}
}

// TestVerifyAfterRotation rotates the key file: tokens signed before keep verifying
// with the retired key, and new tokens name the new kid.
func TestVerifyAfterRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	before, _ := newTestTokens(mustLoadKeys(t, path))
	oldToken := mustIssue(t, before, 7)

	rotate(t, path)
	keys := mustLoadKeys(t, path)
	after, _ := newTestTokens(keys)
	newToken := mustIssue(t, after, 8)

	tests := []struct {
		name     string
		verifier *Tokens
		token    string
		wantUser int64 // 0: refused
	}{
		{"old token, new key set", after, oldToken, 7},
		{"new token, new key set", after, newToken, 8},
		{"new token, key set not yet reloaded", before, newToken, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := tt.verifier.Verify(tt.token)
			if tt.wantUser == 0 {
				assertUnauthorized(t, err, msgInvalid)
				return
			}
			if err != nil || claims.UserID != tt.wantUser {
				t.Errorf("got %+v, %v, want user %d", claims, err, tt.wantUser)
			}
		})
	}

	if got := segment(t, newToken, 0)["kid"]; got != keys.SigningKeyID() {
		t.Errorf("new token: got kid %v, want the new signing kid %s", got, keys.SigningKeyID())
	}
	if got := segment(t, oldToken, 0)["kid"]; got == keys.SigningKeyID() {
		t.Errorf("old token: got the new signing kid %v, want the retired one", got)
	}
}

// assertUnauthorized checks that err is an *keeper.Error with code unauthorized, the
// client-safe message want and a cause.
func assertUnauthorized(t *testing.T, err error, want string) {
	t.Helper()
	var ke *keeper.Error
	if !errors.As(err, &ke) {
		t.Fatalf("got %v, want a *keeper.Error", err)
	}
	if ke.Code != keeper.CodeUnauthorized || ke.Message != want {
		t.Errorf("got code %q, message %q, want %q, %q",
			ke.Code, ke.Message, keeper.CodeUnauthorized, want)
	}
	if ke.Err == nil {
		t.Errorf("got no cause, want the reason in Err")
	}
}

// signEdDSA signs claims with key; an empty kid leaves kid out of the header.
func signEdDSA(t *testing.T, key ed25519.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	return signWith(t, jwt.SigningMethodEdDSA, key, kid, claims)
}

func signWith(t *testing.T, method jwt.SigningMethod, key any, kid string,
	claims jwt.MapClaims) string {
	t.Helper()
	header := map[string]any{}
	if kid != "" {
		header["kid"] = kid
	}
	return signHeader(t, method, key, header, claims)
}

// headerWith signs claims with key under EdDSA and the given header members.
func headerWith(t *testing.T, key ed25519.PrivateKey, header map[string]any,
	claims jwt.MapClaims) string {
	t.Helper()
	return signHeader(t, jwt.SigningMethodEdDSA, key, header, claims)
}

func signHeader(t *testing.T, method jwt.SigningMethod, key any, header map[string]any,
	claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for name, value := range header {
		tok.Header[name] = value
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// encodeJSON returns v as JSON in unpadded base64url, one segment of a token.
func encodeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipBit changes one bit of a base64url segment's decoded bytes.
func flipBit(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	b[len(b)/2] ^= 1
	return base64.RawURLEncoding.EncodeToString(b)
}

func BenchmarkIssue(b *testing.B) {
	tokens := NewTokens(newTestKeys(b), testIssuer, testAudience, testTTL)

	for b.Loop() {
		if _, _, err := tokens.Issue(42); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyToken measures Tokens.Verify (BenchmarkVerify is the password one).
func BenchmarkVerifyToken(b *testing.B) {
	tokens := NewTokens(newTestKeys(b), testIssuer, testAudience, testTTL)
	token := mustIssue(b, tokens, 42)

	for b.Loop() {
		if _, err := tokens.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
