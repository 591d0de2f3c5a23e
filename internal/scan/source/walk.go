package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WalkOptions control a file system walk.
type WalkOptions struct {
	// Gitignore skips paths ignored by .gitignore files (each directory's
	// own, plus .git/info/exclude at a repository root).
	Gitignore bool
	// NoSkip scans lock files and known binary formats too (binary content
	// is still detected and skipped by the scanner).
	NoSkip bool
	// Exclude returns true for paths to leave out (config allowlists).
	Exclude func(path string) bool
	// KeepPath returns true for paths that are scanned even though their
	// name marks them as binary (path rules such as PKCS#12 files).
	KeepPath func(path string) bool
}

// ErrNotRegular is reported for named inputs that are not regular files
// or directories (devices, sockets, FIFOs): reading them could block.
var ErrNotRegular = errors.New("not a regular file")

// Walk calls fn for every file under roots. A root may be a file. Symbolic
// links are not followed; the .git directory is never entered. Problems
// with single entries go to warn; Walk fails only when ctx is done or fn
// returns an error.
func Walk(ctx context.Context, roots []string, opt WalkOptions, fn func(Item) error, warn WarnFunc) error {
	failed := 0
	for _, root := range roots {
		info, err := os.Lstat(root)
		if err != nil {
			warn(root, err)
			failed++
			continue
		}
		if !info.IsDir() {
			if !info.Mode().IsRegular() {
				warn(root, ErrNotRegular)
				continue
			}
			if err := emitFile(root, info, opt, fn, warn, true); err != nil {
				return err
			}
			continue
		}
		w := &walker{opt: opt, fn: fn, warn: warn}
		if opt.Gitignore {
			w.ign = newIgnorer(root)
		}
		if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return w.visit(p, d, err)
		}); err != nil {
			return err
		}
	}
	if failed > 0 && failed == len(roots) {
		return fmt.Errorf("%w: none of the named paths can be read", ErrNoInput)
	}
	return nil
}

// ErrNoInput is returned when no named path could be read at all.
var ErrNoInput = errors.New("scan: nothing to scan")

type walker struct {
	opt  WalkOptions
	fn   func(Item) error
	warn WarnFunc
	ign  *ignorer
}

func (w *walker) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		w.warn(p, err)
		if d != nil && d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if d.IsDir() {
		if d.Name() == ".git" {
			return fs.SkipDir
		}
		if w.ign != nil {
			if w.ign.ignored(p, true) {
				return fs.SkipDir
			}
			w.ign.enter(p)
		}
		return nil
	}
	if !d.Type().IsRegular() {
		return nil // symlinks, devices, sockets, FIFOs
	}
	if w.ign != nil && w.ign.ignored(p, false) {
		return nil
	}
	info, err := d.Info()
	if err != nil {
		w.warn(p, err)
		return nil
	}
	return emitFile(p, info, w.opt, w.fn, w.warn, false)
}

func emitFile(p string, info fs.FileInfo, opt WalkOptions, fn func(Item) error, warn WarnFunc, named bool) error {
	if opt.Exclude != nil && opt.Exclude(p) {
		return nil
	}
	keep := opt.KeepPath != nil && opt.KeepPath(p)
	if !opt.NoSkip && !keep && !named {
		if r := SkipReason(p); r != "" {
			return nil
		}
	}
	return fn(Item{Path: p, Line: 1, Size: info.Size(), Open: func() (io.ReadCloser, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		// Re-check after open: the entry may have been replaced by a FIFO.
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("open: %w", ErrNotRegular)
		}
		return f, nil
	}})
}

// ignorer implements .gitignore matching for one walk root: patterns from
// every .gitignore met on the way down, applied relative to their
// directory, later and deeper patterns taking precedence.
type ignorer struct {
	root  string
	rules []ignoreRule
}

type ignoreRule struct {
	base    string // directory of the .gitignore, relative to root, "" at root
	pattern string
	negate  bool
	dirOnly bool
	anchor  bool // pattern contains a slash: matched against the full relative path
}

func newIgnorer(root string) *ignorer {
	ig := &ignorer{root: root}
	ig.load(filepath.Join(root, ".git", "info", "exclude"), "")
	return ig
}

func (ig *ignorer) enter(dir string) {
	rel, err := filepath.Rel(ig.root, dir)
	if err != nil {
		return
	}
	rel = filepath.ToSlash(rel)
	if rel == "." {
		rel = ""
	}
	ig.load(filepath.Join(dir, ".gitignore"), rel)
}

func (ig *ignorer) load(file, base string) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{base: base}
		if strings.HasPrefix(line, "!") {
			r.negate = true
			line = line[1:]
		}
		line = strings.TrimPrefix(line, `\`)
		if strings.HasSuffix(line, "/") {
			r.dirOnly = true
			line = strings.TrimRight(line, "/")
		}
		if strings.Contains(line, "/") {
			r.anchor = true
			line = strings.TrimPrefix(line, "/")
		}
		if line == "" {
			continue
		}
		r.pattern = line
		ig.rules = append(ig.rules, r)
	}
}

// ignored reports whether p is ignored; the last matching rule decides.
func (ig *ignorer) ignored(p string, dir bool) bool {
	rel, err := filepath.Rel(ig.root, p)
	if err != nil || rel == "." {
		return false
	}
	rel = filepath.ToSlash(rel)
	out := false
	for _, r := range ig.rules {
		if r.dirOnly && !dir {
			continue
		}
		sub := rel
		if r.base != "" {
			if !strings.HasPrefix(rel, r.base+"/") {
				continue
			}
			sub = rel[len(r.base)+1:]
		}
		var ok bool
		if r.anchor {
			ok = globMatch(r.pattern, sub)
		} else {
			ok = globMatch(r.pattern, sub[strings.LastIndexByte(sub, '/')+1:])
		}
		if ok {
			out = !r.negate
		}
	}
	return out
}

// globMatch matches a gitignore glob: * and ? do not cross '/', ** does,
// [...] is a class.
func globMatch(pattern, name string) bool {
	for len(pattern) > 0 {
		switch {
		case strings.HasPrefix(pattern, "**"):
			rest := strings.TrimPrefix(pattern[2:], "/")
			if rest == "" {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if (i == 0 || name[i-1] == '/') && globMatch(rest, name[i:]) {
					return true
				}
			}
			return false
		case pattern[0] == '*':
			for i := 0; i <= len(name); i++ {
				if globMatch(pattern[1:], name[i:]) {
					return true
				}
				if i < len(name) && name[i] == '/' {
					return false
				}
			}
			return false
		case pattern[0] == '?':
			if name == "" || name[0] == '/' {
				return false
			}
		case pattern[0] == '[':
			end := strings.IndexByte(pattern[1:], ']')
			if end < 0 || name == "" {
				return false
			}
			if ok, _ := filepath.Match(pattern[:end+2], name[:1]); !ok {
				return false
			}
			pattern = pattern[end+2:]
			name = name[1:]
			continue
		default:
			if name == "" || pattern[0] != name[0] {
				return false
			}
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}
