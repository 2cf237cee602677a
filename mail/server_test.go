package mail_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the test server got it.
type received struct {
	From string
	To   []string
	User string // authenticated user, "" without AUTH
	TLS  bool   // whether the session was encrypted
	Data []byte
}

// serverConfig says how a test server behaves.
type serverConfig struct {
	TLS      *tls.Config // offer STARTTLS with this configuration
	Implicit bool        // serve TLS from the first byte (needs TLS)
	User     string      // require AUTH PLAIN with User and Password
	Password string
}

// testServer is a real SMTP server on 127.0.0.1 that keeps what it receives.
type testServer struct {
	t    testing.TB
	cfg  serverConfig
	addr string

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	messages []received
	rcptErr  error // reply to RCPT TO when set
	dataErr  error // reply to the end of DATA when set
}

// startServer starts a test server on a free port; it stops when the test ends.
func startServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	s := &testServer{t: t, cfg: cfg}
	s.listen("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

// listen serves on addr, which may be the address of a stopped server.
func (s *testServer) listen(addr string) {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatalf("listen on %s: %v", addr, err)
	}
	if s.cfg.Implicit {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if !s.cfg.Implicit {
		srv.TLSConfig = s.cfg.TLS
	}
	srv.AllowInsecureAuth = s.cfg.TLS == nil

	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every open session.
func (s *testServer) stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}

	// Serve may not have registered the listener with srv yet: close it ourselves.
	_ = ln.Close()
	_ = srv.Close()
}

// restart serves again on the address the server had before stop.
func (s *testServer) restart() {
	s.t.Helper()
	s.listen(s.addr)
}

// url returns a KEEPER_SMTP_URL for this server with the given tls option.
func (s *testServer) url(tlsMode string) string {
	userinfo := ""
	if s.cfg.User != "" {
		userinfo = s.cfg.User + ":" + s.cfg.Password + "@"
	}
	scheme := "smtp"
	query := "?tls=" + tlsMode
	if s.cfg.Implicit {
		scheme, query = "smtps", ""
	}
	return scheme + "://" + userinfo + s.addr + query
}

func (s *testServer) setReplies(rcptErr, dataErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr, s.dataErr = rcptErr, dataErr
}

func (s *testServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.messages...)
}

func (s *testServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{server: s, conn: c}, nil
}

// session implements smtp.Session and smtp.AuthSession.
type session struct {
	server *testServer
	conn   *smtp.Conn
	user   string
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string {
	if s.server.cfg.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.server.cfg.User || password != s.server.cfg.Password {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.server.cfg.User != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.server.mu.Lock()
	err := s.server.rcptErr
	s.server.mu.Unlock()
	if err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()

	s.server.mu.Lock()
	defer s.server.mu.Unlock()
	if s.server.dataErr != nil {
		return s.server.dataErr
	}
	s.server.messages = append(s.server.messages,
		received{From: s.from, To: s.to, User: s.user, TLS: isTLS, Data: data})
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }

// smtpReply builds a server reply such as 550 5.1.1.
func smtpReply(code int, enhanced smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

// selfSignedTLS returns a server configuration with a fresh certificate for 127.0.0.1 and
// a client configuration that trusts it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keeper test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return server, &tls.Config{RootCAs: pool}
}

// parsed is a received message taken apart.
type parsed struct {
	Header netmail.Header
	Parts  map[string]string // media type → decoded body
}

// parseMessage reads an RFC 5322 message with a multipart/alternative body.
func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("message Content-Type: %v", err)
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("got Content-Type %q, want multipart/alternative", mediaType)
	}

	p := parsed{Header: msg.Header, Parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for range 10 {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		partType, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		body, err := io.ReadAll(part) // the reader undoes quoted-printable
		if err != nil {
			t.Fatalf("read %s part: %v", partType, err)
		}
		p.Parts[partType] = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	t.Fatalf("more than 10 parts")
	return p
}

// hasLine reports whether text has a line equal to line.
func hasLine(text, line string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
