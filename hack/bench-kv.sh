#!/usr/bin/env bash
# bench-kv.sh: the issue's KV benchmark end to end. Builds coffer, starts
# `coffer server` on a bbolt file (not -dev), initialises and unseals it,
# runs `coffer bench kv` reads with auditing off and with one file audit
# device in turn (ROUNDS pairs, default 3) and compares the medians, then
# writes without and with auditing. Usage:
#   [ROUNDS=n] hack/bench-kv.sh [duration per run] [extra coffer bench flags...]
set -euo pipefail
dur=${1:-10s}; shift || true
dir=$(mktemp -d)
trap 'kill $(cat "$dir/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/coffer" ./cmd/coffer
. "$(dirname "$0")/coffer-server.sh"
start_coffer "$dir/coffer" "$dir"
export COFFER_ADDR=$(cat "$dir/addr") COFFER_TOKEN=$(cat "$dir/token")
# run OP [flags]: one bench run; prints throughput, latency and the CPU
# time per operation of the server and of the bench client.
run() {
	local pid cpu0 cpu1 out
	pid=$(cat "$dir/pid")
	cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	out=$( { /usr/bin/time -f "%U %S" "$dir/coffer" bench kv -duration "$dur" -op "$1" --format json "${@:2}" 2>"$dir/time" ; } )
	cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	echo "$out" | python3 -c '
import json, os, sys
r = json.load(sys.stdin)
tick = os.sysconf("SC_CLK_TCK")
srv = (int(sys.argv[2]) - int(sys.argv[1])) / tick
u, s = open(sys.argv[3]).read().split()[-2:]
ops = max(r["ops"], 1)
print("%7.0f/s  p50 %.2f  p95 %.2f  p99 %.2f  max %.1f ms  errors %d  cpu/op: server %.0f us, client %.0f us" % (
    r["ops_per_sec"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"], r["errors"], srv / ops * 1e6, (float(u) + float(s)) / ops * 1e6))
' "$cpu0" "$cpu1" "$dir/time"
}
audit_on() { "$dir/coffer" audit enable file file_path="${AUDIT_DIR:-$dir}/audit.log" > /dev/null; }
audit_off() { "$dir/coffer" audit disable file > /dev/null; rm -f "${AUDIT_DIR:-$dir}/audit.log"; }
if [ -n "${READS_ONLY:-}" ]; then # for profiling: COFFER_CPU_PROFILE=/tmp/p READS_ONLY=audited|unaudited
	[ "$READS_ONLY" = audited ] && audit_on
	echo "reads ($READS_ONLY): $(run read "$@")"
	kill -INT "$(cat "$dir/pid")"; wait
	exit 0
fi
# Reads alternate between auditing off and on (ROUNDS pairs), so that the
# machine's drift hits both alike; the medians are compared at the end.
rounds=${ROUNDS:-3}
: > "$dir/off"; : > "$dir/on"
for r in $(seq "$rounds"); do
	line=$(run read "$@"); echo "reads, no audit:    $line"; echo "$line" >> "$dir/off"
	audit_on
	line=$(run read "$@"); echo "reads, file audit:  $line"; echo "$line" >> "$dir/on"
	audit_off
done
python3 - "$dir/off" "$dir/on" <<'PY'
import statistics, sys
rate = lambda f: [float(l.split("/s")[0]) for l in open(f)]
offs, ons = rate(sys.argv[1]), rate(sys.argv[2])
off, on = statistics.median(offs), statistics.median(ons)
print("median reads: %.0f/s without auditing, %.0f/s with a file device: %+.1f%%" % (off, on, 100 * (on - off) / off))
# This machine drifts by tens of percent within seconds; each pair ran
# back to back, so the pairs' own changes are the steadier figure.
pairs = [100 * (b - a) / a for a, b in zip(offs, ons)]
print("pairs: median %+.1f%%, mean %+.1f%% (%s)" % (statistics.median(pairs), statistics.mean(pairs), " ".join("%+.0f" % p for p in pairs)))
PY
echo "writes, no audit:   $(run write "$@")"
audit_on
echo "writes, file audit: $(run write "$@")"
