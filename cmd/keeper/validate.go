package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/mail"
)

// validate checks every setting, fills the stage-dependent defaults and refuses, in
// production, the defaults that are only safe on a developer's machine. The error is a
// settingError naming the variable at fault.
func (c *config) validate() error {
	steps := []func() error{
		c.validateStage, c.validateServer, c.validateLogging, c.validateDatabase,
		c.validateLimits, c.validatePublicURL, c.validateMail, c.validateAuth,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (c *config) validateStage() error {
	switch c.Stage {
	case stageDevelopment, stageStaging, stageProduction:
		return nil
	}
	return badSetting("STAGE", "%q is not development, staging or production", c.Stage)
}

func (c *config) validateServer() error {
	if err := checkAddr(c.Addr); err != nil {
		return &settingError{name: "KEEPER_ADDR", err: err}
	}
	return positive("KEEPER_SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
}

// checkAddr accepts host:port where the port is a number from 1 to 65535 and the host
// is empty (every interface), an IP address or a host name. Port 0, any free port, is
// refused: emailed links and clients need to know the port.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port, like 127.0.0.1:8080 or :8080", addr)
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || strings.Trim(port, "0123456789") != "" || n > 65535:
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	case n == 0:
		return fmt.Errorf("%q: port 0 (any free port) is not supported; links and "+
			"clients need a known port", addr)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: %q is not an IP address or host name", addr, host)
	}
	return nil
}

// validHost reports whether host is an IP address or a syntactically valid DNS name.
// Whether the name resolves is left to the listener.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(host) > 253 || strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false // too long, or a malformed IPv4 address such as 10.0.0.256
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
				r == '-') {
				return false
			}
		}
	}
	return true
}

func (c *config) validateLogging() error {
	level, err := logging.ParseLevel(c.LogLevel)
	if err != nil {
		return &settingError{name: "KEEPER_LOG_LEVEL", err: err}
	}
	c.logLevel = level

	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Stage == stageDevelopment {
			c.LogFormat = "text"
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return badSetting("KEEPER_LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	return nil
}

func (c *config) validateDatabase() error {
	switch {
	case c.DatabaseURL == "":
		c.sqlitePath = filepath.Join(c.DataDir, "keeper.db")
		c.sqliteVar = c.source("KEEPER_DATA_DIR")
		c.DatabaseURL = "sqlite:" + c.sqlitePath
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		c.sqlitePath = strings.TrimPrefix(c.DatabaseURL, "sqlite:")
		c.sqliteVar = c.source("KEEPER_DATABASE_URL")
	default:
		return badSetting("KEEPER_DATABASE_URL", "unsupported database %q; use sqlite:PATH",
			redactURL(c.DatabaseURL))
	}

	// The SQLite store needs a file: it refuses in-memory databases and URI names.
	p := c.sqlitePath
	if p == "" || strings.HasPrefix(p, ":memory:") || strings.HasPrefix(p, "file:") {
		return badSetting("KEEPER_DATABASE_URL", "%q does not name a file; use sqlite:PATH",
			c.DatabaseURL)
	}
	return nil
}

// The smallest and largest KEEPER_MAX_BODY_BYTES accepted. The largest keeps the
// derived in-flight budget (8 times it) far from overflowing, and a single body of a
// gigabyte is beyond what a key-value request should carry.
const (
	minBodyBytes = 16 << 10
	maxBodyBytes = 1 << 30
)

func (c *config) validateLimits() error {
	if c.MaxValueBytes < 1 {
		return badSetting("KEEPER_MAX_VALUE_BYTES", "must be positive, got %d",
			c.MaxValueBytes)
	}
	if c.MaxBodyBytes < int64(c.MaxValueBytes) {
		return badSetting("KEEPER_MAX_BODY_BYTES", "%d is below KEEPER_MAX_VALUE_BYTES (%d)",
			c.MaxBodyBytes, c.MaxValueBytes)
	}
	// Below this a valid registration (a 100-character name, a 128-character password,
	// each character escaped) would not fit.
	if c.MaxBodyBytes < minBodyBytes {
		return badSetting("KEEPER_MAX_BODY_BYTES", "must be at least %d, got %d",
			minBodyBytes, c.MaxBodyBytes)
	}
	if c.MaxBodyBytes > maxBodyBytes {
		return badSetting("KEEPER_MAX_BODY_BYTES", "must be at most %d, got %d",
			maxBodyBytes, c.MaxBodyBytes)
	}
	if c.MaxInflightBodyBytes == 0 {
		c.MaxInflightBodyBytes = httpapi.DefaultInflightBodyFactor * c.MaxBodyBytes
	}
	if c.MaxInflightBodyBytes < c.MaxBodyBytes {
		return badSetting("KEEPER_MAX_INFLIGHT_BODY_BYTES",
			"%d is below KEEPER_MAX_BODY_BYTES (%d): a full-size body could never be served",
			c.MaxInflightBodyBytes, c.MaxBodyBytes)
	}
	if c.CacheBytes < 0 {
		return badSetting("KEEPER_CACHE_BYTES", "must be 0 (off) or positive, got %d",
			c.CacheBytes)
	}
	counts := []struct {
		name  string
		value int
	}{
		{"KEEPER_HASH_CONCURRENCY", c.HashConcurrency},
		{"KEEPER_RATE_LIMIT_IP", c.RateLimitIP},
		{"KEEPER_RATE_LIMIT_EMAIL", c.RateLimitEmail},
		{"KEEPER_MAIL_MAX_ATTEMPTS", c.MailMaxAttempts},
	}
	for _, n := range counts {
		if n.value < 1 {
			return badSetting(n.name, "must be at least 1, got %d", n.value)
		}
	}
	return nil
}

func (c *config) validatePublicURL() error {
	if c.PublicURL == "" {
		if c.Stage != stageDevelopment {
			return badSetting("KEEPER_PUBLIC_URL", "required outside development "+
				"(activation and reset links point there)")
		}
		c.PublicURL = devPublicURL(c.Addr)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return badSetting("KEEPER_PUBLIC_URL", "%q is not an absolute http(s) URL",
			c.PublicURL)
	}
	if u.User != nil || strings.ContainsAny(c.PublicURL, "?# ") {
		return badSetting("KEEPER_PUBLIC_URL", "%q: links are built on it, so it takes "+
			"no user, query or fragment", redactURL(c.PublicURL))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return badSetting("KEEPER_PUBLIC_URL", "%q: port %s is not 1-65535",
				redactURL(c.PublicURL), p)
		}
	}
	if c.Stage == stageProduction && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return badSetting("KEEPER_PUBLIC_URL", "production needs https "+
			"(links carry one-time tokens)")
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	return nil
}

// devPublicURL is the development default of KEEPER_PUBLIC_URL: http on the listen
// address, with 127.0.0.1 for a host that names every interface (empty, 0.0.0.0, ::),
// which no browser can open.
func devPublicURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}
	return u.String()
}

