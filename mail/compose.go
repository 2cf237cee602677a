package mail

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"regexp"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/keeperhq/keeper"
)

// validID is what a keeper.Message.ID may hold: it becomes the left part of the
// Message-ID and part of a file name, so only URL-safe characters are allowed.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// parseFrom checks a sender such as "Keeper <no-reply@example.com>".
func parseFrom(from string) (*netmail.Address, error) {
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail from %q: %w", from, err)
	}
	if strings.LastIndexByte(addr.Address, '@') <= 0 {
		return nil, fmt.Errorf("mail from %q: address has no domain", from)
	}
	return addr, nil
}

// messageID returns the Message-ID value (without angle brackets) for a message: the
// message's own id at the sender's domain, so that every retry carries the same one.
func messageID(id string, from *netmail.Address) string {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	return id + "@" + domain
}

// compose turns a keeper.Message into the RFC 5322 message that both senders produce.
// Problems with the message itself are permanent: sending it again cannot help. The
// SMTP path encodes bodies as quoted-printable, which every relay accepts; the
// development path writes them as 8bit so that a person can read the file and copy its
// link, which quoted-printable would break into "=3D" escapes and soft line breaks.
func compose(from *netmail.Address, m keeper.Message, date time.Time,
	enc gomail.Encoding) (*gomail.Msg, error) {
	if err := checkMessage(m); err != nil {
		return nil, permanent(err)
	}

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithEncoding(enc))
	msg.FromMailAddress(from)
	if err := msg.To(m.To); err != nil {
		return nil, permanent(fmt.Errorf("message %s: recipient: %w", m.ID, err))
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(messageID(m.ID, from))
	msg.SetDateWithValue(date)

	switch {
	case m.HTML == "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	case m.Text == "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func checkMessage(m keeper.Message) error {
	if !validID.MatchString(m.ID) {
		return fmt.Errorf("message id %q: want 1-128 letters, digits, '-' or '_'", m.ID)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return fmt.Errorf("message %s: subject has a line break", m.ID)
	}
	if m.Text == "" && m.HTML == "" {
		return fmt.Errorf("message %s: no body", m.ID)
	}
	return nil
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether a Send error means the message can never be delivered, so
// the outbox should give up on it rather than retry:
//   - the message itself is invalid (recipient address, id, subject), or
//   - the server answered RCPT TO, DATA or the end of the data with a 5xx reply.
//
// Everything else is temporary: 4xx replies, refused or timed-out connections, and also
// 5xx replies to the greeting, EHLO, STARTTLS, AUTH or MAIL FROM, because those concern
// Keeper's own configuration (credentials, sender address, TLS) and would fail every
// message alike until an operator fixes it; they are retried until the attempt limit.
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}

	var se *gomail.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Reason {
	case gomail.ErrGetRcpts:
		return true
	case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return se.ErrorCode() >= 500 && se.ErrorCode() < 600
	default:
		return false
	}
}
