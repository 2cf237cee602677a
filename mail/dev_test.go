package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/mail/mailtest"
)

func TestDevSenderWritesMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "mail")
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	sender, err := mail.NewDevSender(dir, logger).WithFrom(testFrom)
	if err != nil {
		t.Fatalf("WithFrom: %v", err)
	}
	msg := activation(t, "grace@example.org")

	if err := sender.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("got %d files in %s, want 1 (no temporary file left)", len(entries), dir)
	}
	name := entries[0].Name()
	pattern := `^\d{8}T\d{6}\.\d{9}Z-` + msg.ID + `\.eml$`
	if !regexp.MustCompile(pattern).MatchString(name) {
		t.Errorf("got file name %q, want one matching %s", name, pattern)
	}
	checkMode(t, dir, 0o750)
	path := filepath.Join(dir, name)
	checkMode(t, path, 0o600)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	checkContent(t, data, msg)
	checkDevLog(t, logs.String(), path)

	// A person opens the file in an editor and copies the link: it must stand in the
	// raw file whole, not quoted-printable encoded or folded.
	if !bytes.Contains(data, []byte(testLink+"\r\n")) &&
		!bytes.Contains(data, []byte(testLink+"\n")) {
		t.Errorf("the raw .eml does not hold the link %s on one line:\n%s", testLink, data)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("got mode %o for %s, want %o", got, path, want)
	}
}

// checkDevLog checks that the sender logged one info line that locates the message and
// gives away neither the address nor the link.
func checkDevLog(t *testing.T, logs, path string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), logs)
	}
	line := lines[0]
	for _, want := range []string{`"level":"INFO"`, `"to":"g***@example.org"`,
		`"subject":"` + mail.SubjectActivation + `"`, `"path":"` + path + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("got log line %s, want it to contain %s", line, want)
		}
	}
	for _, secret := range []string{"grace@example.org", "token", "Ab3_", "https://"} {
		if strings.Contains(line, secret) {
			t.Errorf("got log line %s, which contains %q", line, secret)
		}
	}
}

func TestDevSenderDefaultFrom(t *testing.T) {
	dir := t.TempDir()
	sender := mail.NewDevSender(dir, slog.New(slog.DiscardHandler))
	if err := sender.Send(context.Background(), activation(t, "h@example.org")); err != nil {
		t.Fatalf("Send: %v", err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("got %d files (err %v), want 1", len(entries), err)
	}
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	p := mailtest.Parse(t, data)
	if got, want := p.Header.Get("From"), `"Keeper" <no-reply@keeper.localhost>`; got != want {
		t.Errorf("got From %q, want %q (DefaultDevFrom is %q)", got, want, mail.DefaultDevFrom)
	}
}

func TestDevSenderRejectsInvalidMessage(t *testing.T) {
	dir := t.TempDir()
	sender := mail.NewDevSender(dir, slog.New(slog.DiscardHandler))
	msg := activation(t, "i@example.org")
	msg.ID = "../../etc/passwd"

	err := sender.Send(context.Background(), msg)
	if !mail.IsPermanent(err) {
		t.Errorf("got error %v, want a permanent one", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("got %d files, want 0", len(entries))
	}
}

func TestDevSenderWithFromRejectsBadAddress(t *testing.T) {
	_, err := mail.NewDevSender(t.TempDir(), slog.New(slog.DiscardHandler)).WithFrom("nobody")
	if err == nil {
		t.Error("WithFrom(\"nobody\"): got no error, want one")
	}
}
