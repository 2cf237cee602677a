package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/mail/mailtest"
)

const testFrom = "Keeper <no-reply@example.com>"

// testLink is longer than a quoted-printable line, so it only survives intact if the
// encoding is undone correctly.
var testLink = "https://keeper.example.com/activate?token=" + strings.Repeat("Ab3_", 16)

// newSender builds a sender for rawURL, failing the test on error.
func newSender(t *testing.T, rawURL string, opts ...mail.SenderOption) *mail.SMTPSender {
	t.Helper()
	cfg, err := mail.ParseSMTPURL(rawURL)
	if err != nil {
		t.Fatalf("ParseSMTPURL: %v", err)
	}
	opts = append([]mail.SenderOption{mail.WithIOTimeout(10 * time.Second)}, opts...)
	s, err := mail.NewSMTPSender(cfg, testFrom, opts...)
	if err != nil {
		t.Fatalf("NewSMTPSender: %v", err)
	}
	return s
}

// activation renders a real activation message for to.
func activation(t *testing.T, to string) keeper.Message {
	t.Helper()
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatalf("NewTemplates: %v", err)
	}
	return tmpl.Activation(to, "Ada", testLink, 24*time.Hour)
}

func TestSMTPSenderDelivers(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	tests := []struct {
		name     string
		server   mailtest.Config
		tlsMode  string
		wantTLS  bool
		wantUser string
	}{
		{name: "plain local catcher", tlsMode: "none"},
		{name: "plain with auth", tlsMode: "none",
			server: mailtest.Config{User: "dev", Password: "devpw"}, wantUser: "dev"},
		{name: "starttls", tlsMode: "starttls",
			server: mailtest.Config{TLS: serverTLS}, wantTLS: true},
		{name: "starttls with auth", tlsMode: "starttls",
			server:  mailtest.Config{TLS: serverTLS, User: "keeper", Password: "p@ss w0rd"},
			wantTLS: true, wantUser: "keeper"},
		{name: "opportunistic upgrades when offered", tlsMode: "opportunistic",
			server: mailtest.Config{TLS: serverTLS}, wantTLS: true},
		{name: "opportunistic falls back to plain", tlsMode: "opportunistic"},
		{name: "implicit tls with auth",
			server:  mailtest.Config{TLS: serverTLS, Implicit: true, User: "k", Password: "pw"},
			wantTLS: true, wantUser: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.server)
			rawURL := srv.URL(tt.tlsMode)
			if tt.server.User != "" {
				// The password has reserved characters; the URL carries it encoded.
				rawURL = strings.Replace(rawURL, tt.server.Password,
					strings.NewReplacer("@", "%40", " ", "%20").Replace(tt.server.Password), 1)
			}
			sender := newSender(t, rawURL, mail.WithTLSConfig(clientTLS))
			msg := activation(t, "ada@example.org")

			if err := sender.Send(context.Background(), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}

			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("got %d messages, want 1", len(got))
			}
			if got[0].TLS != tt.wantTLS {
				t.Errorf("got TLS %v, want %v", got[0].TLS, tt.wantTLS)
			}
			if got[0].User != tt.wantUser {
				t.Errorf("got AUTH user %q, want %q", got[0].User, tt.wantUser)
			}
			checkDelivered(t, got[0], msg)
		})
	}
}

// checkDelivered checks the envelope, headers and both bodies of a received message.
func checkDelivered(t *testing.T, got mailtest.Message, want keeper.Message) {
	t.Helper()
	if got.From != "no-reply@example.com" {
		t.Errorf("got MAIL FROM %q, want no-reply@example.com", got.From)
	}
	if len(got.To) != 1 || got.To[0] != want.To {
		t.Errorf("got RCPT TO %q, want [%s]", got.To, want.To)
	}
	checkContent(t, got.Data, want)
}

// checkContent checks the headers and both bodies of a message sent as testFrom.
func checkContent(t *testing.T, data []byte, want keeper.Message) {
	t.Helper()
	p := mailtest.Parse(t, data)
	headers := map[string]string{
		"From":       `"Keeper" <no-reply@example.com>`,
		"To":         "<" + want.To + ">",
		"Subject":    want.Subject,
		"Message-Id": "<" + want.ID + "@example.com>",
	}
	for name, value := range headers {
		if p.Header.Get(name) != value {
			t.Errorf("got %s %q, want %q", name, p.Header.Get(name), value)
		}
	}
	if _, err := p.Header.Date(); err != nil {
		t.Errorf("got Date %q: %v", p.Header.Get("Date"), err)
	}

	text, html := p.Text(), p.HTML()
	if text != want.Text {
		t.Errorf("got text part\n%s\nwant\n%s", text, want.Text)
	}
	if html != want.HTML {
		t.Errorf("got html part\n%s\nwant\n%s", html, want.HTML)
	}
	if !hasLine(text, testLink) {
		t.Errorf("got text part without the link on a line of its own:\n%s", text)
	}
	if !strings.Contains(html, `href="`+testLink+`"`) {
		t.Errorf("got html part without href to the link:\n%s", html)
	}
}

