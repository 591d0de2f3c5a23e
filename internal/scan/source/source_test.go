package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.log", "app.log", true},
		{"*.log", "dir/app.log", false},
		{"**/*.log", "dir/sub/app.log", true},
		{"build/**", "build/a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/b", true},
		{"file?.txt", "file1.txt", true},
		{"file[0-9].txt", "filex.txt", false},
		{"node_modules", "node_modules", true},
	} {
		if got := globMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestWalkGitignoreAndSkips(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		".gitignore":          "*.log\n/build/\n!keep.log\nsecret*\n",
		"a.go":                "x",
		"app.log":             "x",
		"keep.log":            "x",
		"build/out.txt":       "x",
		"sub/.gitignore":      "local.txt\n",
		"sub/local.txt":       "x",
		"sub/b.go":            "x",
		"sub/secrets.env":     "x",
		"yarn.lock":           "x",
		"img/logo.png":        "x",
		".git/config":         "x",
		"sub/build/nested.go": "x",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(opt WalkOptions) []string {
		var got []string
		err := Walk(context.Background(), []string{dir}, opt, func(it Item) error {
			rel, _ := filepath.Rel(dir, it.Path)
			got = append(got, filepath.ToSlash(rel))
			return nil
		}, func(string, error) {})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	got := walk(WalkOptions{Gitignore: true})
	want := []string{".gitignore", "a.go", "keep.log", "sub/.gitignore", "sub/b.go", "sub/build/nested.go"}
	if !slices.Equal(got, want) {
		t.Errorf("with gitignore: %v, want %v", got, want)
	}
	got = walk(WalkOptions{})
	if !slices.Contains(got, "app.log") || slices.Contains(got, "yarn.lock") || slices.Contains(got, "img/logo.png") || slices.Contains(got, ".git/config") {
		t.Errorf("without gitignore: %v", got)
	}
}

func TestNewBlob(t *testing.T) {
	t.Parallel()
	sha := "562b6ab0f72e58d7a153368ba57db4c673c0e171"
	for _, tc := range []struct {
		meta string
		ok   bool
	}{
		{"000000 100644 0000000000000000000000000000000000000000 " + sha + " A", true},
		{"100644 000000 " + sha + " 0000000000000000000000000000000000000000 D", false},
		{"000000 160000 0000000000000000000000000000000000000000 " + sha + " A", false},
		{":100644 100644 100644 1111111111111111111111111111111111111111 2222222222222222222222222222222222222222 " + sha + " MM", true},
		{"garbage", false},
	} {
		got, ok := newBlob(tc.meta)
		if ok != tc.ok || ok && fmt.Sprintf("%x", got) != sha {
			t.Errorf("newBlob(%q) = %x, %v; want %s, %v", tc.meta, got, ok, sha, tc.ok)
		}
	}
}
