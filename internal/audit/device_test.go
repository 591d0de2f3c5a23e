package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe to read while a device writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDeviceContract runs every device type through the same checks:
// what is written arrives byte for byte, a cancelled write writes
// nothing, and a closed device refuses writes.
func TestDeviceContract(t *testing.T) {
	t.Parallel()
	impls := []struct {
		name string
		typ  string
		open func(t *testing.T) (Device, func() string)
	}{
		{"file", TypeFile, func(t *testing.T) (Device, func() string) {
			path := tempLog(t)
			return newFileDevice(t, path), func() string { b, _ := os.ReadFile(path); return string(b) }
		}},
		{"stdout", TypeStdout, func(t *testing.T) (Device, func() string) {
			var buf lockedBuffer
			return newStdout("file/", TypeStdout, &buf), buf.String
		}},
		{"socket", TypeSocket, func(t *testing.T) (Device, func() string) {
			addr := sockPath(t)
			srv := startServer(t, "unix", addr, true)
			dev, err := NewDevice("file/", TypeSocket, map[string]string{"address": addr, "socket_type": "unix"})
			if err != nil {
				t.Fatal(err)
			}
			return dev, func() string {
				srv.waitLines(t, 3)
				return string(bytes.Join(srv.Lines(), nil))
			}
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			dev, got := impl.open(t)
			if dev.Name() != "file/" || dev.Type() != impl.typ {
				t.Fatalf("Name, Type = %q, %q", dev.Name(), dev.Type())
			}
			ctx := t.Context()
			if err := dev.Write(ctx, []byte("one\n")); err != nil {
				t.Fatal(err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := dev.Write(cancelled, []byte("cancelled\n")); err == nil {
				t.Fatal("a write with a cancelled context succeeded")
			}
			if err := dev.Write(ctx, []byte("two\nthree\n")); err != nil {
				t.Fatal(err)
			}
			if s := got(); s != "one\ntwo\nthree\n" {
				t.Fatalf("device holds %q", s)
			}
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			if err := dev.Write(ctx, []byte("late\n")); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after Close: %v", err)
			}
			dev.Close() // a second Close does no harm
		})
	}
}

func TestNewDeviceErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		typ  string
		opts map[string]string
		want []string // substrings of the error
	}{
		{"unknown type", "syslog", nil, []string{`unknown audit device type "syslog"`, "file, socket or stdout"}},
		{"unknown option", TypeFile, map[string]string{"file_path": filepath.Join(dir, "a"), "log_raw": "true"},
			[]string{`unknown option "log_raw"`, "file_path"}},
		{"no file_path", TypeFile, nil, []string{"file_path is required"}},
		{"missing directory", TypeFile, map[string]string{"file_path": filepath.Join(dir, "no/such/dir/audit.log")},
			[]string{"cannot open file_path for append", "no such file or directory"}},
		{"file_path is a directory", TypeFile, map[string]string{"file_path": dir}, []string{"cannot open file_path for append"}},
		{"bad mode", TypeFile, map[string]string{"file_path": filepath.Join(dir, "a"), "mode": "rw"}, []string{`mode "rw"`}},
		{"bad max_size", TypeFile, map[string]string{"file_path": filepath.Join(dir, "a"), "max_size": "-1"}, []string{`max_size "-1"`}},
		{"every problem at once", TypeFile, map[string]string{"mode": "9", "max_size": "big", "format": "jsonx"},
			[]string{"file_path is required", `mode "9"`, `max_size "big"`, `format "jsonx"`}},
		{"no address", TypeSocket, nil, []string{"address is required"}},
		{"address without port", TypeSocket, map[string]string{"address": "localhost"}, []string{`address "localhost"`, "host:port"}},
		{"bad port", TypeSocket, map[string]string{"address": "localhost:99999"}, []string{"port \"99999\""}},
		{"bad socket_type", TypeSocket, map[string]string{"address": "x:1", "socket_type": "udp"}, []string{`socket_type "udp"`}},
		{"long unix path", TypeSocket, map[string]string{"address": "/" + strings.Repeat("x", 120), "socket_type": "unix"}, []string{"longer than"}},
		{"bad write_timeout", TypeSocket, map[string]string{"address": "x:1", "write_timeout": "soon"}, []string{`write_timeout "soon"`}},
		{"stdout takes no options", TypeStdout, map[string]string{"file_path": "x"}, []string{`unknown option "file_path"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev, err := NewDevice("audit/", tc.typ, tc.opts)
			if err == nil {
				dev.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v is not ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	// Nothing was created for the failed configurations.
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("a failed configuration created its file: %v", err)
	}
}

func TestNewDeviceGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		typ  string
		opts map[string]string
		want string // Type()
	}{
		{TypeFile, map[string]string{"file_path": filepath.Join(dir, "a"), "mode": "0640", "max_size": "1000000", "format": "json"}, TypeFile},
		{TypeFile, map[string]string{"file_path": "stdout"}, TypeFile},
		{TypeStdout, nil, TypeStdout},
		{TypeSocket, map[string]string{"address": "127.0.0.1:9090"}, TypeSocket},
		{TypeSocket, map[string]string{"address": "/run/siem.sock", "socket_type": "unix", "write_timeout": "500ms"}, TypeSocket},
	}
	for _, tc := range tests {
		dev, err := NewDevice("audit/", tc.typ, tc.opts)
		if err != nil {
			t.Errorf("%s %v: %v", tc.typ, tc.opts, err)
			continue
		}
		if dev.Type() != tc.want {
			t.Errorf("%s %v: Type = %s", tc.typ, tc.opts, dev.Type())
		}
		dev.Close()
	}
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("file mode: %v %v", fi.Mode(), err)
	}
}

// TestFileMode: mode applies to a new file and, when given, to an
// existing one; "0000" leaves permissions alone.
func TestFileMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	check := func(want os.FileMode, kv ...string) {
		t.Helper()
		newFileDevice(t, path, kv...).Close()
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("mode %v after %v, want %v (%v)", fi.Mode().Perm(), kv, want, err)
		}
	}
	check(0o600)
	check(0o640, "mode", "0640")
	check(0o640)
	check(0o640, "mode", "0000")
	check(0o604, "mode", "604")
}

// TestFileRotation: at max_size the file is renamed with a time suffix
// and a new one started; RotatedFiles lists them in order.
func TestFileRotation(t *testing.T) {
	t.Parallel()
	path := tempLog(t)
	dev := newFileDevice(t, path, "max_size", "10").(*fileDevice)
	dev.now = newClock().Now
	defer dev.Close()
	for _, s := range []string{"aaaa\n", "bbbb\n", "cccc\n", "a-line-over-the-limit\n", "dd\n"} {
		if err := dev.Write(t.Context(), []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		got = append(got, string(b))
	}
	want := []string{"aaaa\nbbbb\n", "cccc\n", "a-line-over-the-limit\n", "dd\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") || files[len(files)-1] != path {
		t.Fatalf("files %v hold %q", files, got)
	}
	// Files of other names are not part of the log.
	os.WriteFile(path+".1", nil, 0o600)
	os.WriteFile(path+".20250101T000000.000000000Z.gz", nil, 0o600)
	if again, _ := RotatedFiles(path); len(again) != len(files) {
		t.Fatalf("RotatedFiles picked up other files: %v", again)
	}
}
