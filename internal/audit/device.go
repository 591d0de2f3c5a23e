package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Device is where records go. Write gets one or more complete record
// lines, each ending in '\n', and either writes all of them or returns an
// error (a device that may have written part of p must make sure the
// next write does not continue the torn line: the file device cuts it
// off, the socket device drops the connection). A Device need not be
// safe for concurrent use: the broker calls Write from one goroutine per
// device. The chain (seq, prev, checkpoints) is kept by the broker, not
// by the device.
type Device interface {
	// Name is the path the device was created for.
	Name() string
	// Type is "file", "socket" or "stdout".
	Type() string
	Write(ctx context.Context, p []byte) error
	Close() error
}

// Resumer is implemented by devices that keep what they wrote (the file
// device), so the broker continues the chain after a restart instead of
// starting a new one.
type Resumer interface {
	// Tail returns the last complete record line (without its newline),
	// or an empty Line when there is none.
	Tail() (Tail, error)
}

// Tail is the end of what a device has kept.
type Tail struct {
	Line []byte // the last complete line, without its newline
	File string // the file it was read from
	// Discarded is the number of bytes of a torn last line (a write cut
	// short by a crash) the device cut off when it opened the file.
	Discarded int64
}

// Reopener is implemented by devices that can reopen their output (the
// file device), for log rotation by an outside tool on SIGHUP.
type Reopener interface {
	Reopen() error
}

// Device types.
const (
	TypeFile   = "file"
	TypeSocket = "socket"
	TypeStdout = "stdout"
)

// DefaultWriteTimeout is the socket device's write_timeout and the
// broker's WriteTimeout when none is set.
const DefaultWriteTimeout = 2 * time.Second

// Errors from NewDevice and the broker.
var (
	// ErrInvalidConfig: a device's type or options are wrong. The error
	// says which and what to do; the device is not enabled.
	ErrInvalidConfig = errors.New("audit: invalid device configuration")
	// ErrFailed: no enabled device accepted a record (fail closed: the
	// request must fail and return nothing).
	ErrFailed = errors.New("audit: no audit device accepted the record")
	// ErrPathInUse: Enable was given a path that is already enabled.
	ErrPathInUse = errors.New("audit: path already in use")
	// ErrNotEnabled: no device is enabled at the path.
	ErrNotEnabled = errors.New("audit: no audit device at this path")
	// ErrClosed: the broker or device is closed.
	ErrClosed = errors.New("audit: closed")
)

// The options each device type takes. Vault's hmac_accessor and log_raw
// are deliberately absent: coffer always HMACs tokens, accessors and
// secret values.
var deviceOptions = map[string][]string{
	TypeFile:   {"file_path", "format", "max_size", "mode"},
	TypeSocket: {"address", "format", "socket_type", "write_timeout"},
	TypeStdout: {"format"},
}

// NewDevice creates the device of type typ for the audit path path from
// Vault-style options:
//
//	file     file_path (required; "stdout" writes to standard output),
//	         mode (octal, default 0600), max_size (bytes; 0 = no rotation)
//	socket   address (required), socket_type ("tcp", the default, or
//	         "unix"), write_timeout (a Go duration, default 2s)
//	stdout   no options
//
// All take format, which must be "json". Every problem is reported at
// once, wrapped in ErrInvalidConfig. A file device opens (creating) its
// file now, so a path that cannot be opened for append is an error here;
// a socket device connects on its first write.
func NewDevice(path, typ string, options map[string]string) (Device, error) {
	known, ok := deviceOptions[typ]
	if !ok {
		return nil, fmt.Errorf("%w: unknown audit device type %q for %q: use file, socket or stdout", ErrInvalidConfig, typ, path)
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(options)) {
		if !slices.Contains(known, k) {
			problems = append(problems, fmt.Sprintf("unknown option %q (a %s device takes %s)", k, typ, strings.Join(known, ", ")))
		}
	}
	if f, ok := options["format"]; ok && f != "json" {
		problems = append(problems, fmt.Sprintf("format %q is not supported: use json", f))
	}
	var dev Device
	var err error
	switch typ {
	case TypeFile:
		dev, err = newFileFromOptions(path, options, &problems)
	case TypeSocket:
		dev, err = newSocketFromOptions(path, options, &problems)
	case TypeStdout:
		if len(problems) == 0 {
			dev = newStdout(path, TypeStdout, os.Stdout)
		}
	}
	if err == nil && len(problems) > 0 {
		if dev != nil {
			dev.Close()
		}
		err = fmt.Errorf("%w for %q: %s", ErrInvalidConfig, path, strings.Join(problems, "; "))
	}
	if err != nil {
		return nil, err
	}
	return dev, nil
}

func newFileFromOptions(path string, options map[string]string, problems *[]string) (Device, error) {
	fp := options["file_path"]
	if fp == "" {
		*problems = append(*problems, "file_path is required (a file to append to, or stdout)")
	}
	var cfg fileConfig
	cfg.mode = 0o600
	if m, ok := options["mode"]; ok {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v > 0o777 {
			*problems = append(*problems, fmt.Sprintf("mode %q is not an octal permission such as 0600", m))
		}
		cfg.mode, cfg.chmod = os.FileMode(v), true
	}
	if s, ok := options["max_size"]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			*problems = append(*problems, fmt.Sprintf("max_size %q is not a size in bytes (0 turns rotation off)", s))
		}
		cfg.maxSize = v
	}
	if len(*problems) > 0 {
		return nil, nil
	}
	if fp == "stdout" {
		return newStdout(path, TypeFile, os.Stdout), nil
	}
	cfg.path = fp
	return openFile(path, cfg)
}

func newSocketFromOptions(path string, options map[string]string, problems *[]string) (Device, error) {
	network := options["socket_type"]
	if network == "" {
		network = "tcp"
	}
	addr := options["address"]
	switch network {
	case "tcp":
		if addr == "" {
			*problems = append(*problems, "address is required (host:port)")
		} else if err := checkTCPAddress(addr); err != nil {
			*problems = append(*problems, fmt.Sprintf("address %q: %v", addr, err))
		}
	case "unix":
		if addr == "" {
			*problems = append(*problems, "address is required (the socket's file path)")
		} else if len(addr) > 107 {
			*problems = append(*problems, fmt.Sprintf("address %q is longer than a unix socket path may be (107 bytes)", addr))
		}
	default:
		*problems = append(*problems, fmt.Sprintf("socket_type %q is not supported: use tcp or unix", network))
	}
	timeout := DefaultWriteTimeout
	if s, ok := options["write_timeout"]; ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			*problems = append(*problems, fmt.Sprintf("write_timeout %q is not a positive duration such as 2s", s))
		}
		timeout = d
	}
	if len(*problems) > 0 {
		return nil, nil
	}
	return newSocket(path, network, addr, timeout), nil
}

// stdoutDevice writes records to standard output (or any writer).
type stdoutDevice struct {
	name, typ string
	mu        sync.Mutex // guards w
	w         io.Writer  // nil once closed
}

func newStdout(name, typ string, w io.Writer) *stdoutDevice {
	return &stdoutDevice{name: name, typ: typ, w: w}
}

func (d *stdoutDevice) Name() string { return d.name }
func (d *stdoutDevice) Type() string { return d.typ }

func (d *stdoutDevice) Write(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return ErrClosed
	}
	if _, err := d.w.Write(p); err != nil {
		return fmt.Errorf("audit: %s: write stdout: %w", d.name, err)
	}
	return nil
}

// Close stops the device; standard output itself stays open.
func (d *stdoutDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.w = nil
	return nil
}

var _ Device = (*stdoutDevice)(nil)
