package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// GitOptions control the git sources.
type GitOptions struct {
	// Since limits history to commits reachable from HEAD but not from
	// Since (REV..HEAD); a value containing ".." is used as the range
	// itself. Empty means every ref.
	Since string
	// NoSkip, Exclude and KeepPath are as in WalkOptions.
	NoSkip   bool
	Exclude  func(path string) bool
	KeepPath func(path string) bool
}

// maxMemBlob is the largest blob handed over in memory; larger ones are
// streamed from git and consumed inside the callback.
const maxMemBlob = 4 << 20

// ErrGit wraps failures of the git binary that stop a git source.
var ErrGit = errors.New("git")

type blobRef struct {
	sha    [20]byte
	path   string
	commit *Commit
}

// GitHistory calls fn once for every unique blob in the history selected by
// opt, with the first commit (oldest first), author and path that
// introduced it. Missing or corrupt objects are reported to warn and
// skipped.
func GitHistory(ctx context.Context, repo string, opt GitOptions, fn func(Item) error, warn WarnFunc) error {
	blobs, err := gitLogBlobs(ctx, repo, opt, warn)
	if err != nil {
		return err
	}
	for len(blobs) > 0 {
		n, err := catBlobs(ctx, repo, blobs, fn, warn)
		if err != nil {
			return err
		}
		blobs = blobs[n:]
	}
	return nil
}

func gitLogBlobs(ctx context.Context, repo string, opt GitOptions, warn WarnFunc) ([]blobRef, error) {
	args := []string{"-C", repo, "-c", "core.quotePath=false", "log", "--reverse", "-c", "--raw",
		"--no-abbrev", "--no-renames", "--no-color", "-z", "--format=%x01%H%x1f%an%x1f%ae%x1f%aI"}
	switch {
	case opt.Since == "":
		args = append(args, "--all")
	case strings.Contains(opt.Since, ".."):
		args = append(args, opt.Since)
	default:
		args = append(args, opt.Since+"..HEAD")
	}
	args = append(args, "--")
	cmd := exec.CommandContext(ctx, "git", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: log: %v", ErrGit, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start: %v (is git installed?)", ErrGit, err)
	}
	blobs, perr := parseLog(bufio.NewReaderSize(out, 64<<10), opt)
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if werr != nil || perr != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" && perr != nil {
			msg = perr.Error()
		}
		if len(blobs) == 0 {
			return nil, fmt.Errorf("%w: log in %s: %s", ErrGit, repo, msg)
		}
		warn(repo, fmt.Errorf("git log stopped early, history scanned in part: %s", msg))
	}
	return blobs, nil
}

// parseLog reads `git log -z --raw -c` output: records that start with
// \x01 and a header ending in NUL, followed by raw entries
// ":modes shas status\0path\0".
func parseLog(r *bufio.Reader, opt GitOptions) ([]blobRef, error) {
	seen := make(map[[20]byte]bool)
	var blobs []blobRef
	var cur *Commit
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return blobs, nil
		}
		if err != nil {
			return blobs, err
		}
		switch b {
		case '\n', 0:
			continue
		case 1:
			hdr, err := r.ReadString(0)
			if err != nil {
				return blobs, fmt.Errorf("truncated commit header: %w", err)
			}
			f := strings.SplitN(strings.TrimSuffix(hdr, "\x00"), "\x1f", 4)
			for len(f) < 4 {
				f = append(f, "")
			}
			cur = &Commit{Hash: f[0], Author: f[1], Email: f[2], Date: f[3]}
		case ':':
			meta, err := r.ReadString(0)
			if err != nil {
				return blobs, fmt.Errorf("truncated raw entry: %w", err)
			}
			path, err := r.ReadString(0)
			if err != nil {
				return blobs, fmt.Errorf("truncated raw entry: %w", err)
			}
			path = strings.TrimSuffix(path, "\x00")
			sha, ok := newBlob(strings.TrimSuffix(meta, "\x00"))
			if !ok || seen[sha] || cur == nil {
				continue
			}
			seen[sha] = true
			if opt.Exclude != nil && opt.Exclude(path) {
				continue
			}
			keep := opt.KeepPath != nil && opt.KeepPath(path)
			if !opt.NoSkip && !keep && SkipReason(path) != "" {
				continue
			}
			blobs = append(blobs, blobRef{sha: sha, path: path, commit: cur})
		default:
			return blobs, fmt.Errorf("unexpected byte %#x in git log output", b)
		}
	}
}

