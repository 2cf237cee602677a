package mail_test

import (
	"context"
	"testing"

	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/mail/mailtest"
)

// BenchmarkSMTPSenderSend measures one delivery (connect, EHLO, MAIL, RCPT, DATA, QUIT)
// to the in-process server over loopback.
func BenchmarkSMTPSenderSend(b *testing.B) {
	srv := mailtest.Start(b, mailtest.Config{})
	cfg, err := mail.ParseSMTPURL(srv.URL("none"))
	if err != nil {
		b.Fatal(err)
	}
	sender, err := mail.NewSMTPSender(cfg, testFrom)
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := mail.NewTemplates()
	if err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		m := tmpl.Activation("bench@example.org", "Bench", testLink, 0)
		if err := sender.Send(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}
