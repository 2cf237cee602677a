package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

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

	MaxValueBytes int   `env:"KEEPER_MAX_VALUE_BYTES" envDefault:"1048576"`
	MaxBodyBytes  int64 `env:"KEEPER_MAX_BODY_BYTES" envDefault:"8388608"`
	// MaxInflightBodyBytes bounds the request bodies served at once; 0 means 8 times
	// MaxBodyBytes, filled in by validateLimits.
	MaxInflightBodyBytes int64         `env:"KEEPER_MAX_INFLIGHT_BODY_BYTES"`
	CacheBytes           int64         `env:"KEEPER_CACHE_BYTES" envDefault:"67108864"`
	ShutdownTimeout      time.Duration `env:"KEEPER_SHUTDOWN_TIMEOUT" envDefault:"15s"`
	KVWrite              string        `env:"KEEPER_KV_WRITE"`

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

	// Derived by loadConfig and validate.
	flagged    map[string]string // variable -> the flag that overrode it
	sqlitePath string
	sqliteVar  string // the setting that chose sqlitePath, for start-up errors
	logLevel   slog.Level
	smtp       mail.SMTPConfig
}

// settingError is a bad setting: the variable, or the flag that overrode it, and what
// is wrong with its value.
type settingError struct {
	name string
	err  error
}

func (e *settingError) Error() string { return e.name + ": " + e.err.Error() }
func (e *settingError) Unwrap() error { return e.err }

// badSetting returns a settingError for the variable name.
func badSetting(name, format string, args ...any) error {
	return &settingError{name: name, err: fmt.Errorf(format, args...)}
}

// usageError is a mistake on the command line itself, such as an unknown flag.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() + "; see keeper -h" }
func (e usageError) Unwrap() error { return e.err }

// serverFlag is a flag of `keeper serve` and the variable it overrides.
type serverFlag struct {
	name, env, help string
	field           func(*config) *string
}

// serverFlags are the settings a flag can override. Each help names its variable.
var serverFlags = []serverFlag{
	{"addr", "KEEPER_ADDR", "listen address, `host:port`",
		func(c *config) *string { return &c.Addr }},
	{"database-url", "KEEPER_DATABASE_URL",
		"database, `sqlite:PATH`; default keeper.db in KEEPER_DATA_DIR",
		func(c *config) *string { return &c.DatabaseURL }},
	{"log-level", "KEEPER_LOG_LEVEL", "log `level`: debug, info, warn or error",
		func(c *config) *string { return &c.LogLevel }},
	{"log-format", "KEEPER_LOG_FORMAT",
		"log `format`, text or json; default text in development, else json",
		func(c *config) *string { return &c.LogFormat }},
	{"public-url", "KEEPER_PUBLIC_URL",
		"`URL` that emailed links point to; default in development http:// and the listen\n" +
			"address, with 127.0.0.1 for a wildcard host",
		func(c *config) *string { return &c.PublicURL }},
}

// newFlagSet returns the flags of `keeper serve`. It reports nothing itself: run prints
// the usage on -h and one line for a mistake.
func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("keeper", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, f := range serverFlags {
		fs.String(f.name, envDefault(f.env), f.help+" ("+f.env+")")
	}
	return fs
}

// loadConfig reads the environment, then the flags in args, and validates the result.
// Every error names the variable or flag at fault; -h gives flag.ErrHelp, and a mistake
// on the command line a usageError.
func loadConfig(environ map[string]string, args []string) (config, error) {
	flagged, err := parseServeFlags(args)
	if err != nil {
		return config{}, err
	}
	cfg, err := fromEnvironment(environ)
	if err != nil {
		return cfg, err
	}

	cfg.flagged = map[string]string{}
	for _, f := range serverFlags {
		if v, ok := flagged[f.name]; ok {
			*f.field(&cfg) = v
			cfg.flagged[f.env] = "-" + f.name
		}
	}

	err = cfg.validate()
	var se *settingError
	if errors.As(err, &se) {
		se.name = cfg.source(se.name)
	}
	return cfg, err
}

