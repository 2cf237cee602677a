package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/mail"
	"github.com/keeperhq/keeper/sqlite"
)

// serve loads the configuration, builds the application and serves until ctx ends. It
// listens before it opens anything, so that a port in use stops it in one line and
// before it creates files.
func serve(ctx context.Context, args []string, env map[string]string, stderr io.Writer) error {
	cfg, err := loadConfig(env, args)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.source("KEEPER_ADDR"), err)
	}
	defer ln.Close()

	// Log lines are written in batches; warnings and errors, and whatever is left at
	// exit, are flushed at once.
	out := logging.NewBufferedWriter(stderr, 64<<10, 200*time.Millisecond)
	defer out.Close()
	log, err := logging.New(out, cfg.LogFormat, cfg.logLevel)
	if err != nil {
		return err
	}

	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.close()
	return app.serve(ctx, ln)
}

// app is a configured Keeper: its stores, services and HTTP handler.
type app struct {
	cfg     config
	log     *slog.Logger
	db      *sqlite.DB
	worker  *mail.Worker
	handler http.Handler
}

// newApp opens the database and wires the services and the HTTP layer together.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	log.Info("starting keeper", cfg.logValue()...)

	db, err := sqlite.Open(ctx, cfg.sqlitePath)
	if err != nil {
		return nil, fmt.Errorf("%s: open database %s: %w", cfg.sqliteVar, cfg.sqlitePath, err)
	}
	a := &app{cfg: cfg, log: log, db: db}

	accounts, jwks, err := a.accounts()
	if err != nil {
		_ = db.Close()
		return nil, err
	}

	var kv keeper.KVStore = sqlite.NewKVStore(db)
	if cfg.CacheBytes > 0 {
		kv = kvcache.New(kv, cfg.CacheBytes)
	}
	a.handler = httpapi.New(httpapi.Options{
		Logger:        log,
		KV:            kv,
		Ready:         db.Ping,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		MaxValueBytes: cfg.MaxValueBytes,

		MaxInflightBodyBytes: cfg.MaxInflightBodyBytes,
		Accounts:             accounts,
		JWKS:                 jwks,
		KVWriteAuth:          cfg.KVWrite == "authenticated",
		RateLimits: httpapi.RateLimits{
			PerIPPerMinute:    cfg.RateLimitIP,
			PerEmailPerHour:   cfg.RateLimitEmail,
			TrustForwardedFor: cfg.TrustProxy,
		},
	})
	return a, nil
}

// accounts builds the account service: signing keys, password hasher, mail delivery.
func (a *app) accounts() (*auth.Service, []byte, error) {
	keys, err := a.loadKeys()
	if err != nil {
		return nil, nil, err
	}
	jwks, err := keys.JWKS()
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %w", err)
	}

	sender, err := a.mailer()
	if err != nil {
		return nil, nil, err
	}
	templates, err := mail.NewTemplates()
	if err != nil {
		return nil, nil, fmt.Errorf("mail templates: %w", err)
	}
	a.worker = mail.NewWorker(sqlite.NewOutbox(a.db), sender, a.log, mail.WorkerConfig{
		BaseDelay:    a.cfg.MailRetryBase,
		MaxDelay:     a.cfg.MailRetryMax,
		MaxAttempts:  a.cfg.MailMaxAttempts,
		PollInterval: a.cfg.MailPollInterval,
	})

	hasher := auth.NewHasher(auth.DefaultParams(), a.cfg.HashConcurrency)
	tokens := auth.NewTokens(keys, a.cfg.JWTIssuer, a.cfg.JWTAudience, a.cfg.AccessTokenTTL)
	svc := auth.NewService(sqlite.NewAccountStore(a.db), hasher, tokens, templates,
		a.worker.Notify, a.log, auth.Config{
			PublicURL:     a.cfg.PublicURL,
			ActivationTTL: a.cfg.ActivationTTL,
			ResetTTL:      a.cfg.ResetTTL,
			RefreshTTL:    a.cfg.RefreshTokenTTL,
		})
	return svc, jwks, nil
}

// loadKeys reads the token signing keys. Outside production a missing key file is
// created, so that a fresh clone runs with no set-up; production must name one.
func (a *app) loadKeys() (*auth.KeySet, error) {
	if a.cfg.Stage == stageProduction {
		keys, err := auth.LoadKeys(a.cfg.JWTKeyFile)
		if err != nil {
			return nil, fmt.Errorf("KEEPER_JWT_KEY_FILE: %w", err)
		}
		return keys, nil
	}

	keys, created, err := auth.LoadOrCreateKeys(a.cfg.JWTKeyFile)
	if err != nil {
		return nil, fmt.Errorf("KEEPER_JWT_KEY_FILE: %w", err)
	}
	if created {
		a.log.Info("created a signing key", "file", a.cfg.JWTKeyFile,
			"kid", keys.SigningKeyID())
	}
	return keys, nil
}

// mailer returns the SMTP sender when one is configured, else the development sender
// that writes .eml files.
func (a *app) mailer() (keeper.Mailer, error) {
	if a.cfg.SMTPURL == "" {
		dev, err := mail.NewDevSender(a.cfg.MailDir, a.log).WithFrom(a.cfg.MailFrom)
		if err != nil {
			return nil, fmt.Errorf("KEEPER_MAIL_FROM: %w", err)
		}
		return dev, nil
	}
	s, err := mail.NewSMTPSender(a.cfg.smtp, a.cfg.MailFrom)
	if err != nil {
		return nil, fmt.Errorf("KEEPER_SMTP_URL: %w", err)
	}
	return s, nil
}

// serve answers HTTP on ln until ctx ends, then lets in-flight requests finish within
// the shutdown timeout.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	// The mail worker outlives the HTTP server by the shutdown step, so that mail a
	// last request queued can still be picked up; anything left stays queued for the
	// next start.
	wctx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		_ = a.worker.Run(wctx)
	}()
	defer func() {
		stopWorker()
		<-workerDone
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("listening", "addr", ln.Addr().String(), "url", a.cfg.PublicURL)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// close releases what newApp opened.
func (a *app) close() {
	if err := a.db.Close(); err != nil {
		a.log.Error("close database", "error", err.Error())
	}
}
