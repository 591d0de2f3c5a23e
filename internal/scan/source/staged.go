package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// maxHunk bounds the added text of one hunk kept in memory.
const maxHunk = 64 << 20

// GitStaged calls fn for every hunk of lines added in the index (what
// `git commit` would record), with Line set to the hunk's first line in the
// new file. Deleted and unchanged lines are not scanned, so a secret that
// is already in the repository (and in the baseline) does not block a
// commit that touches the same file.
func GitStaged(ctx context.Context, repo string, opt GitOptions, fn func(Item) error, warn WarnFunc) error {
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "-c", "core.quotePath=false", "diff", "--cached",
		"-U0", "--no-color", "--no-ext-diff", "--no-renames", "--diff-filter=ACMRT", "--src-prefix=a/", "--dst-prefix=b/")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%w: diff: %v", ErrGit, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start: %v (is git installed?)", ErrGit, err)
	}
	perr := parseDiff(bufio.NewReaderSize(out, 64<<10), opt, fn, warn)
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if perr != nil {
		return perr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil {
		return fmt.Errorf("%w: diff --cached in %s: %s", ErrGit, repo, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func parseDiff(r *bufio.Reader, opt GitOptions, fn func(Item) error, warn WarnFunc) error {
	var path string
	skip := false
	var hunk bytes.Buffer
	start := 0
	flush := func() error {
		if hunk.Len() == 0 || skip || path == "" {
			hunk.Reset()
			return nil
		}
		data := bytes.Clone(hunk.Bytes())
		hunk.Reset()
		return fn(Item{Path: path, Line: start, Size: int64(len(data)), Data: data})
	}
	for {
		line, err := r.ReadString('\n')
		if line == "" && err != nil {
			break
		}
		switch {
		case strings.HasPrefix(line, "diff --git "):
			if err := flush(); err != nil {
				return err
			}
			path, skip = "", false
		case strings.HasPrefix(line, "+++ "):
			p := strings.TrimSuffix(strings.TrimSuffix(line[4:], "\n"), "\t")
			if strings.HasPrefix(p, `"`) {
				if u, err := strconv.Unquote(p); err == nil {
					p = u
				}
			}
			path = strings.TrimPrefix(p, "b/")
			if p == "/dev/null" {
				path = ""
			}
			keep := opt.KeepPath != nil && opt.KeepPath(path)
			skip = (opt.Exclude != nil && opt.Exclude(path)) || (!opt.NoSkip && !keep && SkipReason(path) != "")
		case strings.HasPrefix(line, "Binary files "):
			skip = true
		case strings.HasPrefix(line, "@@ "):
			if err := flush(); err != nil {
				return err
			}
			start = hunkStart(line)
		case strings.HasPrefix(line, "+") && path != "":
			if hunk.Len()+len(line) > maxHunk {
				if !skip {
					warn(path, fmt.Errorf("staged hunk over %d MiB, rest skipped", maxHunk>>20))
				}
				skip = true
				continue
			}
			hunk.WriteString(line[1:])
		}
		if err != nil {
			break
		}
	}
	return flush()
}

// hunkStart parses "@@ -a,b +c,d @@" and returns c.
func hunkStart(line string) int {
	i := strings.Index(line, " +")
	if i < 0 {
		return 1
	}
	s := line[i+2:]
	if j := strings.IndexAny(s, ", "); j >= 0 {
		s = s[:j]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