func TestSMTPSenderMessageIDStableAcrossRetries(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Config{})
	sender := newSender(t, srv.URL("none"))
	msg := activation(t, "bob@example.org")

	for i := range 2 {
		if err := sender.Send(context.Background(), msg); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}

	got := srv.Messages()
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	first := mailtest.Parse(t, got[0].Data).Header.Get("Message-Id")
	second := mailtest.Parse(t, got[1].Data).Header.Get("Message-Id")
	if first != second || first != "<"+msg.ID+"@example.com>" {
		t.Errorf("got Message-IDs %q and %q, want both <%s@example.com>", first, second, msg.ID)
	}
}

func TestSMTPSenderFailures(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	tests := []struct {
		name      string
		server    mailtest.Config
		tlsMode   string
		rcptErr   error
		dataErr   error
		opts      []mail.SenderOption
		password  string // replaces the server's password in the URL
		msg       func(keeper.Message) keeper.Message
		permanent bool
	}{
		{name: "recipient rejected 550", tlsMode: "none", permanent: true,
			rcptErr: mailtest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")},
		{name: "recipient deferred 451", tlsMode: "none",
			rcptErr: mailtest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")},
		{name: "message rejected 554", tlsMode: "none", permanent: true,
			dataErr: mailtest.Reply(554, smtp.EnhancedCode{5, 6, 0}, "Content rejected")},
		{name: "message deferred 452", tlsMode: "none",
			dataErr: mailtest.Reply(452, smtp.EnhancedCode{4, 3, 1}, "Mailbox full, later")},
		{name: "invalid recipient address", tlsMode: "none", permanent: true,
			msg: func(m keeper.Message) keeper.Message { m.To = "not an address"; return m }},
		{name: "invalid message id", tlsMode: "none", permanent: true,
			msg: func(m keeper.Message) keeper.Message { m.ID = "a b>"; return m }},
		{name: "subject with line break", tlsMode: "none", permanent: true,
			msg: func(m keeper.Message) keeper.Message { m.Subject += "\r\nBcc: x@y.z"; return m }},
		{name: "starttls required but not offered", tlsMode: "starttls"},
		{name: "untrusted certificate", tlsMode: "starttls",
			server: mailtest.Config{TLS: serverTLS}},
		{name: "wrong password is configuration, retried", tlsMode: "starttls",
			server:   mailtest.Config{TLS: serverTLS, User: "k", Password: "right"},
			opts:     []mail.SenderOption{mail.WithTLSConfig(clientTLS)},
			password: "wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.server)
			srv.SetReplies(tt.rcptErr, tt.dataErr)
			rawURL := srv.URL(tt.tlsMode)
			if tt.password != "" {
				rawURL = strings.Replace(rawURL, ":"+tt.server.Password+"@", ":"+tt.password+"@", 1)
			}
			sender := newSender(t, rawURL, tt.opts...)
			msg := activation(t, "carol@example.org")
			if tt.msg != nil {
				msg = tt.msg(msg)
			}

			err := sender.Send(context.Background(), msg)
			if err == nil {
				t.Fatal("Send: got no error, want one")
			}
			if got := mail.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("got %d messages stored by the server, want 0", n)
			}
		})
	}
}

func TestSMTPSenderServerDown(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Config{})
	srv.Stop()
	sender := newSender(t, srv.URL("none"))

	err := sender.Send(context.Background(), activation(t, "dan@example.org"))
	if err == nil {
		t.Fatal("Send to a stopped server: got no error, want one")
	}
	if mail.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}
}

func TestSMTPSenderHonoursContext(t *testing.T) {
	// A server that accepts the connection and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()

	// With an hour of I/O timeout only the context can end the send.
	sender := newSender(t, "smtp://"+ln.Addr().String()+"?tls=none", mail.WithIOTimeout(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sender.Send(ctx, activation(t, "erin@example.org")) }()

	conn := <-accepted
	t.Cleanup(func() { _ = conn.Close() })
	cancel()

	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want context.Canceled", err)
		}
		if mail.IsPermanent(err) {
			t.Errorf("IsPermanent(%v) = true, want false", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send did not return within 30s of its context being cancelled")
	}
}

func TestNewSMTPSenderRejectsBadFrom(t *testing.T) {
	cfg := mail.SMTPConfig{Host: "127.0.0.1", Port: 25, TLS: mail.TLSNone}
	tests := []struct{ name, from string }{
		{"empty", ""},
		{"no at sign", "Keeper <no-reply>"},
		{"garbage", "<<>>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mail.NewSMTPSender(cfg, tt.from); err == nil {
				t.Errorf("NewSMTPSender(from %q): got no error, want one", tt.from)
			}
		})
	}
}

func TestWithTLSConfigKeepsCopy(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Config{})
	c := &tls.Config{MinVersion: tls.VersionTLS10}
	sender := newSender(t, srv.URL("none"), mail.WithTLSConfig(c))
	if err := sender.Send(context.Background(), activation(t, "f@example.org")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if c.ServerName != "" || c.MinVersion != tls.VersionTLS10 {
		t.Errorf("got caller's config changed to %q/%x, want it untouched", c.ServerName, c.MinVersion)
	}
}
