// Package servertest starts real coffer server processes for tests: it
// builds the binary once per test binary, writes a configuration file,
// starts the server on a free loopback port and reads its address from
// the JSON log. Nothing here is compiled into coffer itself.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/coffer once and returns the path of the binary.
// COFFER_TEST_BINARY, when set, names a prebuilt binary to use instead.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("COFFER_TEST_BINARY"); p != "" {
			buildPath = p
			return
		}
		dir, err := os.MkdirTemp("", "coffer-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "coffer")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/coffer")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build coffer: %v", buildErr)
	}
	return buildPath
}

// moduleRoot is the coffer module's directory (this file's ../..).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Options describe a server to start.
type Options struct {
	// Dir holds the config and the bolt file; a temp dir when empty.
	Dir string
	// Dev starts `coffer server -dev` with root token "root".
	Dev bool
	// Config, when not empty, replaces DefaultConfig. "{{DIR}}" and
	// "{{ADDR}}" are substituted.
	Config string
	// Args are extra server flags.
	Args []string
	// Env is extra environment.
	Env []string
}

// Process is a running coffer server.
type Process struct {
	Addr string // http://127.0.0.1:port
	Dir  string
	cmd  *exec.Cmd
	opts Options
	t    testing.TB
	addr string // host:port, kept across restarts

	// mu guards logs and out.
	mu   sync.Mutex
	logs bytes.Buffer
	out  bytes.Buffer
	done chan struct{}
}

// Start starts a server and waits until it listens.
func Start(t testing.TB, opts Options) *Process {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	p := &Process{Dir: opts.Dir, opts: opts, t: t}
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// DefaultConfig is the YAML used when Options.Config is empty.
const DefaultConfig = `storage:
  bolt:
    path: {{DIR}}/coffer.db
listener:
  address: {{ADDR}}
  tls:
    disable: true
log:
  format: json
  level: debug
`

func (p *Process) start() {
	t := p.t
	t.Helper()
	bin := Binary(t)
	if p.addr == "" {
		p.addr = FreeAddr(t)
	}
	var args []string
	if p.opts.Dev {
		args = []string{"server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=" + p.addr, "-log-format=json", "-log-level=debug"}
	} else {
		cfg := p.opts.Config
		if cfg == "" {
			cfg = DefaultConfig
		}
		cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{DIR}}", p.Dir), "{{ADDR}}", p.addr)
		path := filepath.Join(p.Dir, "coffer.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"server", "-config", path}
	}
	args = append(args, p.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), p.opts.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &lockedWriter{mu: &p.mu, w: &p.out}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coffer: %v", err)
	}
	p.cmd = cmd
	done := make(chan struct{})
	p.done = done
	addrc := make(chan string, 1)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			if !sent {
				var rec struct {
					Msg     string `json:"msg"`
					Address string `json:"address"`
				}
				if json.Unmarshal(line, &rec) == nil && rec.Msg == "coffer server listening" {
					addrc <- rec.Address
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-logsDone
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case a := <-addrc:
		p.Addr = "http://" + a
	case <-done:
		t.Fatalf("coffer exited before listening:\n%s", p.Logs())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("coffer did not start listening within 60s:\n%s", p.Logs())
	}
}

// FreeAddr returns a loopback address with a port that was free just now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Logs returns everything the server logged since it last started.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stdout returns what the server printed on stdout (the dev banner).
func (p *Process) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the server process.
func (p *Process) Signal(sig os.Signal) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return os.ErrProcessDone
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to 30s, then kills.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil || p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Restart stops the server (SIGKILL when kill, else SIGTERM) and starts
// it again on the same directory and address.
func (p *Process) Restart(kill bool) {
	p.t.Helper()
	if kill {
		p.Kill()
	} else {
		p.Stop()
	}
	p.mu.Lock()
	p.logs.Reset()
	p.mu.Unlock()
	p.start()
}

// Wait waits for the process to exit or ctx to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitCode is the process's exit code once it has exited, else -1.
func (p *Process) ExitCode() int {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
