// Package source enumerates what coffer scan reads: files under
// directories (with lock files, binary formats and, on request, .gitignore'd
// paths skipped), a git repository's history (every unique blob once, with
// the commit, author and path that introduced it), staged changes, and a
// commit range. Each unit is an Item; sources call a function for each and
// report problems with single files through a warning callback instead of
// failing the scan.
package source

import (
	"bytes"
	"io"
	"path"
	"strings"
)

// Commit identifies the commit that introduced an item.
type Commit struct {
	Hash   string `json:"hash"`
	Author string `json:"author"`
	Email  string `json:"email"`
	Date   string `json:"date"`
}

// Item is one unit of input.
type Item struct {
	// Path is the file path (slash-separated and relative to the repository
	// for git sources).
	Path string
	// Commit is set for items from git history.
	Commit *Commit
	// Line is the line number of the first line of the content in the file:
	// 1, or a hunk's first line for staged changes.
	Line int
	// Size is the content size when known, -1 otherwise.
	Size int64
	// Data holds in-memory content; when nil, Open yields it.
	Data []byte
	// Open opens the content for reading.
	Open func() (io.ReadCloser, error)
	// Stream is set when Open reads from a shared stream: the item must be
	// consumed before the source's callback returns.
	Stream bool
}

// Reader returns the content of the item.
func (it *Item) Reader() (io.ReadCloser, error) {
	if it.Open != nil {
		return it.Open()
	}
	return io.NopCloser(bytes.NewReader(it.Data)), nil
}

// WarnFunc receives problems with single inputs (unreadable, corrupt,
// skipped); the scan goes on.
type WarnFunc func(path string, err error)

// lockFiles are dependency lock files: integrity hashes, not secrets.
var lockFiles = map[string]bool{
	"package-lock.json": true, "npm-shrinkwrap.json": true, "yarn.lock": true, "pnpm-lock.yaml": true,
	"bun.lockb": true, "go.sum": true, "go.work.sum": true, "cargo.lock": true, "gemfile.lock": true,
	"poetry.lock": true, "pipfile.lock": true, "composer.lock": true, "mix.lock": true,
	"pubspec.lock": true, "podfile.lock": true, "packages.lock.json": true, "flake.lock": true,
	"uv.lock": true, "pdm.lock": true, "gradle.lockfile": true, "deno.lock": true, "package.resolved": true,
	".terraform.lock.hcl": true, "conda-lock.yml": true, "shrinkwrap.yaml": true,
}

// binaryExt are formats that are binary or compressed.
var binaryExt = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".bmp": true, ".ico": true, ".webp": true,
	".tif": true, ".tiff": true, ".psd": true, ".heic": true, ".avif": true, ".svgz": true,
	".mp3": true, ".mp4": true, ".wav": true, ".ogg": true, ".flac": true, ".avi": true, ".mov": true,
	".mkv": true, ".webm": true, ".m4a": true, ".zip": true, ".gz": true, ".tgz": true, ".bz2": true,
	".xz": true, ".zst": true, ".7z": true, ".rar": true, ".tar": true, ".jar": true, ".war": true,
	".ear": true, ".whl": true, ".egg": true, ".deb": true, ".rpm": true, ".apk": true, ".dmg": true,
	".iso": true, ".exe": true, ".dll": true, ".so": true, ".dylib": true, ".a": true, ".o": true,
	".obj": true, ".lib": true, ".bin": true, ".class": true, ".pyc": true, ".pyo": true, ".wasm": true,
	".ttf": true, ".otf": true, ".woff": true, ".woff2": true, ".eot": true, ".pdf": true, ".doc": true,
	".docx": true, ".xls": true, ".xlsx": true, ".ppt": true, ".pptx": true, ".odt": true, ".sqlite": true,
	".db": true, ".parquet": true, ".avro": true, ".pb": true, ".onnx": true, ".pt": true, ".h5": true,
	".npy": true, ".npz": true, ".pkl": true, ".glb": true, ".fbx": true, ".blend": true,
}

// SkipReason returns why p is skipped by name ("lock file", "binary
// format") or "" if it is scanned.
func SkipReason(p string) string {
	base := strings.ToLower(path.Base(strings.ReplaceAll(p, "\\", "/")))
	if lockFiles[base] || strings.HasSuffix(base, ".lock") && base != ".lock" && !strings.Contains(base, "config") {
		return "lock file"
	}
	ext := path.Ext(base)
	if binaryExt[ext] {
		return "binary format"
	}
	if strings.HasSuffix(base, ".min.js") || strings.HasSuffix(base, ".min.css") || strings.HasSuffix(base, ".map") {
		return "minified or generated"
	}
	return ""
}

// Binary reports whether a file's first bytes look binary: a NUL byte, or
// more than 10% control bytes.
func Binary(head []byte) bool {
	if len(head) > 8192 {
		head = head[:8192]
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	ctl := 0
	for _, c := range head {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b {
			ctl++
		}
	}
	return ctl*10 > len(head)
}
