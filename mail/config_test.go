package mail_test

import (
	"strings"
	"testing"

	"github.com/keeperhq/keeper/mail"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		want     mail.SMTPConfig
		insecure bool
		str      string
	}{
		{
			name: "submission with STARTTLS by default",
			raw:  "smtp://user:s3cret@mail.example.com:587",
			want: mail.SMTPConfig{Host: "mail.example.com", Port: 587,
				Username: "user", Password: "s3cret", TLS: mail.TLSStartTLS},
			str: "smtp://user:xxxxx@mail.example.com:587?tls=starttls",
		},
		{
			name: "default submission port",
			raw:  "smtp://mail.example.com",
			want: mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS},
			str:  "smtp://mail.example.com:587?tls=starttls",
		},
		{
			name: "implicit TLS with default port",
			raw:  "smtps://user:pw@mail.example.com",
			want: mail.SMTPConfig{Host: "mail.example.com", Port: 465,
				Username: "user", Password: "pw", TLS: mail.TLSImplicit},
			str: "smtps://user:xxxxx@mail.example.com:465",
		},
		{
			name:     "local catcher without TLS",
			raw:      "smtp://127.0.0.1:1025?tls=none",
			want:     mail.SMTPConfig{Host: "127.0.0.1", Port: 1025, TLS: mail.TLSNone},
			insecure: true,
			str:      "smtp://127.0.0.1:1025?tls=none",
		},
		{
			name:     "opportunistic STARTTLS",
			raw:      "smtp://relay.internal:25?tls=opportunistic",
			want:     mail.SMTPConfig{Host: "relay.internal", Port: 25, TLS: mail.TLSOpportunistic},
			insecure: true,
			str:      "smtp://relay.internal:25?tls=opportunistic",
		},
		{
			name: "explicit starttls",
			raw:  "smtp://u@h:2525?tls=starttls",
			want: mail.SMTPConfig{Host: "h", Port: 2525, Username: "u", TLS: mail.TLSStartTLS},
			str:  "smtp://u@h:2525?tls=starttls",
		},
		{
			name: "percent-encoded password",
			raw:  "smtp://apikey:p%40ss%3Aword%2F@smtp.example.com",
			want: mail.SMTPConfig{Host: "smtp.example.com", Port: 587,
				Username: "apikey", Password: "p@ss:word/", TLS: mail.TLSStartTLS},
			str: "smtp://apikey:xxxxx@smtp.example.com:587?tls=starttls",
		},
		{
			name:     "IPv6 host",
			raw:      "smtp://[::1]:1025?tls=none",
			want:     mail.SMTPConfig{Host: "::1", Port: 1025, TLS: mail.TLSNone},
			insecure: true,
			str:      "smtp://[::1]:1025?tls=none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mail.ParseSMTPURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseSMTPURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Insecure() != tt.insecure {
				t.Errorf("Insecure() = %v, want %v", got.Insecure(), tt.insecure)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParseSMTPURLErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // part of the error message
	}{
		{"empty", "", "missing scheme"},
		{"no scheme", "mail.example.com:587", "scheme"},
		{"bad scheme", "http://user:topsecret@mail.example.com", `scheme "http"`},
		{"missing host", "smtp://user:topsecret@:587", "missing host"},
		{"opaque", "smtp:mail.example.com", "missing host"},
		{"port not a number", "smtp://user:topsecret@mail.example.com:abc", "port"},
		{"port zero", "smtp://mail.example.com:0", `port "0"`},
		{"port too large", "smtp://user:topsecret@mail.example.com:70000", `port "70000"`},
		{"unknown option", "smtp://mail.example.com?timeout=5s", `unknown option "timeout"`},
		{"bad tls value", "smtp://mail.example.com?tls=yes", `tls="yes"`},
		{"tls twice", "smtp://mail.example.com?tls=none&tls=starttls", "more than once"},
		{"tls with smtps", "smtps://mail.example.com?tls=none", "smtp:// only"},
		{"path", "smtp://mail.example.com/inbox", "path"},
		{"password without user", "smtp://:topsecret@mail.example.com", "user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mail.ParseSMTPURL(tt.raw)
			if err == nil {
				t.Fatalf("ParseSMTPURL(%q): got no error, want one containing %q", tt.raw, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("got error %q, which repeats the password", err)
			}
		})
	}
}