// parseServeFlags returns the value of each flag given in args, by flag name.
func parseServeFlags(args []string) (map[string]string, error) {
	fs := newFlagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	given := map[string]string{}
	var blank error
	fs.Visit(func(f *flag.Flag) {
		given[f.Name] = f.Value.String()
		if strings.TrimSpace(given[f.Name]) == "" && blank == nil {
			blank = badSetting("-"+f.Name, "is empty; leave the flag out for the default")
		}
	})
	return given, blank
}

// fromEnvironment fills a config from the variables in environ. A variable that is set
// but blank is refused rather than taken as unset: it is more often a value that went
// missing (an empty ${VAR} in a compose or unit file) than a wish for the default.
func fromEnvironment(environ map[string]string) (config, error) {
	for _, name := range settingNames() {
		if v, ok := environ[name]; ok && strings.TrimSpace(v) == "" {
			return config{}, badSetting(name, "is set but empty; unset it for the default")
		}
	}

	// The default depends on the machine, so it cannot be a tag.
	cfg := config{HashConcurrency: max(2, runtime.GOMAXPROCS(0))}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, envError(err, environ)
	}
	return cfg, nil
}

// settingNames returns the variable of every field of config, in field order.
func settingNames() []string {
	var names []string
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		if name := envName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// envName returns the variable a config field is read from, or "".
func envName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

// envDefault returns the default that config's tags give the variable name, or "".
func envDefault(name string) string {
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		if envName(t.Field(i)) == name {
			return t.Field(i).Tag.Get("envDefault")
		}
	}
	return ""
}

// envError rewrites the env library's error in the user's terms: the variable, its
// value and what kind of value it should be, without Go's parser messages.
func envError(err error, environ map[string]string) error {
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	f, ok := reflect.TypeFor[config]().FieldByName(pe.Name)
	if !ok {
		return err
	}
	name := envName(f)
	value := environ[name]

	switch {
	case pe.Type == reflect.TypeFor[time.Duration]():
		return badSetting(name, "%q is not a duration like 15s, 1m30s or 2h", value)
	case pe.Type.Kind() == reflect.Bool:
		return badSetting(name, "%q is not true or false", value)
	case errors.Is(pe.Err, strconv.ErrRange):
		return badSetting(name, "%q is too large", value)
	default:
		return badSetting(name, "%q is not a whole number", value)
	}
}

// source returns the name of the setting that gave the variable name its value: the
// flag that overrode it, or the variable itself.
func (c *config) source(name string) string {
	if f, ok := c.flagged[name]; ok {
		return f
	}
	return name
}

// logValue lists every setting for the start-up log, secrets masked and durations
// written as 15m0s. Keys are the variables' names without KEEPER_, in lower case.
func (c *config) logValue() []any {
	smtp := "none: development mailer"
	if c.SMTPURL != "" {
		smtp = c.smtp.String() // the password masked
	}
	return []any{
		"stage", c.Stage, "addr", c.Addr, "database_url", c.DatabaseURL,
		"data_dir", c.DataDir, "log_level", c.LogLevel, "log_format", c.LogFormat,
		"public_url", c.PublicURL,
		"max_value_bytes", c.MaxValueBytes, "max_body_bytes", c.MaxBodyBytes,
		"max_inflight_body_bytes", c.MaxInflightBodyBytes,
		"cache_bytes", c.CacheBytes, "shutdown_timeout", c.ShutdownTimeout.String(),
		"kv_write", c.KVWrite,
		"smtp_url", smtp, "mail_from", c.MailFrom, "mail_dir", c.MailDir,
		"mail_retry_base", c.MailRetryBase.String(),
		"mail_retry_max", c.MailRetryMax.String(), "mail_max_attempts", c.MailMaxAttempts,
		"mail_poll_interval", c.MailPollInterval.String(),
		"jwt_key_file", c.JWTKeyFile, "jwt_issuer", c.JWTIssuer,
		"jwt_audience", c.JWTAudience,
		"access_token_ttl", c.AccessTokenTTL.String(),
		"refresh_token_ttl", c.RefreshTokenTTL.String(),
		"activation_ttl", c.ActivationTTL.String(), "reset_ttl", c.ResetTTL.String(),
		"hash_concurrency", c.HashConcurrency,
		"rate_limit_ip_per_min", c.RateLimitIP,
		"rate_limit_email_per_hour", c.RateLimitEmail, "trust_proxy", c.TrustProxy,
	}
}
