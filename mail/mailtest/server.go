// Package mailtest runs a real SMTP server in-process for tests, in the spirit of
// net/http/httptest: Start listens on a free loopback port, the code under test sends to
// URL, and the test reads what arrived with Messages or WaitFor. The server can be
// stopped and restarted on the same address to test delivery while it is down, can
// require TLS and AUTH PLAIN, and can be told to refuse recipients or messages.
package mailtest

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message as the server received it.
type Message struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	User string   // authenticated user, "" without AUTH
	TLS  bool     // whether the session was encrypted
	Data []byte   // the message as sent after DATA: headers and body
}

// Config says how a Server behaves. The zero Config is a plain server without TLS or
// AUTH, like a local mail catcher.
type Config struct {
	// TLS, when set, is offered through STARTTLS, or from the first byte with Implicit.
	TLS *tls.Config

	// Implicit serves TLS from the first byte (smtps); it needs TLS.
	Implicit bool

	// User and Password, when User is set, make AUTH PLAIN required before MAIL FROM.
	User     string
	Password string
}

// Server is a real SMTP server on 127.0.0.1 that keeps every message it accepts. Its
// methods are safe for concurrent use, and its messages can be read while mail arrives.
type Server struct {
	t    testing.TB
	cfg  Config
	addr string

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	messages []Message
	arrived  chan struct{} // closed and replaced whenever a message is stored
	rcptErr  error         // reply to RCPT TO when set
	dataErr  error         // reply to the end of DATA when set
}

// Start starts a server with cfg on a free loopback port. It stops when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Implicit && cfg.TLS == nil {
		t.Fatal("mailtest: Config.Implicit needs Config.TLS")
	}

	s := &Server{t: t, cfg: cfg, arrived: make(chan struct{})}
	s.listen("127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

// listen serves on addr, which may be the address of a stopped server.
func (s *Server) listen(addr string) {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatalf("mailtest: listen on %s: %v", addr, err)
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

// Stop closes the listener and every open session, so that clients get connection
// refused until Restart. Messages received so far are kept. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
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

// Restart serves again on the address the server had before Stop, so that a URL taken
// earlier reaches it again. It fails the test if the address is taken meanwhile.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("mailtest: Restart of a server that is running")
	}
	s.listen(s.Addr())
}

// Addr returns the server's host:port. It stays the same across Stop and Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns a Keeper SMTP URL (see mail.ParseSMTPURL) for this server: smtp:// with
// the given tls query option (none, opportunistic or starttls), or smtps:// with no
// option for an Implicit server. It carries User and Password as they are; a password
// with reserved characters must be escaped by the caller.
func (s *Server) URL(tlsMode string) string {
	userinfo := ""
	if s.cfg.User != "" {
		userinfo = s.cfg.User + ":" + s.cfg.Password + "@"
	}
	scheme := "smtp"
	query := "?tls=" + tlsMode
	if s.cfg.Implicit {
		scheme, query = "smtps", ""
	}
	return scheme + "://" + userinfo + s.Addr() + query
}

// SetReplies makes the server answer every later RCPT TO with rcptErr and every later
// end of DATA with dataErr; nil accepts. Build the errors with Reply.
func (s *Server) SetReplies(rcptErr, dataErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr, s.dataErr = rcptErr, dataErr
}

// Reply returns an SMTP reply for SetReplies, such as Reply(550, smtp.EnhancedCode{5,
// 1, 1}, "No such user"). Codes 4xx are temporary failures, 5xx permanent ones.
func Reply(code int, enhanced smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

// Messages returns a copy of the messages received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitFor waits until at least n messages have arrived and returns all of them, oldest
// first. It fails the test when fewer than n have arrived within timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()

	for {
		s.mu.Lock()
		got, arrived := len(s.messages), s.arrived
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}

		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("mailtest: got %d messages within %v, want at least %d", got, timeout, n)
			return nil
		}
	}
}

// store keeps a received message and wakes WaitFor, unless a DATA reply is set.
func (s *Server) store(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dataErr != nil {
		return s.dataErr
	}

	s.messages = append(s.messages, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	return nil
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{server: s, conn: c}, nil
}

// session implements smtp.Session and smtp.AuthSession for one connection.
type session struct {
	server *Server
	conn   *smtp.Conn
	user   string
	from   string
	to     []string
}

// AuthMechanisms offers AUTH PLAIN when the server has a user.
func (s *session) AuthMechanisms() []string {
	if s.server.cfg.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks AUTH PLAIN against the configured user and password.
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.server.cfg.User || password != s.server.cfg.Password {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

// Mail starts a message, refusing it before AUTH when the server requires AUTH.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.server.cfg.User != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

// Rcpt adds a recipient, or answers with the reply set by SetReplies.
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

// Data reads the message and stores it with its envelope.
func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	return s.server.store(Message{From: s.from, To: slices.Clone(s.to), User: s.user,
		TLS: isTLS, Data: data})
}

// Reset forgets the envelope between messages of one session.
func (s *session) Reset() { s.from, s.to = "", nil }

// Logout ends the session; nothing is held.
func (s *session) Logout() error { return nil }
