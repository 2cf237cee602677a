// Package mail delivers Keeper's outgoing email: an SMTP sender configured from a URL, a
// development sender that writes .eml files, the message templates the account service
// uses, and the worker that drains the outbox with retries and backoff.
//
// Registration stores a message in the outbox in the same transaction as the user; the
// Worker delivers it later, so no request ever waits on SMTP. Delivery is at least once:
// a crash after the server accepted a message but before the outbox recorded it sends the
// message again, with the same Message-ID, so receivers and operators can spot the copy.
//
// Wiring, in outline:
//
//	cfg, err := mail.ParseSMTPURL(os.Getenv("KEEPER_SMTP_URL"))
//	sender, err := mail.NewSMTPSender(cfg, os.Getenv("KEEPER_MAIL_FROM"))
//	// or, in development without SMTP: mail.NewDevSender("var/mail", logger)
//	worker := mail.NewWorker(sqlite.NewOutbox(db), sender, logger, mail.WorkerConfig{})
//	go worker.Run(ctx)   // and worker.Notify() after a registration commits
package mail

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// TLSMode says how the connection to the SMTP server is protected.
type TLSMode string

// TLS modes. Only TLSNone and TLSOpportunistic may carry mail in clear text.
const (
	TLSStartTLS      TLSMode = "starttls"      // plain connect, then STARTTLS or give up
	TLSOpportunistic TLSMode = "opportunistic" // STARTTLS when offered, clear text otherwise
	TLSNone          TLSMode = "none"          // clear text, for local catchers only
	TLSImplicit      TLSMode = "implicit"      // TLS from the first byte (smtps)
)

// Default ports by scheme.
const (
	DefaultSubmissionPort = 587 // smtp://, STARTTLS submission
	DefaultSMTPSPort      = 465 // smtps://, implicit TLS
)

// SMTPConfig says where and how to deliver mail. Build it with ParseSMTPURL.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // empty: no AUTH
	Password string
	TLS      TLSMode
}

// ParseSMTPURL reads a KEEPER_SMTP_URL value:
//
//	smtp://user:pass@host:587                  STARTTLS, required (default port 587)
//	smtps://user:pass@host:465                 implicit TLS (default port 465)
//	smtp://host:25?tls=opportunistic           STARTTLS when the server offers it
//	smtp://127.0.0.1:1025?tls=none             clear text, e.g. mailpit
//
// A password with reserved characters must be percent-encoded. Errors never repeat the
// URL, since it may hold the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only the cause.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return SMTPConfig{}, fmt.Errorf("smtp url: %w", err)
	}

	cfg, err := schemeDefaults(u.Scheme)
	if err != nil {
		return SMTPConfig{}, err
	}
	if err := cfg.setHostPort(u); err != nil {
		return SMTPConfig{}, err
	}
	if err := cfg.setUser(u); err != nil {
		return SMTPConfig{}, err
	}
	if err := cfg.setOptions(u); err != nil {
		return SMTPConfig{}, err
	}
	return cfg, nil
}

func schemeDefaults(scheme string) (SMTPConfig, error) {
	switch scheme {
	case "smtp":
		return SMTPConfig{Port: DefaultSubmissionPort, TLS: TLSStartTLS}, nil
	case "smtps":
		return SMTPConfig{Port: DefaultSMTPSPort, TLS: TLSImplicit}, nil
	case "":
		return SMTPConfig{}, errors.New("smtp url: missing scheme, want smtp:// or smtps://")
	default:
		return SMTPConfig{}, fmt.Errorf("smtp url: scheme %q, want smtp or smtps", scheme)
	}
}

func (c *SMTPConfig) setHostPort(u *url.URL) error {
	if u.Opaque != "" || u.Hostname() == "" {
		return errors.New("smtp url: missing host")
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("smtp url: unexpected path %q", u.Path)
	}
	c.Host = u.Hostname()

	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("smtp url: port %q, want 1-65535", p)
		}
		c.Port = port
	}
	return nil
}

func (c *SMTPConfig) setUser(u *url.URL) error {
	if u.User == nil {
		return nil
	}
	c.Username = u.User.Username()
	c.Password, _ = u.User.Password()
	if c.Username == "" {
		return errors.New("smtp url: credentials without a user name")
	}
	return nil
}

func (c *SMTPConfig) setOptions(u *url.URL) error {
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("smtp url: query: %w", err)
	}
	for name, values := range query {
		if name != "tls" {
			return fmt.Errorf("smtp url: unknown option %q, want tls", name)
		}
		if len(values) != 1 {
			return errors.New("smtp url: option tls given more than once")
		}
	}
	if !query.Has("tls") {
		return nil
	}
	if c.TLS == TLSImplicit {
		return errors.New("smtp url: option tls applies to smtp:// only; smtps:// is always TLS")
	}

	switch mode := TLSMode(query.Get("tls")); mode {
	case TLSStartTLS, TLSOpportunistic, TLSNone:
		c.TLS = mode
		return nil
	default:
		return fmt.Errorf("smtp url: tls=%q, want starttls, opportunistic or none", mode)
	}
}

// Insecure reports whether mail (and the password, when there is one) may travel in
// clear text: with tls=none always, with tls=opportunistic when the server does not offer
// STARTTLS or an attacker strips it. Production should refuse such a configuration.
func (c SMTPConfig) Insecure() bool {
	return c.TLS == TLSNone || c.TLS == TLSOpportunistic
}

// Addr returns host:port.
func (c SMTPConfig) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// String returns the configuration as a URL with the password masked, for the start-up
// log line.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: c.Addr()}
	if c.TLS == TLSImplicit {
		u.Scheme = "smtps"
	} else {
		u.RawQuery = "tls=" + string(c.TLS)
	}

	switch {
	case c.Username != "" && c.Password != "":
		u.User = url.UserPassword(c.Username, "xxxxx")
	case c.Username != "":
		u.User = url.User(c.Username)
	}
	return u.String()
}
