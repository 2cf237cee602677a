package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/keeperhq/keeper"
)

// Default SMTP timeouts.
const (
	DefaultDialTimeout = 10 * time.Second // TCP connect (and TLS handshake for smtps)
	DefaultIOTimeout   = 30 * time.Second // each exchange with the server
)

// SMTPSender delivers messages to an SMTP server, one connection per message. It is safe
// for concurrent use.
type SMTPSender struct {
	cfg         SMTPConfig
	from        *netmail.Address
	dialTimeout time.Duration
	ioTimeout   time.Duration
	tlsConfig   *tls.Config
}

var _ keeper.Mailer = (*SMTPSender)(nil)

// SenderOption adjusts an SMTPSender.
type SenderOption func(*SMTPSender)

// WithDialTimeout bounds connecting to the server. Zero or less keeps the default.
func WithDialTimeout(d time.Duration) SenderOption {
	return func(s *SMTPSender) {
		if d > 0 {
			s.dialTimeout = d
		}
	}
}

// WithIOTimeout bounds each read and write on the connection. Zero or less keeps the
// default.
func WithIOTimeout(d time.Duration) SenderOption {
	return func(s *SMTPSender) {
		if d > 0 {
			s.ioTimeout = d
		}
	}
}

// WithTLSConfig sets the TLS configuration for STARTTLS and smtps, for example to trust a
// private CA through RootCAs. The sender keeps a copy; ServerName defaults to the host
// and MinVersion is raised to TLS 1.2.
func WithTLSConfig(c *tls.Config) SenderOption {
	return func(s *SMTPSender) {
		if c != nil {
			s.tlsConfig = c.Clone()
		}
	}
}

// NewSMTPSender returns a sender for cfg with from (KEEPER_MAIL_FROM, for example
// "Keeper <no-reply@example.com>") as the sender of every message.
func NewSMTPSender(cfg SMTPConfig, from string, opts ...SenderOption) (*SMTPSender, error) {
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" || cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp sender: bad address %q", cfg.Addr())
	}

	s := &SMTPSender{
		cfg:         cfg,
		from:        addr,
		dialTimeout: DefaultDialTimeout,
		ioTimeout:   DefaultIOTimeout,
		tlsConfig:   &tls.Config{},
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = cfg.Host
	}
	s.tlsConfig.MinVersion = max(s.tlsConfig.MinVersion, tls.VersionTLS12)
	return s, nil
}

// Send delivers m. It returns nil once the server has accepted the message, even if
// closing the session fails afterwards, since sending again would deliver it twice. Use
// IsPermanent to tell whether a failure is worth retrying.
func (s *SMTPSender) Send(ctx context.Context, m keeper.Message) error {
	msg, err := compose(s.from, m, time.Now(), gomail.EncodingQP)
	if err != nil {
		return err
	}

	// go-mail only watches ctx while dialling; closing the connection when ctx ends
	// interrupts a slow server too.
	var stop func() bool
	client, err := gomail.NewClient(s.cfg.Host, s.clientOptions(ctx, &stop)...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if stop != nil {
		stop()
	}

	if msg.IsDelivered() {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("send message %s: %w", m.ID, errors.Join(ctxErr, err))
	}
	return fmt.Errorf("send message %s via %s: %w", m.ID, s.cfg.Addr(), err)
}

func (s *SMTPSender) clientOptions(ctx context.Context, stop *func() bool) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.ioTimeout),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithTLSPolicy(s.tlsPolicy()),
		gomail.WithDialContextFunc(s.dialFunc(ctx, stop)),
	}
	if s.cfg.Username == "" {
		return opts
	}

	// PLAIN refuses to send the password over a connection without TLS unless the
	// configuration explicitly says there is none (a local catcher).
	auth := gomail.SMTPAuthPlain
	if s.cfg.TLS == TLSNone {
		auth = gomail.SMTPAuthPlainNoEnc
	}
	return append(opts,
		gomail.WithSMTPAuth(auth),
		gomail.WithUsername(s.cfg.Username),
		gomail.WithPassword(s.cfg.Password),
	)
}

// tlsPolicy maps the mode to go-mail's STARTTLS policy. Implicit TLS is done by our own
// dialer, so go-mail must not try STARTTLS on top of it.
func (s *SMTPSender) tlsPolicy() gomail.TLSPolicy {
	switch s.cfg.TLS {
	case TLSOpportunistic:
		return gomail.TLSOpportunistic
	case TLSNone, TLSImplicit:
		return gomail.NoTLS
	default:
		return gomail.TLSMandatory
	}
}

// dialFunc connects with the dial timeout (go-mail has a single timeout for everything)
// and arranges for the connection to close when ctx ends; *stop undoes that.
func (s *SMTPSender) dialFunc(ctx context.Context, stop *func() bool) gomail.DialContextFunc {
	return func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		dialer := &net.Dialer{Timeout: s.dialTimeout}

		var conn net.Conn
		var err error
		if s.cfg.TLS == TLSImplicit {
			tlsDialer := &tls.Dialer{NetDialer: dialer, Config: s.tlsConfig}
			conn, err = tlsDialer.DialContext(dialCtx, network, addr)
		} else {
			conn, err = dialer.DialContext(dialCtx, network, addr)
		}
		if err != nil {
			return nil, err
		}

		*stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
}
