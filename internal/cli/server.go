package cli

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofferhq/coffer/internal/config"
	"github.com/cofferhq/coffer/internal/server"
)

type serverFlags struct {
	configPath   string
	dev          bool
	devListen    string
	devRootToken string
	address      string
	logLevel     string
	logFormat    string
}

func newServerCmd(e *env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a coffer server",
		Long: `Run a coffer server.

  coffer server -dev                  in memory, unsealed, root token printed
  coffer server -config coffer.yaml   production: bbolt storage, TLS, Shamir seal

Flags override the configuration file.`,
		Args: maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, e, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "path to the YAML configuration file")
	fl.BoolVar(&f.dev, "dev", false, "dev mode: in-memory, unsealed, root token printed; never for production")
	fl.StringVar(&f.devListen, "dev-listen-address", "127.0.0.1:8200", "dev mode listen address")
	fl.StringVar(&f.devRootToken, "dev-root-token-id", "", "dev mode root token (default: random)")
	fl.StringVar(&f.address, "listen-address", "", "listener address (overrides listener.address)")
	fl.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error (overrides log.level)")
	fl.StringVar(&f.logFormat, "log-format", "", "log format: text or json (overrides log.format)")
	return cmd
}

func runServer(cmd *cobra.Command, e *env, f *serverFlags) error {
	var file *config.File
	switch {
	case f.dev:
		file = &config.File{
			Storage:  config.StorageFile{Inmem: &config.InmemFile{}},
			Listener: config.ListenerFile{Address: f.devListen, TLS: config.TLSFile{Disable: true}},
		}
		if !config.IsLoopback(f.devListen) {
			return usagef("-dev-listen-address %q: dev mode serves plain HTTP and only listens on loopback", f.devListen)
		}
	case f.configPath != "":
		var err error
		if file, err = config.Load(f.configPath); err != nil {
			return err
		}
	default:
		return usagef("give -config FILE, or -dev for a throwaway dev server")
	}
	if f.address != "" {
		file.Listener.Address = f.address
	}
	if f.logLevel != "" {
		file.Log.Level = f.logLevel
	}
	if f.logFormat != "" {
		file.Log.Format = f.logFormat
	}
	cfg, err := file.Validate()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	logger := newLogger(e, cfg)
	ctx := cmd.Context()
	if path := e.getenv("COFFER_CPU_PROFILE"); path != "" {
		// A developer aid for profiling the server under `coffer bench`.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		return err
	}
	if f.dev {
		tok, key, err := srv.DevSetup(ctx, f.devRootToken)
		if err != nil {
			srv.Close()
			return err
		}
		fmt.Fprintf(e.stdout, `coffer dev server: in memory, unsealed. Do not run dev mode in production.

    export COFFER_ADDR='http://%s'
    export VAULT_ADDR='http://%s'

Unseal Key: %s
Root Token: %s

`, srv.Addr(), srv.Addr(), key, tok)
	}
	return srv.Run(ctx)
}

func newLogger(e *env, cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}
