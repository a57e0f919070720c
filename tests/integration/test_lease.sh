#!/bin/bash
# The SPM lease (spm/lease*.c) against two real sanlock daemons — two
# simulated hosts, each with its own SANLOCK_RUN_DIR, host ids 1 and 2,
# io_timeout 1 — on plain sparse files (no LVM):
#   format lockspace + SDM; both hosts join; host 1 holds the lease; host 2
#   gets BUSY naming host 1; kill -9 of the holder -> host 2 takes it at
#   once; leaving the lockspace; a daemon that is not running is reported
#   as UNAVAILABLE naming SANLOCK_RUN_DIR; finally the storage of the
#   lockspace fails under the holder -> sanlock stops it (kill path).
# Needs: $BUILD/tests/tools/pk-lease-probe, $BUILD/libpk-memlock-shim.so.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PROBE=$BUILD/tests/tools/pk-lease-probe
SHIM=$(realpath -m "$BUILD/libpk-memlock-shim.so")
NAME=test_lease-$$
DIR=/tmp/pk-$NAME
LS=pk-itest-lease-$$
IDS=$DIR/ids
LEASES=$DIR/leases
HOLDER_PID=

fail() {
	echo "FAIL: $*"
	for h in 1 2; do
		[ -f "$DIR/h$h/sanlock.log" ] && { echo "--- sanlock log host $h (tail)"; tail -n 15 "$DIR/h$h/sanlock.log"; }
	done
	exit 1
}
ok() { echo "ok: $*"; }
since() { awk -v a="$1" -v b="$(date +%s%3N)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

cleanup() {
	local h pid
	[ -n "$HOLDER_PID" ] && kill -9 "$HOLDER_PID" 2>/dev/null
	for h in 1 2; do
		[ -d "$DIR/h$h" ] || continue
		SANLOCK_RUN_DIR=$DIR/h$h timeout 5 sanlock client shutdown -f 1 >/dev/null 2>&1
		pid=$(cat "$DIR/h$h/daemon.pid" 2>/dev/null)
		[ -n "$pid" ] || continue
		kill -TERM -- "-$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

[ -x "$PROBE" ] || fail "$PROBE missing (make BUILD=$BUILD tools)"
[ -f "$SHIM" ] || fail "$SHIM missing (make BUILD=$BUILD $BUILD/libpk-memlock-shim.so)"

mkdir -p "$DIR/h1" "$DIR/h2"
truncate -s 1M "$IDS"
truncate -s 2M "$LEASES"

# One sanlock daemon per simulated host, in its own session (process group).
for h in 1 2; do
	SANLOCK_RUN_DIR=$DIR/h$h LD_PRELOAD=$SHIM setsid sanlock daemon -D -w 0 -h 0 -l 0 \
		-L -1 -S -1 -U root -G root -e "$NAME-host$h" >"$DIR/h$h/sanlock.log" 2>&1 &
	echo $! >"$DIR/h$h/daemon.pid"
	disown
done
for h in 1 2; do
	for _ in $(seq 50); do
		SANLOCK_RUN_DIR=$DIR/h$h sanlock client status >/dev/null 2>&1 && break
		sleep 0.1
	done
	SANLOCK_RUN_DIR=$DIR/h$h sanlock client status >/dev/null 2>&1 ||
		fail "sanlock daemon of host $h did not start"
done
ok "two sanlock daemons up ($DIR/h1, $DIR/h2)"

args() { # args HOST: the probe's options for that host
	echo "-s $LS -i $IDS -l $LEASES -H $1 -t 1 -r $DIR/h$1"
}
probe() { # probe HOST CMD [args...]
	local h=$1 cmd=$2
	shift 2
	# shellcheck disable=SC2046
	"$PROBE" "$cmd" $(args "$h") "$@"
}

out=$(probe 1 format 2>&1) || fail "format: $out"
out=$(probe 1 owner 2>&1) || fail "owner: $out"
[ "$out" = "owner=0 generation=0" ] || fail "fresh SDM lease has an owner: $out"
ok "lockspace and SDM lease formatted, no owner"

out=$(probe 1 acquire 2>&1); rc=$?
if [ $rc -ne 1 ] || ! echo "$out" | grep -q "ERROR NOT_FOUND:.*not joined"; then
	fail "acquire before join: rc=$rc $out"
fi
ok "acquire before joining: NOT_FOUND (not joined)"

start=$(date +%s%3N)
probe 1 join >"$DIR/join1.out" 2>&1 & j1=$!
probe 2 join >"$DIR/join2.out" 2>&1 & j2=$!
wait $j1 || fail "host 1 join: $(cat "$DIR/join1.out")"
wait $j2 || fail "host 2 join: $(cat "$DIR/join2.out")"
ok "both hosts joined in $(since "$start") s"

# shellcheck disable=SC2046
"$PROBE" hold $(args 1) -f "$DIR/held1" >"$DIR/hold1.out" 2>&1 &
HOLDER_PID=$!
for _ in $(seq 50); do [ -f "$DIR/held1" ] && break; sleep 0.1; done
[ -f "$DIR/held1" ] || fail "host 1 did not take the lease: $(cat "$DIR/hold1.out")"
grep -q "HELD host_id=1" "$DIR/hold1.out" || fail "hold output: $(cat "$DIR/hold1.out")"
ok "host 1 holds the SPM lease"

out=$(probe 2 acquire 2>&1); rc=$?
[ $rc -eq 2 ] || fail "host 2 acquire while host 1 holds: rc=$rc $out"
echo "$out" | grep -q "BUSY holder=1" || fail "BUSY does not name host 1: $out"
echo "$out" | grep -q "held by host 1" || fail "BUSY message does not name host 1: $out"
ok "host 2: BUSY, held by host 1"

out=$(probe 2 status 2>&1) || fail "status: $out"
[ "$out" = "join=joined held=0 owner=1" ] || fail "host 2 status: $out"
ok "host 2 status: $out"

kill -9 "$HOLDER_PID"
wait "$HOLDER_PID" 2>/dev/null
HOLDER_PID=
start=$(date +%s%3N)
acquired=
for _ in $(seq 100); do
	out=$(probe 2 acquire 2>&1) && { acquired=1; break; }
	sleep 0.1
done
[ -n "$acquired" ] || fail "host 2 could not take the lease after the holder died: $out"
ok "holder killed -9 -> host 2 acquired in $(since "$start") s"

out=$(probe 1 leave 2>&1) || fail "host 1 leave: $out"
out=$(probe 1 status 2>&1) || fail "host 1 status: $out"
echo "$out" | grep -q "^join=not-joined" || fail "host 1 still joined after leave: $out"
ok "host 1 left the lockspace"

out=$("$PROBE" acquire -s "$LS" -i "$IDS" -l "$LEASES" -H 1 -t 1 -r "$DIR/nodaemon" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! echo "$out" | grep -q "ERROR UNAVAILABLE: .*SANLOCK_RUN_DIR='$DIR/nodaemon'"; then
	fail "no daemon: rc=$rc $out"
fi
ok "no daemon: UNAVAILABLE naming SANLOCK_RUN_DIR"

# Lease loss: host 2 holds; its lockspace storage disappears; sanlock cannot
# renew and stops the holder (SIGTERM; the probe notices via check or signal).
# shellcheck disable=SC2046
"$PROBE" hold $(args 2) -f "$DIR/held2" >"$DIR/hold2.out" 2>&1 &
HOLDER_PID=$!
for _ in $(seq 50); do [ -f "$DIR/held2" ] && break; sleep 0.1; done
[ -f "$DIR/held2" ] || fail "host 2 did not take the lease: $(cat "$DIR/hold2.out")"
start=$(date +%s%3N)
truncate -s 0 "$IDS"
rc=
for _ in $(seq 300); do
	if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
		wait "$HOLDER_PID"; rc=$?
		break
	fi
	sleep 0.1
done
[ -n "$rc" ] || fail "holder still running 30 s after its lockspace storage failed"
HOLDER_PID=
case $rc in
3|4) ;;
*) fail "holder ended with rc=$rc: $(cat "$DIR/hold2.out")" ;;
esac
ok "storage lost -> holder stopped after $(since "$start") s: $(tail -n1 "$DIR/hold2.out")"

echo "PASS test_lease"
