// Package server is coffer's composition root: it opens storage, builds
// the core with every engine and auth method this build has, serves the
// HTTP API and shuts down cleanly.
//
//	storage -> barrier -> seal -> core -> engines -> httpapi -> listener
//
// Engines and auth methods are listed here explicitly; there is no
// registration by init().
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cofferhq/coffer/internal/auth/jwt"
	"github.com/cofferhq/coffer/internal/auth/kubernetes"
	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/kv"
	"github.com/cofferhq/coffer/internal/engine/transit"
	"github.com/cofferhq/coffer/internal/httpapi"
	"github.com/cofferhq/coffer/internal/metrics"
	"github.com/cofferhq/coffer/internal/storage"
	"github.com/cofferhq/coffer/internal/storage/bolt"
	"github.com/cofferhq/coffer/internal/storage/inmem"
)

// Version is the server version reported by the API.
var Version = "0.1.0"

// Engines lists the secrets engine types this build serves.
func Engines() map[string]core.Factory {
	return map[string]core.Factory{
		"kv":      kv.New,
		"transit": transit.New,
	}
}

// AuthMethods lists the auth method types this build serves.
func AuthMethods() map[string]core.Factory {
	return map[string]core.Factory{
		"kubernetes": kubernetes.New,
		"jwt":        jwt.New,
		"oidc":       jwt.New,
	}
}

// DevOptions turn on dev mode: in memory, initialised, unsealed, with a
// kv-v2 mount at secret/.
type DevOptions struct {
	Enabled     bool
	RootTokenID string
	// Out receives the dev banner (root token and unseal key).
	Out io.Writer
}

// Server is one running coffer server.
type Server struct {
	cfg    *config.Config
	logger *slog.Logger
	phys   storage.Backend
	core   *core.Core
	http   *http.Server
	ln     net.Listener
}

// New opens storage and builds the core; it does not listen yet.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var phys storage.Backend
	switch cfg.StorageType {
	case "bolt":
		b, err := bolt.Open(cfg.BoltPath, bolt.Options{Logger: logger.With("subsystem", "storage")})
		if err != nil {
			return nil, err
		}
		phys = b
	case "inmem":
		phys = inmem.New()
	default:
		return nil, fmt.Errorf("unknown storage type %q", cfg.StorageType)
	}
	var m *metrics.Metrics
	c, err := core.New(core.Config{
		Metrics:                func() ([]byte, string, error) { return m.Expose() },
		UnauthenticatedMetrics: cfg.UnauthenticatedMetrics,
		Physical:               phys,
		StorageType:            cfg.StorageType,
		Logger:                 logger.With("subsystem", "core"),
		Engines:                Engines(),
		AuthMethods:            AuthMethods(),
		Version:                Version,
		ClusterName:            cfg.ClusterName,
		DefaultLeaseTTL:        cfg.DefaultLeaseTTL,
		MaxLeaseTTL:            cfg.MaxLeaseTTL,
		APIAddr:                cfg.APIAddr,
	})
	if err != nil {
		closeStorage(phys)
		return nil, err
	}
	m = metrics.New(c.MetricsSnapshot)
	s := &Server{cfg: cfg, logger: logger, phys: phys, core: c}
	// No ServeMux: it would clean and redirect paths such as a/../b that
	// the API must refuse instead.
	mux := httpapi.New(c, httpapi.Options{MaxRequestSize: cfg.MaxRequestSize, Logger: logger.With("subsystem", "http"), Observer: m})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return s, nil
}

// Core returns the server's core (tests and dev setup use it).
func (s *Server) Core() *core.Core { return s.core }

// DevSetup initialises and unseals a dev server and mounts secret/.
// It returns the root token and the unseal key (base64).
func (s *Server) DevSetup(ctx context.Context, rootTokenID string) (rootToken, unsealKey string, err error) {
	res, key, err := s.core.Initialize(ctx, core.InitRequest{SecretShares: 1, SecretThreshold: 1}, rootTokenID)
	if err != nil {
		return "", "", fmt.Errorf("dev: init: %w", err)
	}
	defer clear(key)
	if err := s.core.UnsealWithKey(ctx, key); err != nil {
		return "", "", fmt.Errorf("dev: unseal: %w", err)
	}
	if err := s.core.Mount(ctx, "mounts", "secret", core.MountInput{Type: "kv", Description: "key/value secret storage", Options: map[string]string{"version": "2"}}); err != nil {
		return "", "", fmt.Errorf("dev: mount secret/: %w", err)
	}
	return res.RootToken, res.KeysBase64[0], nil
}

// Listen binds the listener (TLS unless disabled).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Address, err)
	}
	if !s.cfg.TLSDisable {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   s.cfg.TLSMinVersion,
			NextProtos:   []string{"h2", "http/1.1"},
		})
	} else if !config.IsLoopback(s.cfg.Address) {
		s.logger.Warn("TLS is disabled on a non-loopback address: tokens and secrets cross the network in plain text", "address", s.cfg.Address)
	}
	s.ln = ln
	return nil
}

// Addr is the bound listener address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then stops accepting, lets in-flight
// requests finish (up to the shutdown timeout), seals and closes storage.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.logger.Info("coffer server listening", "address", s.ln.Addr().String(), "tls", !s.cfg.TLSDisable, "storage", s.cfg.StorageType)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case serveErr = <-errc:
			break loop
		case <-hup:
			// Log rotation: file audit devices reopen their paths.
			if err := s.core.ReopenAudit(); err != nil {
				s.logger.Error("SIGHUP: reopen audit devices", "error", err)
			} else {
				s.logger.Info("SIGHUP: audit devices reopened")
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := s.http.Shutdown(sctx); err != nil {
		s.logger.Warn("shutdown: in-flight requests did not finish in time", "error", err)
	}
	s.core.Seal()
	closeStorage(s.phys)
	s.logger.Info("coffer server stopped", "took", time.Since(start).Round(time.Millisecond))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// Close releases storage without serving (for callers that never Run).
func (s *Server) Close() {
	s.core.Seal()
	if s.ln != nil {
		s.ln.Close()
	}
	closeStorage(s.phys)
}

func closeStorage(b storage.Backend) {
	if c, ok := b.(storage.Closer); ok {
		_ = c.Close()
	}
}
