package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/mail"
)

// Stages Keeper runs in. Production refuses unsafe defaults.
const (
	stageDevelopment = "development"
	stageStaging     = "staging"
	stageProduction  = "production"
)

// config is Keeper's whole configuration, filled from STAGE, KEEPER_* variables and
// flags, in that order of precedence from lowest to highest.
type config struct {
	Stage       string `env:"STAGE" envDefault:"development"`
	Addr        string `env:"KEEPER_ADDR" envDefault:"127.0.0.1:8080"`
	DatabaseURL string `env:"KEEPER_DATABASE_URL"`
	DataDir     string `env:"KEEPER_DATA_DIR" envDefault:"data"`
	LogLevel    string `env:"KEEPER_LOG_LEVEL" envDefault:"info"`
	LogFormat   string `env:"KEEPER_LOG_FORMAT"`
	PublicURL   string `env:"KEEPER_PUBLIC_URL"`

	MaxValueBytes   int           `env:"KEEPER_MAX_VALUE_BYTES" envDefault:"1048576"`
	MaxBodyBytes    int64         `env:"KEEPER_MAX_BODY_BYTES" envDefault:"8388608"`
	CacheBytes      int64         `env:"KEEPER_CACHE_BYTES" envDefault:"67108864"`
	ShutdownTimeout time.Duration `env:"KEEPER_SHUTDOWN_TIMEOUT" envDefault:"15s"`
	KVWrite         string        `env:"KEEPER_KV_WRITE"`

	SMTPURL          string        `env:"KEEPER_SMTP_URL"`
	MailFrom         string        `env:"KEEPER_MAIL_FROM"`
	MailDir          string        `env:"KEEPER_MAIL_DIR"`
	MailRetryBase    time.Duration `env:"KEEPER_MAIL_RETRY_BASE" envDefault:"30s"`
	MailRetryMax     time.Duration `env:"KEEPER_MAIL_RETRY_MAX" envDefault:"1h"`
	MailMaxAttempts  int           `env:"KEEPER_MAIL_MAX_ATTEMPTS" envDefault:"8"`
	MailPollInterval time.Duration `env:"KEEPER_MAIL_POLL_INTERVAL" envDefault:"5s"`

	JWTKeyFile      string        `env:"KEEPER_JWT_KEY_FILE"`
	JWTIssuer       string        `env:"KEEPER_JWT_ISSUER"`
	JWTAudience     string        `env:"KEEPER_JWT_AUDIENCE" envDefault:"keeper"`
	AccessTokenTTL  time.Duration `env:"KEEPER_ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL time.Duration `env:"KEEPER_REFRESH_TOKEN_TTL" envDefault:"720h"`
	ActivationTTL   time.Duration `env:"KEEPER_ACTIVATION_TTL" envDefault:"24h"`
	ResetTTL        time.Duration `env:"KEEPER_RESET_TTL" envDefault:"1h"`
	HashConcurrency int           `env:"KEEPER_HASH_CONCURRENCY"`

	RateLimitIP    int  `env:"KEEPER_RATE_LIMIT_IP" envDefault:"30"`
	RateLimitEmail int  `env:"KEEPER_RATE_LIMIT_EMAIL" envDefault:"20"`
	TrustProxy     bool `env:"KEEPER_TRUST_PROXY" envDefault:"false"`

	// Derived by validate.
	sqlitePath string
	logLevel   slog.Level
	smtp       mail.SMTPConfig
}

// loadConfig reads the environment, then the flags in args, and validates the result.
// Every error names the variable or flag at fault.
func loadConfig(environ map[string]string, args []string, stderr io.Writer) (config, error) {
	var cfg config
	err := env.ParseWithOptions(&cfg, env.Options{Environment: environ})
	if err != nil {
		return cfg, envError(err)
	}

	// Parse errors come back as one line through run; only -h prints the usage.
	fs := flag.NewFlagSet("keeper", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (KEEPER_ADDR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL,
		"database, sqlite:PATH (KEEPER_DATABASE_URL)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	fs.StringVar(&cfg.PublicURL, "public-url", cfg.PublicURL,
		"URL people reach the server at (KEEPER_PUBLIC_URL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: keeper [flags]   (every setting: see the README)")
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	return cfg, cfg.validate()
}

// envError rewrites the env library's error so that it names the variable, not the
// struct field.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return err
	}
	var pe env.ParseError
	if errors.As(agg.Errors[0], &pe) {
		if f, ok := reflect.TypeOf(config{}).FieldByName(pe.Name); ok {
			return fmt.Errorf("%s: invalid %s value: %v", f.Tag.Get("env"), pe.Type, pe.Err)
		}
	}
	return agg.Errors[0]
}

// validate checks every setting, fills the stage-dependent defaults and refuses, in
// production, the defaults that are only safe on a developer's machine.
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
	return fmt.Errorf("STAGE: %q is not development, staging or production", c.Stage)
}

func (c *config) validateServer() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("KEEPER_ADDR: %q is not host:port", c.Addr)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("KEEPER_SHUTDOWN_TIMEOUT: must be positive, got %s", c.ShutdownTimeout)
	}
	return nil
}

func (c *config) validateLogging() error {
	level, err := logging.ParseLevel(c.LogLevel)
	if err != nil {
		return fmt.Errorf("KEEPER_LOG_LEVEL: %w", err)
	}
	c.logLevel = level

	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Stage == stageDevelopment {
			c.LogFormat = "text"
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("KEEPER_LOG_FORMAT: %q is not text or json", c.LogFormat)
	}
	return nil
}

func (c *config) validateDatabase() error {
	if c.DataDir == "" {
		return errors.New("KEEPER_DATA_DIR: must not be empty")
	}
	switch {
	case c.DatabaseURL == "":
		c.sqlitePath = filepath.Join(c.DataDir, "keeper.db")
		c.DatabaseURL = "sqlite:" + c.sqlitePath
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		c.sqlitePath = strings.TrimPrefix(c.DatabaseURL, "sqlite:")
		if c.sqlitePath == "" {
			return errors.New("KEEPER_DATABASE_URL: sqlite: needs a file path")
		}
	default:
		return fmt.Errorf("KEEPER_DATABASE_URL: unsupported database %q; use sqlite:PATH",
			redactURL(c.DatabaseURL))
	}
	return nil
}

func (c *config) validateLimits() error {
	if c.MaxValueBytes <= 0 {
		return fmt.Errorf("KEEPER_MAX_VALUE_BYTES: must be positive, got %d", c.MaxValueBytes)
	}
	if c.MaxBodyBytes < int64(c.MaxValueBytes) {
		return fmt.Errorf("KEEPER_MAX_BODY_BYTES: %d is below KEEPER_MAX_VALUE_BYTES (%d)",
			c.MaxBodyBytes, c.MaxValueBytes)
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("KEEPER_CACHE_BYTES: must be 0 (off) or positive, got %d",
			c.CacheBytes)
	}
	if c.RateLimitIP <= 0 || c.RateLimitEmail <= 0 {
		return errors.New("KEEPER_RATE_LIMIT_IP and KEEPER_RATE_LIMIT_EMAIL must be positive")
	}
	return nil
}

func (c *config) validatePublicURL() error {
	if c.PublicURL == "" {
		if c.Stage != stageDevelopment {
			return errors.New("KEEPER_PUBLIC_URL: required outside development " +
				"(activation and reset links point there)")
		}
		c.PublicURL = "http://" + c.Addr
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("KEEPER_PUBLIC_URL: %q is not an absolute http(s) URL", c.PublicURL)
	}
	if c.Stage == stageProduction && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return errors.New("KEEPER_PUBLIC_URL: production needs https " +
			"(links carry one-time tokens)")
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	return nil
}

func (c *config) validateMail() error {
	if c.MailDir == "" {
		c.MailDir = filepath.Join(c.DataDir, "mail")
	}
	if c.Stage == stageProduction && c.SMTPURL == "" {
		return errors.New("KEEPER_SMTP_URL: required in production " +
			"(the development mailer only writes files)")
	}
	if c.SMTPURL != "" {
		smtp, err := mail.ParseSMTPURL(c.SMTPURL)
		if err != nil {
			return fmt.Errorf("KEEPER_SMTP_URL: %w", err)
		}
		if c.Stage == stageProduction && smtp.Insecure() && !isLoopback(smtp.Host) {
			return errors.New("KEEPER_SMTP_URL: production refuses mail without TLS " +
				"to another host (tls=none or tls=opportunistic)")
		}
		c.smtp = smtp
		if c.MailFrom == "" {
			return errors.New("KEEPER_MAIL_FROM: required when KEEPER_SMTP_URL is set")
		}
	}
	if c.MailFrom == "" {
		c.MailFrom = "Keeper <keeper@localhost>"
	}
	if c.MailRetryBase <= 0 || c.MailRetryMax < c.MailRetryBase {
		return errors.New("KEEPER_MAIL_RETRY_BASE must be positive and " +
			"KEEPER_MAIL_RETRY_MAX at least as long")
	}
	if c.MailMaxAttempts < 1 {
		return fmt.Errorf("KEEPER_MAIL_MAX_ATTEMPTS: must be at least 1, got %d",
			c.MailMaxAttempts)
	}
	if c.MailPollInterval <= 0 {
		return fmt.Errorf("KEEPER_MAIL_POLL_INTERVAL: must be positive, got %s",
			c.MailPollInterval)
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
		return fmt.Errorf("KEEPER_KV_WRITE: %q is not public or authenticated", c.KVWrite)
	}

	if c.JWTKeyFile == "" {
		if c.Stage == stageProduction {
			return errors.New("KEEPER_JWT_KEY_FILE: required in production " +
				"(create one with: keeper keygen -out FILE)")
		}
		c.JWTKeyFile = filepath.Join(c.DataDir, "jwt-ed25519.pem")
	}
	if c.JWTIssuer == "" {
		c.JWTIssuer = c.PublicURL
	}
	ttls := map[string]time.Duration{
		"KEEPER_ACCESS_TOKEN_TTL":  c.AccessTokenTTL,
		"KEEPER_REFRESH_TOKEN_TTL": c.RefreshTokenTTL,
		"KEEPER_ACTIVATION_TTL":    c.ActivationTTL,
		"KEEPER_RESET_TTL":         c.ResetTTL,
	}
	for name, ttl := range ttls {
		if ttl <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", name, ttl)
		}
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

// logValue lists the effective configuration for the start-up log, secrets masked.
func (c *config) logValue() []any {
	smtp := "(development mailer: files under " + c.MailDir + ")"
	if c.SMTPURL != "" {
		smtp = c.smtp.String()
	}
	return []any{
		"stage", c.Stage, "addr", c.Addr, "database", c.DatabaseURL,
		"public_url", c.PublicURL, "log_level", c.LogLevel, "log_format", c.LogFormat,
		"max_value_bytes", c.MaxValueBytes, "max_body_bytes", c.MaxBodyBytes,
		"cache_bytes", c.CacheBytes, "kv_write", c.KVWrite, "smtp", smtp,
		"mail_from", c.MailFrom, "jwt_key_file", c.JWTKeyFile,
		"access_token_ttl", c.AccessTokenTTL, "refresh_token_ttl", c.RefreshTokenTTL,
		"rate_limit_ip_per_min", c.RateLimitIP, "rate_limit_email_per_hour", c.RateLimitEmail,
		"trust_proxy", c.TrustProxy,
	}
}
