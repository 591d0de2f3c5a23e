package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

type fileConfig struct {
	path    string
	mode    os.FileMode
	chmod   bool // mode was given: also apply it to an existing file
	maxSize int64
}

// fileDevice appends records to a file, rotating it at maxSize.
type fileDevice struct {
	name string
	cfg  fileConfig
	now  func() time.Time // names rotated files

	mu        sync.Mutex // guards f, size, closed
	f         *os.File
	size      int64 // bytes in f (regular files only)
	regular   bool  // f is a regular file: size, rotation and tail apply
	closed    bool
	discarded int64 // torn bytes cut off when the file was first opened
}

var (
	_ Device   = (*fileDevice)(nil)
	_ Resumer  = (*fileDevice)(nil)
	_ Reopener = (*fileDevice)(nil)
)

// rotatedSuffix is the time layout of a rotated file's suffix:
// <file_path>.20060102T150405.000000000Z, which sorts in time order.
const rotatedSuffix = "20060102T150405.000000000Z"

func openFile(name string, cfg fileConfig) (*fileDevice, error) {
	if cfg.chmod && cfg.mode == 0 {
		// Vault's mode "0000": leave the permissions alone.
		cfg.mode, cfg.chmod = 0o600, false
	}
	d := &fileDevice{name: name, cfg: cfg, now: time.Now}
	f, err := d.open()
	if err != nil {
		return nil, err
	}
	d.f = f
	if err := d.stat(); err != nil {
		f.Close()
		return nil, err
	}
	if d.regular {
		n, err := cutTornTail(f, d.size)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: %s: repair %s: %w", name, cfg.path, err)
		}
		d.size -= n
		d.discarded = n
	}
	return d, nil
}

// open opens (creating) the configured file for append.
func (d *fileDevice) open() (*os.File, error) {
	f, err := os.OpenFile(d.cfg.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, d.cfg.mode)
	if err != nil {
		return nil, fmt.Errorf("%w for %q: cannot open file_path for append: %v; check that the directory exists and the server may write there",
			ErrInvalidConfig, d.name, err)
	}
	if d.cfg.chmod {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() != d.cfg.mode {
			if err := f.Chmod(d.cfg.mode); err != nil {
				f.Close()
				return nil, fmt.Errorf("audit: %s: chmod %s: %w", d.name, d.cfg.path, err)
			}
		}
	}
	return f, nil
}

func (d *fileDevice) stat() error {
	fi, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %s: stat %s: %w", d.name, d.cfg.path, err)
	}
	d.regular = fi.Mode().IsRegular()
	d.size = 0
	if d.regular {
		d.size = fi.Size()
	}
	return nil
}

// cutTornTail truncates f after its last newline when the file does not
// end in one (a write torn by a crash: the record was never
// acknowledged) and returns the number of bytes cut.
func cutTornTail(f *os.File, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	end, err := lastNewline(f, size)
	if err != nil {
		return 0, err
	}
	if end == size {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	return size - end, nil
}

// lastNewline returns the offset just past the last '\n' in the first
// size bytes of r (0 when there is none).
func lastNewline(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// lastLine returns the last complete line of the first size bytes of r,
// without its newline.
func lastLine(r io.ReaderAt, size int64) ([]byte, error) {
	end, err := lastNewline(r, size)
	if err != nil || end == 0 {
		return nil, err
	}
	start, err := lastNewline(r, end-1)
	if err != nil {
		return nil, err
	}
	line := make([]byte, end-1-start)
	if _, err := r.ReadAt(line, start); err != nil {
		return nil, err
	}
	return line, nil
}

func (d *fileDevice) Name() string { return d.name }

// Inline reports that callers may write records themselves: a regular
// file takes a write into the page cache without blocking on a peer. A
// FIFO or a character device may block, so it goes through the queue.
func (d *fileDevice) Inline() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.regular
}
func (d *fileDevice) Type() string { return TypeFile }

// Write appends p. A write that fails part way is cut off again so the
// file holds only whole records; ENOSPC and every other error fail the
// write.
func (d *fileDevice) Write(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.regular && d.cfg.maxSize > 0 && d.size > 0 && d.size+int64(len(p)) > d.cfg.maxSize {
		if err := d.rotateLocked(); err != nil {
			return err
		}
	}
	n, err := d.f.Write(p)
	if err != nil {
		if n > 0 && d.regular {
			d.f.Truncate(d.size) // best effort: the error below fails the record either way
		}
		return fmt.Errorf("audit: %s: write %s: %w", d.name, d.cfg.path, err)
	}
	d.size += int64(n)
	return nil
}

// rotateLocked renames the file to <path>.<UTC time> and starts a new
// one. The chain continues in the new file.
func (d *fileDevice) rotateLocked() error {
	target := d.cfg.path + "." + d.now().UTC().Format(rotatedSuffix)
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("audit: %s: rotate: %s already exists", d.name, target)
	}
	if err := os.Rename(d.cfg.path, target); err != nil {
		return fmt.Errorf("audit: %s: rotate: %w", d.name, err)
	}
	f, err := d.open()
	if err != nil {
		os.Rename(target, d.cfg.path) // best effort: keep one file, try again next write
		return fmt.Errorf("audit: %s: rotate: %w", d.name, err)
	}
	d.f.Close()
	d.f = f
	return d.stat()
}

// Reopen closes the file and opens file_path again, creating it: after an
// outside tool renamed the file, records go to a new one. The chain
// continues across the two files.
func (d *fileDevice) Reopen() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	f, err := d.open()
	if err != nil {
		return err
	}
	d.f.Close()
	d.f = f
	return d.stat()
}

// Tail returns the last record of the file, or of the newest rotated
// file when the current one is empty (a restart just after rotation).
func (d *fileDevice) Tail() (Tail, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Tail{}, ErrClosed
	}
	t := Tail{File: d.cfg.path, Discarded: d.discarded}
	if !d.regular {
		return t, nil
	}
	var err error
	if d.size > 0 {
		t.Line, err = lastLine(d.f, d.size)
		return t, err
	}
	files, err := RotatedFiles(d.cfg.path)
	if err != nil {
		return t, err
	}
	for _, name := range slices.Backward(files) {
		if name == d.cfg.path {
			continue
		}
		t.File = name
		t.Line, err = fileLastLine(name)
		return t, err
	}
	return t, nil
}

func fileLastLine(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return lastLine(f, fi.Size())
}

func (d *fileDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.f.Close()
}

// RotatedFiles returns the files of a file device's log in chain order:
// the files rotated away at max_size (oldest first), then path itself if
// it exists. Pass them to Verify to check the whole chain.
func RotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list rotated files: %w", err)
	}
	var out []string
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(rotatedSuffix, suffix); err == nil && len(suffix) == len(rotatedSuffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit: list rotated files: %w", err)
	}
	return out, nil
}
