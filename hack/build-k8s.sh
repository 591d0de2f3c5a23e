#!/usr/bin/env bash
# build-k8s.sh builds the control-plane binaries that internal/k8stest runs:
# kube-apiserver, etcd and etcdctl, at pinned versions, into a cache directory
# outside the repository.
#
#   hack/build-k8s.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $K8S_CACHE, then $HOME/.cache/coffer/k8s/v$K8S_VERSION.
# Binaries land in CACHE_DIR/bin; the wrapper modules that build them are
# generated in CACHE_DIR/src, so their large dependency graphs never touch
# coffer's go.mod. A binary that exists and answers --version with the pinned
# version is kept, so re-running is cheap. A failed build is retried once
# (a transient failure late in a cold kube-apiserver build has been seen on
# shared machines; the retry resumes from the Go build cache).
#
# Environment: K8S_VERSION (1.34.4), ETCD_VERSION (3.6.4), GO (go),
# K8S_NICE (10; the niceness of the builds).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.4}"
GO="${GO:-go}"
K8S_NICE="${K8S_NICE:-10}"
CACHE="${1:-${K8S_CACHE:-$HOME/.cache/coffer/k8s/v$K8S_VERSION}}"
BIN="$CACHE/bin"
SRC="$CACHE/src"

# The staging modules (k8s.io/api, k8s.io/apiserver, ...) are published as
# v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>.
STAGING_VERSION="v0.${K8S_VERSION#*.}"

# Builds must not see coffer's module, workspace or toolchain settings.
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

log() { printf 'build-k8s: %s\n' "$*"; }
die() { printf 'build-k8s: error: %s\n' "$*" >&2; exit 1; }

command -v "$GO" >/dev/null || die "$GO not found in PATH; install Go or set GO"
mkdir -p "$BIN" "$SRC"

# One builder per cache directory; a second make waits for the first.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
	log "another build holds $CACHE/.lock; waiting"
	flock 9
fi

# have NAME WANT: the binary exists and its version output contains WANT.
have() {
	local out
	[ -x "$BIN/$1" ] || return 1
	case "$1" in
	etcdctl) out=$("$BIN/$1" version 2>&1) || return 1 ;;
	*) out=$("$BIN/$1" --version 2>&1) || return 1 ;;
	esac
	grep -qF -- "$2" <<<"$out"
}

# timed LABEL CMD...: runs CMD (a command, not a shell function: set -e does
# not apply inside a function called from a condition) and logs its wall time.
timed() {
	local label=$1 start=$SECONDS rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		log "$label: $((SECONDS - start))s"
	else
		log "$label: failed after $((SECONDS - start))s (exit $rc)"
	fi
	return "$rc"
}

# build_retry OUT PKG LDFLAGS: builds PKG into OUT atomically, retrying once.
build_retry() {
	local out=$1 pkg=$2 ldflags=$3 try
	for try in 1 2; do
		if timed "go build $(basename "$out") (attempt $try)" \
			nice -n "$K8S_NICE" "$GO" build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"; then
			mv -f "$out.tmp" "$out"
			return 0
		fi
		rm -f "$out.tmp"
	done
	die "building $out failed twice; see the output above"
}

build_etcd() {
	local dir="$SRC/etcd-v$ETCD_VERSION"
	mkdir -p "$dir/etcd" "$dir/etcdctl"
	cat >"$dir/etcd/main.go" <<'EOF'
// Command etcd is the etcd server, wrapped so it can be built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
	cat >"$dir/etcdctl/main.go" <<'EOF'
// Command etcdctl is the etcd client, wrapped so it can be built from the module proxy.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
EOF
	cd "$dir"
	if ! grep -qF "go.etcd.io/etcd/server/v3 v$ETCD_VERSION" go.mod 2>/dev/null; then
		rm -f go.mod go.sum
		"$GO" mod init etcdwrap >/dev/null 2>&1
		timed "etcd: go get" "$GO" get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION"
		timed "etcd: go mod tidy" "$GO" mod tidy
	fi
	build_retry "$BIN/etcd" ./etcd "-s -w"
	build_retry "$BIN/etcdctl" ./etcdctl "-s -w"
}

build_kube_apiserver() {
	local dir="$SRC/kube-apiserver-v$K8S_VERSION"
	mkdir -p "$dir"
	cat >"$dir/main.go" <<'EOF'
// Command kube-apiserver is the Kubernetes API server, wrapped so it can be
// built from the module proxy.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
EOF
	cd "$dir"
	if ! grep -qF "k8s.io/kubernetes v$K8S_VERSION" go.mod 2>/dev/null; then
		rm -f go.mod go.sum
		"$GO" mod init kas >/dev/null 2>&1
		# k8s.io/kubernetes points every staging module at ./staging/src/...;
		# replace each with its published tag.
		local gomod
		gomod=$("$GO" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
			sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
		[ -f "$gomod" ] || die "cannot find go.mod of k8s.io/kubernetes@v$K8S_VERSION"
		local -a edits=("-require=k8s.io/kubernetes@v$K8S_VERSION" "-require=k8s.io/component-base@$STAGING_VERSION")
		local m
		while read -r m; do
			edits+=("-replace=$m=$m@$STAGING_VERSION")
		done < <(grep -oE 'k8s.io/[a-z0-9-]+ => ./staging/src/k8s.io/[a-z0-9-]+' "$gomod" | awk '{print $1}' | sort -u)
		[ "${#edits[@]}" -gt 20 ] || die "found only $((${#edits[@]} - 2)) staging modules in $gomod"
		"$GO" mod edit "${edits[@]}"
		timed "kube-apiserver: go mod tidy" "$GO" mod tidy
	fi
	local v=k8s.io/component-base/version
	local major=${K8S_VERSION%%.*} rest=${K8S_VERSION#*.}
	build_retry "$BIN/kube-apiserver" . \
		"-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=$major -X $v.gitMinor=${rest%%.*} -X $v.gitTreeState=clean"
}

total=$SECONDS
log "cache $CACHE (kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION)"

# etcd first: it is the smaller build.
if have etcd "etcd Version: $ETCD_VERSION" && have etcdctl "etcdctl version: $ETCD_VERSION"; then
	log "etcd, etcdctl v$ETCD_VERSION present"
else
	start=$SECONDS
	build_etcd
	log "etcd total: $((SECONDS - start))s"
	have etcd "etcd Version: $ETCD_VERSION" || die "$BIN/etcd does not report version $ETCD_VERSION"
	have etcdctl "etcdctl version: $ETCD_VERSION" || die "$BIN/etcdctl does not report version $ETCD_VERSION"
fi

if have kube-apiserver "Kubernetes v$K8S_VERSION"; then
	log "kube-apiserver v$K8S_VERSION present"
else
	start=$SECONDS
	build_kube_apiserver
	log "kube-apiserver total: $((SECONDS - start))s"
	have kube-apiserver "Kubernetes v$K8S_VERSION" || die "$BIN/kube-apiserver does not report version v$K8S_VERSION"
fi

log "done in $((SECONDS - total))s; K8S_BIN=$BIN"
