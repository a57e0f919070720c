#!/bin/bash
# Malformed requests over real sockets (ipc and tcp): each refused or
# dropped with a log line, and the daemon keeps serving.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
dir=$(mktemp -d /tmp/pk-itest-abuse-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
port=$((30000 + $$ % 20000))
for url in "ipc://$dir/spm.sock" "tcp://127.0.0.1:$port"; do
	"$BUILD/spmd" -o "listen=$url" -o insecure_tcp=true -o lvm_devices=/dev/pk-no-such-device -o "run_dir=$dir/run" \
		-o "state_dir=$dir/state" -o log_level=info 2>>"$dir/spmd.log" &
	pids+=($!)
	for _ in $(seq 50); do "$BUILD/pkctl" --spm "$url" --timeout 500 ping >/dev/null 2>&1 && break; sleep 0.1; done
	echo "# $url"
	"$BUILD/tests/tools/pk-rpc-abuse" "$url" || { tail -n 20 "$dir/spmd.log"; exit 1; }
done
grep -q "refused request" "$dir/spmd.log" || { echo "no log line for refused requests"; exit 1; }
echo "ok - refusals are logged: $(grep -c 'refused request' "$dir/spmd.log") lines"
