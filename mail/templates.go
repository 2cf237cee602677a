package mail

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/keeperhq/keeper"
)

// Product is the name the messages sign with.
const Product = "Keeper"

//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

// Subjects of the account messages. They hold no user input, so nothing a user types can
// reach a header.
const (
	SubjectActivation        = "Activate your Keeper account"
	SubjectAlreadyRegistered = "Someone tried to register with your email address"
	SubjectPasswordReset     = "Reset your Keeper password"
)

// Templates renders the messages the account service sends. Create it with NewTemplates;
// it is safe for concurrent use.
type Templates struct {
	activation        pair
	alreadyRegistered pair
	passwordReset     pair
}

// pair is one message's text and HTML template.
type pair struct {
	subject string
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templateData is what every template sees. Name and the links come from outside:
// html/template escapes them, text bodies print them as they are.
type templateData struct {
	Product  string
	Subject  string
	Name     string
	Link     string
	TTL      string
	LoginURL string
	ResetURL string
}

// NewTemplates parses the embedded templates and renders each once with sample data, so
// that a broken template fails at start rather than in a request.
func NewTemplates() (*Templates, error) {
	var t Templates
	var err error
	if t.activation, err = parsePair("activation", SubjectActivation); err != nil {
		return nil, err
	}
	t.alreadyRegistered, err = parsePair("already_registered", SubjectAlreadyRegistered)
	if err != nil {
		return nil, err
	}
	if t.passwordReset, err = parsePair("password_reset", SubjectPasswordReset); err != nil {
		return nil, err
	}

	sample := templateData{Name: "Ada", Link: "https://example.com/x", TTL: "1 hour",
		LoginURL: "https://example.com/login", ResetURL: "https://example.com/reset"}
	for _, p := range []pair{t.activation, t.alreadyRegistered, t.passwordReset} {
		if _, _, err := p.render(sample); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

func parsePair(name, subject string) (pair, error) {
	text, err := texttemplate.ParseFS(templateFS, "templates/layout.txt", "templates/"+name+".txt")
	if err != nil {
		return pair{}, fmt.Errorf("mail template %s.txt: %w", name, err)
	}
	html, err := htmltemplate.ParseFS(templateFS,
		"templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return pair{}, fmt.Errorf("mail template %s.html: %w", name, err)
	}
	return pair{subject: subject, text: text, html: html}, nil
}

func (p pair) render(data templateData) (text, html string, err error) {
	data.Product = Product
	data.Subject = p.subject

	var tb, hb bytes.Buffer
	if err := p.text.ExecuteTemplate(&tb, "layout", data); err != nil {
		return "", "", fmt.Errorf("render %q text: %w", p.subject, err)
	}
	if err := p.html.ExecuteTemplate(&hb, "layout", data); err != nil {
		return "", "", fmt.Errorf("render %q html: %w", p.subject, err)
	}
	return tb.String(), hb.String(), nil
}

// message renders p into a new message with a fresh id. NewTemplates has rendered every
// template once, and rendering into a buffer depends on no outside state, so a failure
// here is a programming error.
func (p pair) message(to string, data templateData) keeper.Message {
	text, html, err := p.render(data)
	if err != nil {
		panic(err)
	}
	return keeper.Message{ID: NewMessageID(), To: to, Subject: p.subject, Text: text, HTML: html}
}

// Activation is the message that completes a registration: link activates the account
// and stops working after ttl.
func (t *Templates) Activation(to, name, link string, ttl time.Duration) keeper.Message {
	data := templateData{Name: name, Link: link, TTL: humanDuration(ttl)}
	return t.activation.message(to, data)
}

// AlreadyRegistered is sent instead of creating a second account when someone registers
// with an address that already has one. It tells the owner that someone tried and how to
// log in or reset the password, and nothing else: no account state, no token, nothing
// from the attempt. name must be the owner's stored name, never the name typed in the
// attempt, or a stranger could put words into the owner's mailbox.
func (t *Templates) AlreadyRegistered(to, name, loginURL, resetURL string) keeper.Message {
	data := templateData{Name: name, LoginURL: loginURL, ResetURL: resetURL}
	return t.alreadyRegistered.message(to, data)
}

// PasswordReset carries a link that lets the owner choose a new password; it stops
// working after ttl.
func (t *Templates) PasswordReset(to, name, link string, ttl time.Duration) keeper.Message {
	data := templateData{Name: name, Link: link, TTL: humanDuration(ttl)}
	return t.passwordReset.message(to, data)
}

// NewMessageID returns a random message id (128 bits from crypto/rand) in the form
// keeper.Message.ID expects.
func NewMessageID() string {
	return strings.ToLower(rand.Text())
}

// humanDuration writes a link lifetime the way a person would: "24 hours", "30 minutes".
func humanDuration(d time.Duration) string {
	unit := func(n int64, word string) string {
		if n == 1 {
			return "1 " + word
		}
		return strconv.FormatInt(n, 10) + " " + word + "s"
	}

	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	default:
		return d.Round(time.Second).String()
	}
}
