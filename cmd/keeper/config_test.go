package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// prod is a production environment that passes validation; cases change one thing.
func prod() map[string]string {
	return map[string]string{
		"STAGE":               "production",
		"KEEPER_PUBLIC_URL":   "https://keeper.example.com",
		"KEEPER_SMTP_URL":     "smtp://mailer:secret@smtp.example.com:587",
		"KEEPER_MAIL_FROM":    "Keeper <no-reply@example.com>",
		"KEEPER_JWT_KEY_FILE": "/etc/keeper/jwt.pem",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	dev := map[string]string{}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // the start of the error
	}{
		{"bad stage", with(dev, "STAGE", "prod"), nil, "STAGE:"},
		{"bad addr", with(dev, "KEEPER_ADDR", "8080"), nil, "KEEPER_ADDR:"},
		{"bad log level", with(dev, "KEEPER_LOG_LEVEL", "loud"), nil, "KEEPER_LOG_LEVEL:"},
		{"bad log format", with(dev, "KEEPER_LOG_FORMAT", "xml"), nil, "KEEPER_LOG_FORMAT:"},
		{"postgres not yet", with(dev, "KEEPER_DATABASE_URL", "postgres://u:pw@h/db"), nil,
			"KEEPER_DATABASE_URL:"},
		{"empty sqlite path", with(dev, "KEEPER_DATABASE_URL", "sqlite:"), nil,
			"KEEPER_DATABASE_URL:"},
		{"value limit not a number", with(dev, "KEEPER_MAX_VALUE_BYTES", "1MB"), nil,
			"KEEPER_MAX_VALUE_BYTES:"},
		{"value limit zero", with(dev, "KEEPER_MAX_VALUE_BYTES", "0"), nil,
			"KEEPER_MAX_VALUE_BYTES:"},
		{"body below value", with(dev, "KEEPER_MAX_BODY_BYTES", "100"), nil,
			"KEEPER_MAX_BODY_BYTES:"},
		{"body too small for a registration", with(with(dev, "KEEPER_MAX_VALUE_BYTES", "100"),
			"KEEPER_MAX_BODY_BYTES", "200"), nil, "KEEPER_MAX_BODY_BYTES: must be at least"},
		{"body limit too large", with(dev, "KEEPER_MAX_BODY_BYTES", "3000000000000000000"),
			nil, "KEEPER_MAX_BODY_BYTES: must be at most"},
		{"log level with an offset", with(dev, "KEEPER_LOG_LEVEL", "info+8"), nil,
			"KEEPER_LOG_LEVEL:"},
		{"public url ending in ?", with(dev, "KEEPER_PUBLIC_URL", "http://127.0.0.1:8080/?"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"public url ending in #", with(dev, "KEEPER_PUBLIC_URL", "http://127.0.0.1:8080/#"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"public url with a space", with(dev, "KEEPER_PUBLIC_URL", "http://127.0.0.1/a b"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"public url with a bad port", with(dev, "KEEPER_PUBLIC_URL", "http://127.0.0.1:99999"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"in-flight budget below the body limit", with(dev,
			"KEEPER_MAX_INFLIGHT_BODY_BYTES", "1000"), nil,
			"KEEPER_MAX_INFLIGHT_BODY_BYTES:"},
		{"negative cache", with(dev, "KEEPER_CACHE_BYTES", "-1"), nil, "KEEPER_CACHE_BYTES:"},
		{"bad duration", with(dev, "KEEPER_ACCESS_TOKEN_TTL", "soon"), nil,
			"KEEPER_ACCESS_TOKEN_TTL:"},
		{"zero ttl", with(dev, "KEEPER_RESET_TTL", "0s"), nil, "KEEPER_RESET_TTL:"},
		{"bad kv write", with(dev, "KEEPER_KV_WRITE", "open"), nil, "KEEPER_KV_WRITE:"},
		{"bad public url", with(dev, "KEEPER_PUBLIC_URL", "keeper.example.com"), nil,
			"KEEPER_PUBLIC_URL:"},
		{"bad smtp url", with(dev, "KEEPER_SMTP_URL", "ftp://x"), nil, "KEEPER_SMTP_URL:"},
		{"smtp without from", with(dev, "KEEPER_SMTP_URL", "smtp://127.0.0.1:25?tls=none"),
			nil, "KEEPER_MAIL_FROM:"},
		{"bad bool", with(dev, "KEEPER_TRUST_PROXY", "maybe"), nil, "KEEPER_TRUST_PROXY:"},
		{"port too large", with(dev, "KEEPER_ADDR", "127.0.0.1:99999"), nil, "KEEPER_ADDR:"},
		{"port zero", with(dev, "KEEPER_ADDR", "127.0.0.1:0"), nil, "KEEPER_ADDR:"},
		{"negative port", with(dev, "KEEPER_ADDR", "127.0.0.1:-1"), nil, "KEEPER_ADDR:"},
		{"port by name", with(dev, "KEEPER_ADDR", ":http"), nil, "KEEPER_ADDR:"},
		{"bad host", with(dev, "KEEPER_ADDR", "my host:8080"), nil, "KEEPER_ADDR:"},
		{"bad IPv4 host", with(dev, "KEEPER_ADDR", "10.0.0.256:8080"), nil, "KEEPER_ADDR:"},
		{"bad addr flag", dev, []string{"-addr", "127.0.0.1:99999"}, "-addr:"},
		{"blank addr", with(dev, "KEEPER_ADDR", ""), nil, "KEEPER_ADDR:"},
		{"blank data dir", with(dev, "KEEPER_DATA_DIR", " "), nil, "KEEPER_DATA_DIR:"},
		{"blank public url", with(dev, "KEEPER_PUBLIC_URL", ""), nil, "KEEPER_PUBLIC_URL:"},
		{"blank hash concurrency", with(dev, "KEEPER_HASH_CONCURRENCY", ""), nil,
			"KEEPER_HASH_CONCURRENCY:"},
		{"blank flag", dev, []string{"-log-level", ""}, "-log-level:"},
		{"in-memory sqlite", with(dev, "KEEPER_DATABASE_URL", "sqlite::memory:"), nil,
			"KEEPER_DATABASE_URL:"},
		{"public url with a query", with(dev, "KEEPER_PUBLIC_URL", "http://x.example/?a=b"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"hash concurrency zero", with(dev, "KEEPER_HASH_CONCURRENCY", "0"), nil,
			"KEEPER_HASH_CONCURRENCY:"},
		{"hash concurrency negative", with(dev, "KEEPER_HASH_CONCURRENCY", "-1"), nil,
			"KEEPER_HASH_CONCURRENCY:"},
		{"rate limit ip zero", with(dev, "KEEPER_RATE_LIMIT_IP", "0"), nil,
			"KEEPER_RATE_LIMIT_IP:"},
		{"rate limit email zero", with(dev, "KEEPER_RATE_LIMIT_EMAIL", "0"), nil,
			"KEEPER_RATE_LIMIT_EMAIL:"},
		{"negative body limit", with(dev, "KEEPER_MAX_BODY_BYTES", "-1"), nil,
			"KEEPER_MAX_BODY_BYTES:"},
		{"zero shutdown timeout", with(dev, "KEEPER_SHUTDOWN_TIMEOUT", "0s"), nil,
			"KEEPER_SHUTDOWN_TIMEOUT:"},
		{"zero retry base", with(dev, "KEEPER_MAIL_RETRY_BASE", "0s"), nil,
			"KEEPER_MAIL_RETRY_BASE:"},
		{"retry max below base", with(dev, "KEEPER_MAIL_RETRY_MAX", "1s"), nil,
			"KEEPER_MAIL_RETRY_MAX:"},
		{"zero attempts", with(dev, "KEEPER_MAIL_MAX_ATTEMPTS", "0"), nil,
			"KEEPER_MAIL_MAX_ATTEMPTS:"},
		{"negative poll interval", with(dev, "KEEPER_MAIL_POLL_INTERVAL", "-5s"), nil,
			"KEEPER_MAIL_POLL_INTERVAL:"},
		{"ttl under a second", with(dev, "KEEPER_ACCESS_TOKEN_TTL", "15ms"), nil,
			"KEEPER_ACCESS_TOKEN_TTL:"},
		{"negative refresh ttl", with(dev, "KEEPER_REFRESH_TOKEN_TTL", "-1h"), nil,
			"KEEPER_REFRESH_TOKEN_TTL:"},
		{"zero activation ttl", with(dev, "KEEPER_ACTIVATION_TTL", "0s"), nil,
			"KEEPER_ACTIVATION_TTL:"},
		{"unknown flag", dev, []string{"-port", "1"}, "flag provided but not defined"},
		{"stray argument", dev, []string{"serve-now"}, "unexpected argument"},

		{"production needs a public url", with(prod(), "KEEPER_PUBLIC_URL", "<unset>"), nil,
			"KEEPER_PUBLIC_URL:"},
		{"production needs https", with(prod(), "KEEPER_PUBLIC_URL", "http://keeper.example.com"),
			nil, "KEEPER_PUBLIC_URL:"},
		{"production needs smtp", with(prod(), "KEEPER_SMTP_URL", "<unset>"), nil,
			"KEEPER_SMTP_URL:"},
		{"production refuses plain smtp", with(prod(), "KEEPER_SMTP_URL",
			"smtp://smtp.example.com:25?tls=none"), nil, "KEEPER_SMTP_URL:"},
		{"production needs a key file", with(prod(), "KEEPER_JWT_KEY_FILE", "<unset>"), nil,
			"KEEPER_JWT_KEY_FILE:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.env, tc.args)
			if err == nil {
				t.Fatalf("got no error, want one starting %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want it to start with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error shows a password: %q", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got %q, want one line", err)
			}
		})
	}
}

// TestConfigParseErrors checks that a value of the wrong kind is reported in the
// user's terms: the variable, the value and what it should be, no Go parser message.
func TestConfigParseErrors(t *testing.T) {
	cases := []struct {
		name, value, want string
	}{
		{"KEEPER_MAX_VALUE_BYTES", "abc", `KEEPER_MAX_VALUE_BYTES: "abc" is not a whole number`},
		{"KEEPER_RATE_LIMIT_IP", "1.5", `KEEPER_RATE_LIMIT_IP: "1.5" is not a whole number`},
		{"KEEPER_CACHE_BYTES", "99999999999999999999",
			`KEEPER_CACHE_BYTES: "99999999999999999999" is too large`},
		{"KEEPER_SHUTDOWN_TIMEOUT", "x",
			`KEEPER_SHUTDOWN_TIMEOUT: "x" is not a duration like 15s, 1m30s or 2h`},
		{"KEEPER_RESET_TTL", "15",
			`KEEPER_RESET_TTL: "15" is not a duration like 15s, 1m30s or 2h`},
		{"KEEPER_TRUST_PROXY", "maybe", `KEEPER_TRUST_PROXY: "maybe" is not true or false`},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := loadConfig(map[string]string{tc.name: tc.value}, nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cases := []struct {
		name          string
		env           map[string]string
		wantFormat    string
		wantKVWrite   string
		wantPublicURL string
	}{
		{"development", map[string]string{}, "text", "public", "http://127.0.0.1:8080"},
		{"development on every interface", map[string]string{"KEEPER_ADDR": ":18287"},
			"text", "public", "http://127.0.0.1:18287"},
		{"development on 0.0.0.0", map[string]string{"KEEPER_ADDR": "0.0.0.0:18287"},
			"text", "public", "http://127.0.0.1:18287"},
		{"development on [::]", map[string]string{"KEEPER_ADDR": "[::]:18287"},
			"text", "public", "http://127.0.0.1:18287"},
		{"development on IPv6 loopback", map[string]string{"KEEPER_ADDR": "[::1]:18287"},
			"text", "public", "http://[::1]:18287"},
		{"development on a host name", map[string]string{"KEEPER_ADDR": "localhost:18287"},
			"text", "public", "http://localhost:18287"},
		{"staging", map[string]string{"STAGE": "staging",
			"KEEPER_PUBLIC_URL": "https://staging.example.com/"},
			"json", "authenticated", "https://staging.example.com"},
		{"production", prod(), "json", "authenticated", "https://keeper.example.com"},
		{"production on loopback over http", with(prod(), "KEEPER_PUBLIC_URL",
			"http://127.0.0.1:9000", "KEEPER_SMTP_URL", "smtp://127.0.0.1:2525?tls=none"),
			"json", "authenticated", "http://127.0.0.1:9000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(tc.env, nil)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.LogFormat != tc.wantFormat || cfg.KVWrite != tc.wantKVWrite ||
				cfg.PublicURL != tc.wantPublicURL {
				t.Errorf("got format %s, kv write %s, public url %s; want %s, %s, %s",
					cfg.LogFormat, cfg.KVWrite, cfg.PublicURL,
					tc.wantFormat, tc.wantKVWrite, tc.wantPublicURL)
			}
			if cfg.MaxInflightBodyBytes != 8*cfg.MaxBodyBytes {
				t.Errorf("in-flight body budget: got %d, want 8 x %d", cfg.MaxInflightBodyBytes,
					cfg.MaxBodyBytes)
			}
			if cfg.sqlitePath != "data/keeper.db" {
				t.Errorf("database: got %s, want data/keeper.db", cfg.sqlitePath)
			}
		})
	}
}

// TestHashConcurrencyDefault checks that the machine-dependent default applies only
// when the variable is unset.
func TestHashConcurrencyDefault(t *testing.T) {
	cfg, err := loadConfig(map[string]string{}, nil)
	if want := max(2, runtime.GOMAXPROCS(0)); err != nil || cfg.HashConcurrency != want {
		t.Errorf("unset: got %d (error %v), want %d", cfg.HashConcurrency, err, want)
	}
	cfg, err = loadConfig(map[string]string{"KEEPER_HASH_CONCURRENCY": "1"}, nil)
	if err != nil || cfg.HashConcurrency != 1 {
		t.Errorf("set to 1: got %d (error %v), want 1", cfg.HashConcurrency, err)
	}
}

// TestStartupLogListsEverySetting checks the effective settings logged at start: every
// variable, durations written like 15m0s, the SMTP password masked.
func TestStartupLogListsEverySetting(t *testing.T) {
	cfg, err := loadConfig(prod(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting keeper", cfg.logValue()...)
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("the log shows the SMTP password:\n%s", buf.String())
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}

	for _, name := range settingNames() {
		key := strings.ToLower(strings.TrimPrefix(name, "KEEPER_"))
		if !hasKey(line, key) {
			t.Errorf("%s: no %q in the log line %s", name, key, buf.String())
		}
	}
	for key, want := range map[string]any{"access_token_ttl": "15m0s",
		"shutdown_timeout": "15s", "mail_retry_max": "1h0m0s", "reset_ttl": "1h0m0s"} {
		if line[key] != want {
			t.Errorf("%s: got %v, want %v", key, line[key], want)
		}
	}
}

// hasKey reports whether line has key, or key with a unit after it (key_per_min).
func hasKey(line map[string]any, key string) bool {
	for k := range line {
		if k == key || strings.HasPrefix(k, key+"_") {
			return true
		}
	}
	return false
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"KEEPER_ADDR": "127.0.0.1:1111", "KEEPER_LOG_LEVEL": "debug"}
	cfg, err := loadConfig(env, []string{"-addr", "127.0.0.1:2222",
		"-database-url", "sqlite:/tmp/x.db"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2222" || cfg.sqlitePath != "/tmp/x.db" || cfg.LogLevel != "debug" {
		t.Errorf("got addr %s, db %s, level %s", cfg.Addr, cfg.sqlitePath, cfg.LogLevel)
	}
}

// TestRunReportsOneLine checks the CLI contract for bad input: one line on stderr and a
// non-zero exit, before anything is opened.
func TestRunReportsOneLine(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"bad variable", nil, map[string]string{"KEEPER_LOG_LEVEL": "loud"}},
		{"production without settings", nil, map[string]string{"STAGE": "production"}},
		{"seed with zero users", []string{"seed-users", "-n", "0"}, nil},
		{"keygen without -out", []string{"keygen"}, nil},
		{"unknown flag", []string{"-port", "80"}, nil},
		{"unknown seed flag", []string{"seed-users", "-users", "80"}, nil},
		{"seed with a short password", []string{"seed-users", "-n", "2", "-password", "short"},
			nil},
		{"seed with a bad domain", []string{"seed-users", "-n", "2", "-domain", "bad domain"},
			nil},
		{"port out of range", nil, map[string]string{"KEEPER_ADDR": "127.0.0.1:99999"}},
		{"zero hash concurrency", nil, map[string]string{"KEEPER_HASH_CONCURRENCY": "0"}},
		{"unknown command", []string{"x"}, nil},
		{"help for an unknown command", []string{"help", "x"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := with(map[string]string{"KEEPER_DATA_DIR": dir,
				"KEEPER_ADDR": freeAddr(t)})
			for k, v := range tc.env {
				env[k] = v
			}
			code, _, stderr := runKeeper(t, env, tc.args...)
			if code == 0 {
				t.Fatalf("exit code 0, want non-zero")
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Errorf("stderr: got %q, want exactly one line", stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "keeper.db")); err == nil {
				t.Errorf("a database was created, want nothing stored")
			}
		})
	}
}
