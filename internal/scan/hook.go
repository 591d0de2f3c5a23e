package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hookMarker identifies a pre-commit hook written by InstallHook.
const hookMarker = "# coffer-scan pre-commit hook"

// ErrHookExists is returned when a pre-commit hook that coffer did not
// write is in the way.
var ErrHookExists = errors.New("scan: a pre-commit hook already exists")

// HookScript returns the pre-commit hook: it runs `coffer scan --staged`
// and blocks the commit when secrets are found. binary is the command to
// run (COFFER_BIN overrides it at commit time).
func HookScript(binary string) string {
	return fmt.Sprintf(`#!/bin/sh
%s
# Scans the lines this commit adds for credentials and blocks the commit
# when it finds any. Skip once with: git commit --no-verify
# Accept a finding: add "coffer:ignore" on its line, or a baseline
# (coffer scan --write-baseline .coffer-baseline.json).
COFFER="${COFFER_BIN:-%s}"
set -- scan --staged --no-progress
if [ -f .coffer-baseline.json ]; then
	set -- "$@" --baseline .coffer-baseline.json
fi
exec "$COFFER" "$@"
`, hookMarker, shellQuote(binary))
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// InstallHook writes the pre-commit hook into repo's hooks directory
// (honouring core.hooksPath) and returns its path. An existing hook is
// replaced only if coffer wrote it or force is set.
func InstallHook(ctx context.Context, repo, binary string, force bool) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--git-path", "hooks").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("scan: install hook: %s is not a git repository: %s", repo, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("scan: install hook: run git: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repo, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("scan: install hook: %w", err)
	}
	path := filepath.Join(dir, "pre-commit")
	if old, err := os.ReadFile(path); err == nil && !force && !bytes.Contains(old, []byte(hookMarker)) {
		return "", fmt.Errorf("%w at %s: add `coffer scan --staged` to it, or pass --force to replace it", ErrHookExists, path)
	}
	if binary == "" {
		binary = "coffer"
	}
	if err := os.WriteFile(path, []byte(HookScript(binary)), 0o755); err != nil {
		return "", fmt.Errorf("scan: install hook: %w", err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return "", fmt.Errorf("scan: install hook: %w", err)
	}
	return path, nil
}
