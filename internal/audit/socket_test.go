package audit

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineServer is a real socket peer that collects the lines it reads.
type lineServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns, lines
	conns []net.Conn
	lines [][]byte
}

// startServer listens on addr; read=false accepts and never reads (a
// stalled SIEM).
func startServer(t *testing.T, network, addr string, read bool) *lineServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln}
	t.Cleanup(s.stop)
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			if !read {
				continue
			}
			s.wg.Go(func() {
				sc := bufio.NewScanner(c)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					s.mu.Lock()
					s.lines = append(s.lines, append(bytes.Clone(sc.Bytes()), '\n'))
					s.mu.Unlock()
				}
			})
		}
	})
	return s
}

func (s *lineServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *lineServer) Lines() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.lines...)
}

// waitLines waits until the server has read n lines.
func (s *lineServer) waitLines(t *testing.T, n int) [][]byte {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l := s.Lines(); len(l) >= n {
			return l
		}
	}
	t.Fatalf("server read %d lines, want %d", len(s.Lines()), n)
	return nil
}

// sockPath returns a unix socket path short enough for the 108-byte
// limit, which t.TempDir's long names can pass.
func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

func newSocketDevice(t *testing.T, network, addr, timeout string) *socketDevice {
	t.Helper()
	dev, err := NewDevice("socket/", TypeSocket, map[string]string{"address": addr, "socket_type": network, "write_timeout": timeout})
	if err != nil {
		t.Fatal(err)
	}
	d := dev.(*socketDevice)
	d.minBackoff, d.maxBackoff = 10*time.Millisecond, 50*time.Millisecond
	return d
}

// TestSocketStalledPeer: a peer that accepts and never reads fills the
// socket buffer; writes then fail within the write timeout instead of
// holding the caller, and a file device beside it keeps the record.
func TestSocketStalledPeer(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	addr := sockPath(t)
	startServer(t, "unix", addr, false)
	b := newBroker(t, BrokerOptions{})
	enable(t, b, "socket/", newSocketDevice(t, "unix", addr, timeout.String()))
	path := tempLog(t)
	enable(t, b, "file/", newFileDevice(t, path))

	big := map[string]any{"blob": strings.Repeat("x", 64<<10)}
	var socketFailures int
	for i := 0; socketFailures < 3; i++ {
		if i > 1000 {
			t.Fatal("the stalled peer never stalled a write")
		}
		start := time.Now()
		if err := b.LogRequest(t.Context(), &Entry{Request: &Request{Data: big}}); err != nil {
			t.Fatalf("with a good file device beside it: %v", err)
		}
		if d := time.Since(start); d > 10*timeout {
			t.Fatalf("a record took %v with a write timeout of %v", d, timeout)
		}
		socketFailures = int(b.List()[1].Counters.Failed())
	}
	if err := b.Disable("file/"); err != nil {
		t.Fatal(err)
	}
	// Alone, the stalled device fails records (fail closed), each within
	// the timeout. (After its backoff it reconnects, and the peer, which
	// keeps accepting, takes another socket buffer's worth.)
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("the stalled device alone never failed a record")
		}
		start := time.Now()
		err := b.LogRequest(t.Context(), &Entry{Request: &Request{Data: big}})
		if d := time.Since(start); d > 10*timeout {
			t.Fatalf("a record took %v with a write timeout of %v", d, timeout)
		}
		if errors.Is(err, ErrFailed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	mustVerify(t, path)
}

// TestSocketReconnect: when the peer goes away and comes back, the
// device reconnects and the chain the peer receives has no hole.
func TestSocketReconnect(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			addr := sockPath(t)
			if network == "tcp" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = ln.Addr().String()
				ln.Close()
			}
			srv := startServer(t, network, addr, true)
			b := newBroker(t, BrokerOptions{})
			enable(t, b, "socket/", newSocketDevice(t, network, addr, "1s"))
			log := func() error { return b.LogRequest(t.Context(), &Entry{Request: &Request{Path: "a"}}) }
			for range 3 {
				if err := log(); err != nil {
					t.Fatal(err)
				}
			}
			first := srv.waitLines(t, 3)
			srv.stop()
			time.Sleep(50 * time.Millisecond) // let the close reach the client
			if err := log(); !errors.Is(err, ErrFailed) {
				t.Fatalf("with the peer gone: %v", err)
			}
			srv = startServer(t, network, addr, true)
			deadline := time.Now().Add(10 * time.Second)
			for log() != nil {
				if time.Now().After(deadline) {
					t.Fatal("no reconnect within 10s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for range 2 {
				if err := log(); err != nil {
					t.Fatal(err)
				}
			}
			second := srv.waitLines(t, 3)
			rep, err := VerifyReaders([]Source{
				{Name: "first", R: bytes.NewReader(bytes.Join(first, nil))},
				{Name: "second", R: bytes.NewReader(bytes.Join(second, nil))},
			}, testPub, nil)
			if err != nil || !rep.OK || rep.Records != 6 {
				t.Fatalf("received chain: %+v %v %v", rep, rep.Problem, err)
			}
		})
	}
}
