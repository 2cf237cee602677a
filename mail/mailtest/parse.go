package mailtest

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
)

// maxParts bounds how many body parts Parse reads.
const maxParts = 10

// Parsed is a received message taken apart.
type Parsed struct {
	// Header holds the message headers; Get matches names case-insensitively.
	Header netmail.Header

	// Parts maps each part's media type, such as text/plain or text/html, to its body
	// with the transfer encoding undone and line ends turned into "\n".
	Parts map[string]string
}

// Text returns the text/plain part, or "" when there is none.
func (p Parsed) Text() string { return p.Parts["text/plain"] }

// HTML returns the text/html part, or "" when there is none.
func (p Parsed) HTML() string { return p.Parts["text/html"] }

// Parse reads an RFC 5322 message with a multipart/alternative body, as Keeper sends
// them, and fails the test when the message has another shape or more than ten parts.
func Parse(t testing.TB, data []byte) Parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mailtest: read message: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("mailtest: message Content-Type: %v", err)
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("mailtest: got Content-Type %q, want multipart/alternative", mediaType)
	}

	p := Parsed{Header: msg.Header, Parts: map[string]string{}}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for range maxParts {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("mailtest: next part: %v", err)
		}
		partType, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("mailtest: part Content-Type: %v", err)
		}
		body, err := io.ReadAll(part) // the reader undoes quoted-printable
		if err != nil {
			t.Fatalf("mailtest: read %s part: %v", partType, err)
		}
		p.Parts[partType] = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	t.Fatalf("mailtest: got more than %d parts, want at most %d", maxParts, maxParts)
	return p
}
