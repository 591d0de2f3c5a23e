#!/usr/bin/env bash
# bench-kms.sh: the kms-plugin benchmark as deployed: three processes, as
# on a control-plane node. Builds coffer, starts `coffer server` on a bbolt
# file (not -dev) with a transit key and a token that may only encrypt and
# decrypt with it, starts `coffer kms-plugin` on a socket, and runs
# `coffer bench kms` (the stand-in for kube-apiserver: 16 callers on one
# connection) for Encrypt, Decrypt and Status, as fast as answered and at
# fixed rates. Prints each run's throughput, p50/p99 and the CPU time per
# call of plugin, server and load generator. Usage:
#   [RATES="1000 4000 8000"] [OPS="encrypt decrypt status"] hack/bench-kms.sh [duration per run] [extra coffer bench flags...]
set -euo pipefail
dur=${1:-10s}; shift || true
dir=$(mktemp -d)
trap 'kill $(cat "$dir/pid" "$dir/plugin.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/coffer" ./cmd/coffer
. "$(dirname "$0")/coffer-server.sh"
start_coffer "$dir/coffer" "$dir"
export COFFER_ADDR=$(cat "$dir/addr") COFFER_TOKEN=$(cat "$dir/token")
c="$dir/coffer"
"$c" secrets enable transit > /dev/null
"$c" transit keys create kube-apiserver > /dev/null
printf '%s\n' 'path "transit/encrypt/kube-apiserver" { capabilities = ["update"] }' \
	'path "transit/decrypt/kube-apiserver" { capabilities = ["update"] }' > "$dir/kms.hcl"
"$c" policy write kms-plugin "$dir/kms.hcl" > /dev/null
"$c" token create -orphan -policy kms-plugin -period 24h -format json \
	| python3 -c 'import json,sys; print(json.load(sys.stdin)["client_token"])' > "$dir/plugin-token"
env -u COFFER_TOKEN "$c" kms-plugin -key kube-apiserver -token-file "$dir/plugin-token" -socket "$dir/kms.sock" \
	-log-level warn > "$dir/plugin.log" 2>&1 &
echo $! > "$dir/plugin.pid"
for _ in $(seq 100); do [ -S "$dir/kms.sock" ] && break; sleep 0.05; done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# run OP [flags]: one bench run.
run() {
	local s0 p0 s1 p1 out
	s0=$(cpu "$(cat "$dir/pid")"); p0=$(cpu "$(cat "$dir/plugin.pid")")
	if ! out=$( { /usr/bin/time -f "%U %S" "$c" bench kms -socket "$dir/kms.sock" -duration "$dur" -op "$1" --format json "${@:2}" 2>"$dir/time" ; } ); then
		echo "failed: $(cat "$dir/time")"; return
	fi
	s1=$(cpu "$(cat "$dir/pid")"); p1=$(cpu "$(cat "$dir/plugin.pid")")
	echo "$out" | python3 -c '
import json, os, sys
r = json.load(sys.stdin)
tick = os.sysconf("SC_CLK_TCK")
ops = max(r["ops"], 1)
srv = (int(sys.argv[2]) - int(sys.argv[1])) / tick / ops * 1e6
plug = (int(sys.argv[4]) - int(sys.argv[3])) / tick / ops * 1e6
u, s = open(sys.argv[5]).read().split()[-2:]
late = " late %d" % r.get("late", 0) if r.get("rate") else ""
first = "  first error: " + r["first_error"] if r.get("first_error") else ""
print("%7.0f/s  p50 %.2f  p95 %.2f  p99 %.2f  max %.1f ms  errors %d%s  cpu/call: plugin %.0f us, server %.0f us, bench %.0f us%s" % (
    r["ops_per_sec"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"], r["errors"], late, plug, srv, (float(u) + float(s)) / ops * 1e6, first))
' "$s0" "$s1" "$p0" "$p1" "$dir/time"
}
for op in ${OPS:-encrypt decrypt status}; do
	echo "$op, 16 callers, closed loop: $(run "$op" "$@")"
	for rate in ${RATES-1000 4000 8000}; do
		echo "$op, 16 callers, $rate/s: $(run "$op" -rate "$rate" "$@")"
	done
done
if grep -q . "$dir/plugin.log"; then echo "plugin log (warnings and errors):"; tail -20 "$dir/plugin.log"; fi
