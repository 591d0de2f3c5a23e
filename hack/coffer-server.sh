# coffer-server.sh, sourced by the benchmark scripts in hack/.
# start_coffer BIN DIR: starts `BIN server` on a bbolt file in DIR (not
# -dev; logs to DIR/server.log), initialises it with one key share,
# unseals it and mounts KV v2 at secret/. Leaves DIR/pid, DIR/addr and
# DIR/token (the root token) for the caller.
start_coffer() {
	local bin=$1 dir=$2 port init key
	port=$(( 20000 + RANDOM % 20000 ))
	cat > "$dir/coffer.yaml" <<YAML
storage:
  bolt:
    path: $dir/coffer.db
listener:
  address: 127.0.0.1:$port
  tls:
    disable: true
log:
  level: warn
YAML
	"$bin" server --config "$dir/coffer.yaml" > "$dir/server.log" 2>&1 &
	echo $! > "$dir/pid"
	echo "http://127.0.0.1:$port" > "$dir/addr"
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.05; done
	init=$(COFFER_ADDR=$(cat "$dir/addr") "$bin" operator init --key-shares 1 --key-threshold 1 --format json)
	key=$(echo "$init" | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d.get("keys_b64") or d.get("unseal_keys_b64") or d["keys"])[0])')
	echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' > "$dir/token"
	COFFER_ADDR=$(cat "$dir/addr") "$bin" operator unseal "$key" > /dev/null
	COFFER_ADDR=$(cat "$dir/addr") COFFER_TOKEN=$(cat "$dir/token") "$bin" secrets enable --path=secret --version=2 kv > /dev/null 2>&1
}
