package main

import (
	"bytes"
	"context"
	"io"
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
			_, err := loadConfig(tc.env, tc.args, io.Discard)
			if err == nil {
				t.Fatalf("got no error, want one starting %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want it to start with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error shows a password: %q", err)
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
			cfg, err := loadConfig(tc.env, nil, io.Discard)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.LogFormat != tc.wantFormat || cfg.KVWrite != tc.wantKVWrite ||
				cfg.PublicURL != tc.wantPublicURL {
				t.Errorf("got format %s, kv write %s, public url %s; want %s, %s, %s",
					cfg.LogFormat, cfg.KVWrite, cfg.PublicURL,
					tc.wantFormat, tc.wantKVWrite, tc.wantPublicURL)
			}
			if cfg.sqlitePath != "data/keeper.db" {
				t.Errorf("database: got %s, want data/keeper.db", cfg.sqlitePath)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"KEEPER_ADDR": "127.0.0.1:1111", "KEEPER_LOG_LEVEL": "debug"}
	cfg, err := loadConfig(env, []string{"-addr", "127.0.0.1:2222",
		"-database-url", "sqlite:/tmp/x.db"}, io.Discard)
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := with(map[string]string{"KEEPER_DATA_DIR": t.TempDir()})
			for k, v := range tc.env {
				env[k] = v
			}
			code := run(context.Background(), tc.args, env, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit code 0, want non-zero")
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Errorf("stderr: got %q, want exactly one line", stderr.String())
			}
		})
	}
}