func (c *config) validateMail() error {
	if c.MailDir == "" {
		c.MailDir = filepath.Join(c.DataDir, "mail")
	}
	if err := c.validateSMTP(); err != nil {
		return err
	}
	if c.MailFrom == "" {
		c.MailFrom = "Keeper <keeper@localhost>"
	}

	if err := positive("KEEPER_MAIL_RETRY_BASE", c.MailRetryBase); err != nil {
		return err
	}
	if c.MailRetryMax < c.MailRetryBase {
		return badSetting("KEEPER_MAIL_RETRY_MAX", "%s is shorter than "+
			"KEEPER_MAIL_RETRY_BASE (%s)", c.MailRetryMax, c.MailRetryBase)
	}
	return positive("KEEPER_MAIL_POLL_INTERVAL", c.MailPollInterval)
}

func (c *config) validateSMTP() error {
	if c.SMTPURL == "" {
		if c.Stage == stageProduction {
			return badSetting("KEEPER_SMTP_URL", "required in production "+
				"(the development mailer only writes files)")
		}
		return nil
	}
	smtp, err := mail.ParseSMTPURL(c.SMTPURL)
	if err != nil {
		return &settingError{name: "KEEPER_SMTP_URL", err: err}
	}
	if c.Stage == stageProduction && smtp.Insecure() && !isLoopback(smtp.Host) {
		return badSetting("KEEPER_SMTP_URL", "production refuses mail without TLS "+
			"to another host (tls=none or tls=opportunistic)")
	}
	c.smtp = smtp
	if c.MailFrom == "" {
		return badSetting("KEEPER_MAIL_FROM", "required when KEEPER_SMTP_URL is set")
	}
	return nil
}

func (c *config) validateAuth() error {
	switch c.KVWrite {
	case "":
		c.KVWrite = "authenticated"
		if c.Stage == stageDevelopment {
			c.KVWrite = "public"
		}
	case "public", "authenticated":
	default:
		return badSetting("KEEPER_KV_WRITE", "%q is not public or authenticated", c.KVWrite)
	}

	if c.JWTKeyFile == "" {
		if c.Stage == stageProduction {
			return badSetting("KEEPER_JWT_KEY_FILE", "required in production "+
				"(create one with: keeper keygen -out FILE)")
		}
		c.JWTKeyFile = filepath.Join(c.DataDir, "jwt-ed25519.pem")
	}
	if c.JWTIssuer == "" {
		c.JWTIssuer = c.PublicURL
	}
	return c.validateTTLs()
}

// validateTTLs refuses token and link lifetimes under a second, always a slip (15ms for
// 15m): access tokens state their expiry in whole seconds, and no link could be opened
// in time.
func (c *config) validateTTLs() error {
	ttls := []struct {
		name string
		ttl  time.Duration
	}{
		{"KEEPER_ACCESS_TOKEN_TTL", c.AccessTokenTTL},
		{"KEEPER_REFRESH_TOKEN_TTL", c.RefreshTokenTTL},
		{"KEEPER_ACTIVATION_TTL", c.ActivationTTL},
		{"KEEPER_RESET_TTL", c.ResetTTL},
	}
	for _, t := range ttls {
		if t.ttl < time.Second {
			return badSetting(t.name, "must be at least 1s, got %s", t.ttl)
		}
	}
	return nil
}

// positive returns an error naming the variable when d is not above zero.
func positive(name string, d time.Duration) error {
	if d <= 0 {
		return badSetting(name, "must be positive, got %s", d)
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL hides a password in a URL so that it can be logged or shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
