#!/bin/bash
# test_spm_auto — SPM election without an operator (spm_auto = true on both
# hosts of a 2-host lab, docs/SPM.md "Automatic SPM"):
#   1. one host takes the lease on its own, never both;
#   2. the SPM's spmd killed with SIGKILL: the other host holds the lease in
#      < 2 s (the time is printed) and serves writes;
#   3. the killed spmd started again stays OTHER (sanlock gives the lease to
#      one spmd only);
#   4. SpmStop on the SPM moves the lease to the other host instead of
#      coming straight back.
# Everything is removed in the EXIT trap.
source "$(dirname "$0")/lib.sh"
trap lab_down EXIT
lab_up "itest-spmauto-$$" 2

state() { spm "$1" spm status 2>/dev/null | jq -r '.state // empty'; }
now_ms() { date +%s%3N; }
# holder: the one host whose spmd says SPM ("" when none); fails on two.
holder() {
	local s1 s2
	s1=$(state 1) s2=$(state 2)
	[ "$s1" = SPM ] && [ "$s2" = SPM ] && fail "two SPMs"
	[ "$s1" = SPM ] && { echo 1; return; }
	[ "$s2" = SPM ] && { echo 2; return; }
	echo ""
}
# wait_holder NOT SECONDS: a host other than NOT (0: any) holds the lease.
wait_holder() {
	local deadline=$((SECONDS + $2)) h
	while :; do
		h=$(holder)
		[ -n "$h" ] && [ "$h" != "$1" ] && { echo "$h"; return 0; }
		[ $SECONDS -lt $deadline ] || fail "no host (other than $1) took the lease in $2 s"
		sleep 0.05
	done
}

for h in 1 2; do
	echo "spm_auto = true" >>"$PK_LAB_DIR/$PK_LAB/host$h/spmd.conf"
	restart_spmd "$h"
done
H=$(wait_holder 0 60)
O=$((3 - H))
sleep 2
[ "$(holder)" = "$H" ] || fail "the lease moved on its own"
[ "$(state "$O")" != SPM ] || fail "two SPMs"
spm_any volume create --image "$(uuid)" --format raw --capacity 64M >/dev/null || fail "write"
ok "host $H took the lease on its own (host $O: $(state "$O")); writes are served"

# ---- 2. the SPM's spmd killed --------------------------------------------------------

# Host $O has joined the lockspace and keeps asking: only the acquire is left to do.
pid=$(cat "$PK_LAB_DIR/$PK_LAB/host$H/spmd.pid")
kill -9 "$pid"
t0=$(now_ms)
N=$(wait_holder "$H" 10)
dt=$(($(now_ms) - t0))
[ "$N" = "$O" ] || fail "host $N holds the lease, not $O"
[ "$dt" -lt 2000 ] || fail "host $O took the lease $dt ms after host $H's spmd died (goal < 2000)"
spm_any volume create --image "$(uuid)" --format raw --capacity 64M >/dev/null ||
	fail "write after the failover"
ok "spmd of host $H killed: host $O holds the lease after $dt ms and serves writes"

# ---- 3. the killed spmd comes back -----------------------------------------------------

restart_spmd "$H"
sleep 3
[ "$(holder)" = "$O" ] || fail "the lease is on '$(holder)' after host $H's spmd restarted"
[ "$(state "$H")" != SPM ] || fail "two SPMs"
ok "host $H's spmd restarted: it stays $(state "$H"), host $O keeps the lease"

# ---- 4. SpmStop moves the lease --------------------------------------------------------

spm "$O" spm stop >/dev/null || fail "spm stop on host $O"
t0=$(now_ms)
N=$(wait_holder "$O" 10)
dt=$(($(now_ms) - t0))
[ "$N" = "$H" ] || fail "host $N holds the lease after SpmStop on $O"
ok "SpmStop on host $O: host $H took the lease after $dt ms"
echo "test_spm_auto: all $CHECKS checks passed"
