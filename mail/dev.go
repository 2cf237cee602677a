package mail

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/logging"
)

// DefaultDevFrom is the sender of messages written by a DevSender unless WithFrom
// changes it.
const DefaultDevFrom = "Keeper <no-reply@keeper.localhost>"

var defaultDevFrom = &netmail.Address{Name: "Keeper", Address: "no-reply@keeper.localhost"}

// DevSender "delivers" mail in development by writing each message, exactly as the SMTP
// sender would transmit it, to a .eml file that any mail client opens. It is safe for
// concurrent use.
type DevSender struct {
	dir    string
	from   *netmail.Address
	logger *slog.Logger
}

var _ keeper.Mailer = (*DevSender)(nil)

// NewDevSender returns a sender that writes messages into dir, creating it when needed.
// A nil logger means slog.Default().
func NewDevSender(dir string, logger *slog.Logger) *DevSender {
	if logger == nil {
		logger = slog.Default()
	}
	return &DevSender{dir: dir, from: defaultDevFrom, logger: logger}
}

// WithFrom returns a copy of the sender that uses from as the sender of every message,
// so that development mail looks like production mail.
func (d *DevSender) WithFrom(from string) (*DevSender, error) {
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	c := *d
	c.from = addr
	return &c, nil
}

// Send writes m to <dir>/<UTC time>-<id>.eml with mode 0600 and logs where it went. The
// file appears complete or not at all. The log line holds the masked recipient, never the
// body, since the body carries single-use links.
func (d *DevSender) Send(ctx context.Context, m keeper.Message) error {
	now := time.Now()
	msg, err := compose(d.from, m, now, gomail.NoEncoding)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o750); err != nil {
		return fmt.Errorf("dev mail dir: %w", err)
	}

	name := now.UTC().Format("20060102T150405.000000000Z") + "-" + m.ID + ".eml"
	path := filepath.Join(d.dir, name)
	if err := writeAtomic(path, msg.WriteTo); err != nil {
		return fmt.Errorf("dev mail %s: %w", m.ID, err)
	}

	d.logger.InfoContext(ctx, "mail written",
		"id", m.ID, "to", logging.MaskEmail(m.To), "subject", m.Subject, "path", path)
	return nil
}

// writeAtomic writes through a temporary file in the same directory and renames it into
// place, so that a reader watching the directory never opens half a message.
func writeAtomic(path string, write func(w io.Writer) (int64, error)) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.eml")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after a successful rename: no-op

	// CreateTemp makes the file 0600: the message holds a single-use link.
	if _, err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
