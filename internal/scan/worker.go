package scan

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cofferhq/coffer/internal/scan/detect"
	"github.com/cofferhq/coffer/internal/scan/manifest"
	"github.com/cofferhq/coffer/internal/scan/source"
)

// Bounds on what one item may cost.
const (
	headSize     = 8 << 10
	maxPathBytes = 4 << 20 // bytes of a file read for a path rule (PKCS#12)
)

type scanner struct {
	eng  *detect.Engine
	opts Options
	cfg  *Config
	col  *collector
	prog *progress

	items  atomic.Int64
	bytes  atomic.Int64
	binary atomic.Int64
}

func newScanner(eng *detect.Engine, opts Options, cfg *Config) *scanner {
	s := &scanner{eng: eng, opts: opts, cfg: cfg,
		col: &collector{out: opts.Warnings, log: opts.Logger.With("subsystem", "scan")}}
	return s
}

// run starts the producer and the workers; the first error cancels the
// rest, and run returns once every goroutine has stopped.
func (s *scanner) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if s.opts.Progress != nil {
		s.prog = startProgress(s.opts.Progress, &s.bytes, &s.items)
		defer s.prog.stop()
	}
	items := make(chan source.Item, 4*s.opts.Workers)
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() { // owner: run, through wg
			defer wg.Done()
			for it := range items {
				if err := s.scanItem(ctx, it); err != nil {
					cancel(err)
				}
			}
		}()
	}
	perr := s.produce(ctx, func(it source.Item) error {
		if s.prog != nil {
			s.prog.discovered(it.Size)
		}
		if it.Stream { // must be consumed before the source moves on
			return s.scanItem(ctx, it)
		}
		select {
		case items <- it:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(items)
	wg.Wait()
	if s.prog != nil {
		s.prog.doneDiscovering()
	}
	if perr != nil {
		cancel(perr)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if perr != nil {
		return perr
	}
	return ctx.Err()
}

func (s *scanner) produce(ctx context.Context, fn func(source.Item) error) error {
	o := s.opts
	gopt := source.GitOptions{Since: o.Since, NoSkip: o.NoSkip, Exclude: s.eng.PathAllowed, KeepPath: s.keepPath}
	switch {
	case o.Staged:
		return source.GitStaged(ctx, o.Repo, gopt, fn, s.col.warn)
	case o.Git || o.Since != "":
		return source.GitHistory(ctx, o.Repo, gopt, fn, s.col.warn)
	}
	var roots []string
	for _, p := range o.Paths {
		if p != "-" {
			roots = append(roots, p)
			continue
		}
		if err := fn(source.Item{Path: "<stdin>", Line: 1, Size: -1, Stream: true,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(o.Stdin), nil }}); err != nil {
			return err
		}
	}
	wopt := source.WalkOptions{Gitignore: o.Gitignore, NoSkip: o.NoSkip, Exclude: s.eng.PathAllowed, KeepPath: s.keepPath}
	return source.Walk(ctx, roots, wopt, fn, s.col.warn)
}

func (s *scanner) keepPath(p string) bool { return len(s.eng.PathRules(p)) > 0 }

// countingReader adds what it reads to the scanned-bytes counter.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// scanItem scans one item. Problems with the item are warnings; only a
// cancelled context is an error.
func (s *scanner) scanItem(ctx context.Context, it source.Item) error {
	if err := ctx.Err(); err != nil {
		return nil
	}
	s.items.Add(1)
	rc, err := it.Reader()
	if err != nil {
		s.col.warn(it.Path, err)
		return nil
	}
	defer rc.Close()
	var r io.Reader = countingReader{r: rc, n: &s.bytes}
	if prs := s.eng.PathRules(it.Path); len(prs) > 0 {
		data, err := io.ReadAll(io.LimitReader(r, maxPathBytes))
		if err != nil {
			s.col.warn(it.Path, fmt.Errorf("read: %w", err))
			return nil
		}
		for _, pr := range prs {
			if pr.CheckFile(data) {
				sec := detect.NewSecret(data[:min(len(data), 64)])
				s.emit(it, detect.Match{Rule: pr, Secret: sec, Line: 1, Column: 1, EndLine: 1}, nil)
			}
		}
		return nil
	}
	head := make([]byte, headSize)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.col.warn(it.Path, fmt.Errorf("read: %w", err))
		return nil
	}
	if source.Binary(head) {
		s.binary.Add(1)
		s.col.log.Debug("scan: skipped binary", "path", it.Path)
		return nil
	}
	body := io.MultiReader(bytes.NewReader(head), r)
	if !s.opts.NoManifests && manifestCandidate(it) {
		data, err := io.ReadAll(io.LimitReader(body, manifest.MaxSize+1))
		if err != nil {
			s.col.warn(it.Path, fmt.Errorf("read: %w", err))
			return nil
		}
		if len(data) <= manifest.MaxSize {
			s.scanManifestFile(ctx, it, data)
			return nil
		}
		s.col.warn(it.Path, errors.New("over 16 MiB: scanned as text, Kubernetes Secrets not decoded"))
		body = io.MultiReader(bytes.NewReader(data), r)
	}
	s.scanText(ctx, it, body)
	return nil
}

func (s *scanner) scanText(ctx context.Context, it source.Item, r io.Reader) {
	err := s.eng.Scan(ctx, r, it.Path, func(m detect.Match) error {
		s.emit(it, m, nil)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.col.warn(it.Path, fmt.Errorf("read: %w", err))
	}
}

func manifestCandidate(it source.Item) bool {
	switch strings.ToLower(path.Ext(it.Path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return it.Path == "<stdin>"
}

// scanManifestFile scans a YAML or JSON file as text and, when it holds
// Kubernetes Secrets, checks their decoded values. Text matches on the
// lines of base64 data values are dropped: the decoded value is judged
// instead of its encoding.
func (s *scanner) scanManifestFile(ctx context.Context, it source.Item, data []byte) {
	var text []detect.Match
	err := s.eng.Scan(ctx, bytes.NewReader(data), it.Path, func(m detect.Match) error {
		text = append(text, m)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.col.warn(it.Path, fmt.Errorf("read: %w", err))
	}
	var entries []manifest.Entry
	if manifest.Likely(data) {
		var perr error
		entries, perr = manifest.Parse(data)
		switch {
		case perr != nil && len(entries) == 0:
			if bytes.Contains(data[:min(len(data), 4096)], []byte("apiVersion")) {
				s.col.warn(it.Path, fmt.Errorf("manifest: %w", perr))
			}
		case perr != nil:
			s.col.warn(it.Path, fmt.Errorf("manifest read in part: %w", perr))
		}
	}
	encoded := map[int]bool{}
	for _, e := range entries {
		if e.Field == "data" && e.Decoded {
			encoded[e.Line] = true
		}
	}
	for _, m := range text {
		if !encoded[m.Line] {
			s.emit(it, m, nil)
		}
	}
	for _, e := range entries {
		for _, m := range s.eng.ScanEntry(e.Key, e.Value) {
			m.Line, m.Column, m.EndLine = e.Line, e.Column, e.Line
			s.emit(it, m, &KubeRef{Namespace: e.Namespace, Name: e.Name, Field: e.Field, Key: e.Key})
		}
	}
}

func (s *scanner) emit(it source.Item, m detect.Match, k *KubeRef) {
	f := Finding{
		RuleID: m.Rule.ID(), Description: m.Rule.Description, Family: m.Rule.Family, Severity: m.Rule.Severity,
		File: it.Path, Line: m.Line + it.Line - 1, Column: m.Column, EndLine: m.EndLine + it.Line - 1,
		Commit: it.Commit, Secret: m.Secret, Kubernetes: k,
	}
	f.Fingerprint = Fingerprint(f.RuleID, f.File, f.Secret)
	if s.cfg.suppressed(&f) {
		s.col.mu.Lock()
		s.col.suppressed++
		s.col.mu.Unlock()
		return
	}
	s.col.add(f)
}

// result deduplicates (a stringData value is seen both as text and as a
// decoded entry) and sorts the findings.
func (s *scanner) result() *Result {
	fs := s.col.findings
	slices.SortStableFunc(fs, compareFindings)
	type key struct {
		file, commit, secret string
		line                 int
	}
	seen := map[key]bool{}
	out := fs[:0]
	for _, f := range fs {
		k := key{file: f.File, line: f.Line, secret: f.Secret.Hash()}
		if f.Commit != nil {
			k.commit = f.Commit.Hash
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return &Result{Findings: out, Warnings: s.col.warnings, Stats: Stats{
		Items: s.items.Load(), Bytes: s.bytes.Load(), Binary: s.binary.Load(), Suppressed: s.col.suppressed,
	}}
}

func compareFindings(a, b Finding) int {
	ca, cb := "", ""
	if a.Commit != nil {
		ca = a.Commit.Hash
	}
	if b.Commit != nil {
		cb = b.Commit.Hash
	}
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(ca, cb), cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column), boolCmp(a.Kubernetes != nil, b.Kubernetes != nil), cmp.Compare(a.RuleID, b.RuleID))
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
