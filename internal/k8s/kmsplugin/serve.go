package kmsplugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	kmsapi "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"
)

// Run serves the KMS v2 API on cfg.Socket until ctx ends, together with
// the token manager, the periodic health and key-id check and, when
// configured, the metrics listener. The first of them to fail stops the
// rest. On return the socket is removed, the cache zeroed and the current
// KEK dropped.
func (p *Plugin) Run(ctx context.Context) error {
	ln, err := listenUnix(p.cfg.Socket)
	if err != nil {
		return err
	}
	defer func() {
		p.kek.cur.Store(nil)
		p.cache.purge()
	}()
	tasks := []func(context.Context) error{
		p.tokens.Run,
		p.refreshLoop,
		func(ctx context.Context) error { return p.serveGRPC(ctx, ln) },
	}
	if p.cfg.MetricsAddress != "" {
		mln, err := net.Listen("tcp", p.cfg.MetricsAddress)
		if err != nil {
			ln.Close()
			return fmt.Errorf("kms-plugin: metrics listener: %w", err)
		}
		tasks = append(tasks, func(ctx context.Context) error { return p.serveHTTP(ctx, mln) })
		p.logger.Info("metrics listening", "address", mln.Addr().String())
	}
	p.logger.Info("kms-plugin serving", "socket", p.cfg.Socket, "transit_key", p.key.String(), "auth", p.cfg.Auth.String())
	err = runAll(ctx, tasks...)
	p.logger.Info("kms-plugin stopped", "err", err)
	return err
}

// runAll runs every task until ctx ends or one returns; then it cancels
// the rest, waits for them and returns the first error.
func runAll(ctx context.Context, tasks ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(tasks))
	for _, t := range tasks {
		go func() { errc <- t(ctx) }()
	}
	var first error
	for range tasks {
		err := <-errc
		cancel()
		if first == nil {
			first = err
		}
	}
	return first
}

// refreshLoop checks coffer every Refresh, so the key id follows a
// rotation even when nobody calls Status, and sweeps the cache.
func (p *Plugin) refreshLoop(ctx context.Context) error {
	// The first token may take a moment; check soon after start.
	first := time.NewTimer(200 * time.Millisecond)
	defer first.Stop()
	t := time.NewTicker(p.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-first.C:
		case <-t.C:
		}
		_ = p.check(ctx, true)
		p.cache.sweep()
	}
}

func (p *Plugin) serveGRPC(ctx context.Context, ln net.Listener) error {
	gs := grpc.NewServer(grpc.ConnectionTimeout(p.cfg.Timeout))
	kmsapi.RegisterKeyManagementServiceServer(gs, service.NewGRPCService(p.cfg.Socket, p.cfg.Timeout, p))
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	defer os.Remove(p.cfg.Socket)
	select {
	case err := <-errc:
		return fmt.Errorf("kms-plugin: serve %s: %w", p.cfg.Socket, err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
		<-stopped
	}
	<-errc
	return nil
}

// serveHTTP serves /metrics, /livez (200 while the process serves: a
// liveness probe must not restart the plugin during a coffer outage, or
// the cache is lost) and /readyz (200 when healthy).
func (p *Plugin) serveHTTP(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", p.metrics.handler())
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := p.check(r.Context(), false); err != nil {
			http.Error(w, healthz(err), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("kms-plugin: metrics listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}

// listenUnix listens on path with mode 0600: it binds a temporary name in
// the same directory, sets the mode and renames it into place, so there
// is no moment when others may connect. A stale socket left by a crashed
// plugin is replaced; one that still answers is an error.
func listenUnix(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("kms-plugin: no socket path given")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("kms-plugin: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("kms-plugin: %s exists and is not a socket; remove it or choose another -socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("kms-plugin: another process serves %s; stop it first", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("kms-plugin: remove stale socket: %w", err)
		}
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("kms-plugin: listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("kms-plugin: socket mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("kms-plugin: socket: %w", err)
	}
	return ln, nil
}
