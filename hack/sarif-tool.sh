#!/usr/bin/env bash
# sarif-tool.sh fetches Microsoft's SARIF multitool (the reference SARIF
# validator, `Sarif.Multitool validate`) from the npm registry into a cache
# directory, once. The e2e tests validate `coffer scan -f sarif` output with
# it; under CI=true they fail when it is missing.
#
#   hack/sarif-tool.sh [CACHE_DIR]     prints the path of the executable
set -euo pipefail
VERSION="${SARIF_MULTITOOL_VERSION:-5.7.0}"
CACHE="${1:-$HOME/.cache/coffer/sarif-multitool/v$VERSION}"
BIN="$CACHE/package/Sarif.Multitool"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
	echo "$BIN"
	exit 0
fi
command -v npm >/dev/null || { echo "sarif-tool: npm not found; install Node.js and npm" >&2; exit 1; }
mkdir -p "$CACHE"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@microsoft/sarif-multitool-linux@$VERSION" >/dev/null 2>&1) ||
	{ echo "sarif-tool: npm pack @microsoft/sarif-multitool-linux@$VERSION failed" >&2; exit 1; }
rm -rf "$CACHE/package"
tar -xzf "$tmp"/microsoft-sarif-multitool-linux-*.tgz -C "$CACHE"
chmod +x "$BIN"
"$BIN" --version >/dev/null 2>&1 || { echo "sarif-tool: $BIN does not run" >&2; exit 1; }
echo "$BIN"