// newBlob extracts the post-image blob of a raw entry; ok is false for
// deletions, submodules and symlinks.
func newBlob(meta string) (sha [20]byte, ok bool) {
	colons := 0
	for colons < len(meta) && meta[colons] == ':' {
		colons++
	}
	f := strings.Fields(meta[colons:])
	// The reader consumed the first ':'; a commit with p parents has p+1
	// modes (the last is the result), then p+1 shas and a status.
	n := colons + 2
	if len(f) < 2*n+1 {
		return sha, false
	}
	mode, hexSHA := f[n-1], f[2*n-1]
	if !strings.HasPrefix(mode, "100") {
		return sha, false // deleted (000000), symlink (120000), submodule (160000)
	}
	d, err := hex.DecodeString(hexSHA)
	if err != nil || len(d) != 20 {
		return sha, false
	}
	copy(sha[:], d)
	return sha, sha != [20]byte{}
}

// catBlobs streams blobs through one `git cat-file --batch` and returns how
// many it consumed. When git dies on a corrupt object, the object is
// reported and the caller restarts with the rest.
func catBlobs(ctx context.Context, repo string, blobs []blobRef, fn func(Item) error, warn WarnFunc) (int, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "cat-file", "--batch")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("%w: cat-file: %v", ErrGit, err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("%w: cat-file: %v", ErrGit, err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%w: start cat-file: %v", ErrGit, err)
	}
	done := make(chan struct{})
	go func() { // owner: catBlobs waits for it through done
		defer close(done)
		defer in.Close()
		bw := bufio.NewWriter(in)
		for _, b := range blobs {
			if _, err := fmt.Fprintf(bw, "%x\n", b.sha); err != nil {
				return
			}
		}
		_ = bw.Flush()
	}()
	out := bufio.NewReaderSize(outPipe, 64<<10)
	n, ferr := readBlobs(out, blobs, fn, warn)
	if ferr != nil {
		_ = cmd.Process.Kill()
	}
	_, _ = io.Copy(io.Discard, out)
	<-done
	werr := cmd.Wait()
	if ferr != nil {
		var stop errStop
		if errors.As(ferr, &stop) {
			return n, stop.err
		}
		return n, ferr
	}
	if ctx.Err() != nil {
		return n, ctx.Err()
	}
	if n < len(blobs) {
		msg := strings.TrimSpace(stderr.String())
		if werr != nil && msg == "" {
			msg = werr.Error()
		}
		warn(blobs[n].path, fmt.Errorf("git object %x unreadable, skipped: %s", blobs[n].sha, msg))
		n++ // skip the object git could not read
	}
	return n, nil
}

// errStop marks a callback error, to tell it from stream errors.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

func readBlobs(out *bufio.Reader, blobs []blobRef, fn func(Item) error, warn WarnFunc) (int, error) {
	for i, b := range blobs {
		hdr, err := out.ReadString('\n')
		if err != nil {
			return i, nil
		}
		f := strings.Fields(hdr)
		if len(f) == 2 && f[1] == "missing" {
			warn(b.path, fmt.Errorf("git object %x missing, skipped", b.sha))
			continue
		}
		if len(f) != 3 {
			return i, nil
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size < 0 {
			return i, nil
		}
		if f[1] != "blob" {
			if _, err := out.Discard(int(size) + 1); err != nil {
				return i, nil
			}
			continue
		}
		item := Item{Path: b.path, Commit: b.commit, Line: 1, Size: size}
		var lr *io.LimitedReader
		if size <= maxMemBlob {
			item.Data = make([]byte, size)
			if _, err := io.ReadFull(out, item.Data); err != nil {
				return i, nil
			}
		} else {
			lr = &io.LimitedReader{R: out, N: size}
			item.Stream = true
			item.Open = func() (io.ReadCloser, error) { return io.NopCloser(lr), nil }
		}
		if err := fn(item); err != nil {
			return i, errStop{err}
		}
		if lr != nil {
			if _, err := io.Copy(io.Discard, lr); err != nil || lr.N > 0 {
				return i + 1, nil
			}
		}
		if _, err := out.Discard(1); err != nil { // trailing LF
			return i + 1, nil
		}
	}
	return len(blobs), nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
