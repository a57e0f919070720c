#!/bin/bash
# Malformed requests over real sockets (ipc and tcp): each refused or
# dropped with a log line, and the daemon keeps serving.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nolab_lib.sh"

nolab_setup abuse
port=$(nolab_ports 1) || fail "no free port"
for url in "ipc://$dir/spm.sock" "tcp://127.0.0.1:$port"; do
	"$BUILD/spmd" -o "listen=$url" -o insecure_tcp=true -o lvm_devices=/dev/pk-no-such-device -o "run_dir=$dir/run" \
		-o "state_dir=$dir/state" -o log_level=info 2>>"$dir/spmd.log" &
	pids+=($!)
	for _ in $(seq 50); do "$PKCTL" --spm "$url" --timeout 500 ping >/dev/null 2>&1 && break; sleep 0.1; done
	echo "# $url"
	"$BUILD/tests/tools/pk-rpc-abuse" "$url" || { tail -n 20 "$dir/spmd.log"; fail "pk-rpc-abuse on $url"; }
done
grep -q "refused request" "$dir/spmd.log" || fail "no log line for refused requests"
ok "refusals are logged: $(grep -c 'refused request' "$dir/spmd.log") lines"
