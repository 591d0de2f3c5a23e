#!/usr/bin/env bash
# bench-kv-ab.sh: KV read throughput without and with one file audit
# device, for several coffer binaries in alternating rounds, so that the
# machine's drift hits all of them alike. One server per binary (bbolt,
# initialised and unsealed), idle while another is measured; each round
# runs, for every binary in turn, `coffer bench kv` reads with auditing
# off and then on. Prints each pair and, per binary, the medians and the
# median of the pairs' changes. Usage (build the binaries first):
#   hack/bench-kv-ab.sh ROUNDS DURATION coffer-a [coffer-b ...]
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 ROUNDS DURATION coffer-binary [coffer-binary ...]" >&2
  exit 2
fi
rounds=$1; dur=$2; shift 2
bins=("$@")
base=$(mktemp -d)
cleanup() { for d in "$base"/s*; do kill "$(cat "$d/pid" 2>/dev/null)" 2>/dev/null; done; rm -rf "$base"; }
trap cleanup EXIT
. "$(dirname "$0")/coffer-server.sh"
i=0
for bin in "${bins[@]}"; do
  d=$base/s$i; mkdir -p "$d"
  start_coffer "$bin" "$d"
  i=$((i+1))
done
bench=${bins[0]}
for r in $(seq $rounds); do
  i=0
  for bin in "${bins[@]}"; do
    d=$base/s$i; export COFFER_ADDR=$(cat $d/addr) COFFER_TOKEN=$(cat $d/token)
    off=$("$bench" bench kv -duration $dur -op read --format json | python3 -c 'import json,sys;print(json.load(sys.stdin)["ops_per_sec"])')
    "$bin" audit enable file file_path=$d/audit.log >/dev/null
    on=$("$bench" bench kv -duration $dur -op read --format json | python3 -c 'import json,sys;print(json.load(sys.stdin)["ops_per_sec"])')
    "$bin" audit disable file >/dev/null; rm -f $d/audit.log
    [ -n "$on" ] && [ -n "$off" ] && echo "$i $off $on" >> $base/res
    printf "round %d bin %d: off %.0f on %.0f (%+.1f%%)\n" $r $i $off $on $(python3 -c "print(100*($on-$off)/$off)")
    i=$((i+1))
  done
done
python3 - "$base/res" "${bins[@]}" <<'PY'
import sys, statistics, collections
rows=collections.defaultdict(list)
for l in open(sys.argv[1]):
    i,a,b=l.split(); rows[int(i)].append((float(a),float(b)))
for i,v in sorted(rows.items()):
    offs=[a for a,b in v]; ons=[b for a,b in v]; r=[100*(b-a)/a for a,b in v]
    print("bin %d %s: median off %.0f on %.0f: %+.1f%%; median pair %+.1f%%; pairs %s" % (i, sys.argv[2+i], statistics.median(offs), statistics.median(ons), 100*(statistics.median(ons)-statistics.median(offs))/statistics.median(offs), statistics.median(r), " ".join("%+.0f"%x for x in r)))
PY
