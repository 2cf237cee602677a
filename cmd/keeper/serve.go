package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/httpapi"
	"github.com/keeperhq/keeper/kvcache"
	"github.com/keeperhq/keeper/logging"
	"github.com/keeperhq/keeper/sqlite"
)

// serve loads the configuration, builds the application and serves until ctx ends.
func serve(ctx context.Context, args []string, env map[string]string, stderr io.Writer) error {
	cfg, err := loadConfig(env, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, cfg.LogFormat, cfg.logLevel)
	if err != nil {
		return err
	}

	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("KEEPER_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	return app.serve(ctx, ln)
}

// app is a configured Keeper: its stores, services and HTTP handler.
type app struct {
	cfg     config
	log     *slog.Logger
	db      *sqlite.DB
	handler http.Handler
}

// newApp opens the database and wires the services and the HTTP layer together.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	log.Info("starting keeper", cfg.logValue()...)

	db, err := sqlite.Open(ctx, cfg.sqlitePath)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.sqlitePath, err)
	}

	var kv keeper.KVStore = sqlite.NewKVStore(db)
	if cfg.CacheBytes > 0 {
		kv = kvcache.New(kv, cfg.CacheBytes)
	}

	handler := httpapi.New(httpapi.Options{
		Logger:        log,
		KV:            kv,
		Ready:         db.Ping,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		MaxValueBytes: cfg.MaxValueBytes,
	})
	return &app{cfg: cfg, log: log, db: db, handler: handler}, nil
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

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
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
