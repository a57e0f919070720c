#!/bin/bash
# pk-itest: libvirt
# test_merge_crash — merges that crash, in a 2-host lab with a writing guest
# (VM on host 2, SPM on host 1).
#   1. hsmd killed (SIGKILL at a PK_FAULT point) in each state of a job:
#      PREPARING, EXTENDING, COMMITTING, CLEANUP (and inside CLEANUP after the
#      orphan mark and after the metadata sync) for internal commits; READY,
#      PIVOTING (and after the old leaf was marked ILLEGAL) for active commits.
#      hsmd is started again, resumes the job from its record, and re-running
#      `pkctl snapshot delete` finishes: the expected chain, the volume gone.
#   2. hsmd killed with SIGKILL while a (slow) block job copies: the resumed
#      job adopts the block job that kept running in qemu.
#   3. libvirtd restarted while a block job copies: hsmd reconnects,
#      reconciles and the job ends DONE.
#   4. qemu killed while a block job copies: the job ends FAILED, cleanly; the
#      chain before the merge is intact (metadata, legality, qcow2 headers);
#      the VM starts again from it and the merge, run again, finishes.
#   5. pk-verify: every write the guest acknowledged (both boots) is intact.
#   6. the VM shut off, a cold merge of its leaf with hsmd killed after the
#      old leaf was marked ILLEGAL and before the definition switched: resumed,
#      finished; the data is intact on the base alone.
# Restarts the shared libvirtd once. Everything is removed in the EXIT trap.
source "$(dirname "$0")/lib.sh"

VM=pkt-mcrash-$$
cleanup() {
	local rc=$?
	if ! pidof -s libvirtd >/dev/null; then
		setsid libvirtd -d || true
	fi
	merge_vm_remove
	(exit $rc)
	lab_down
}
trap cleanup EXIT
source "$(dirname "$0")/merge_lib.sh"

legality() { spm_any volume info --image "$IMG" --volume "$1" | jq -r .volume.legality; }
deleted() { merge_deleted "$1"; }

# crash POINT VOLUME WANT_CHAIN: deletes VOLUME with hsmd dying at POINT, then
# restarts hsmd and runs the engine flow again.
crash() {
	local point=$1 vol=$2 want=$3 out
	stop_hsmd
	start_hsmd PK_FAULT="$point"
	# --timeout: pkctl's calls to the dead hsmd fail after 2 s, not 30.
	out=$("$PKCTL" --json --timeout 2000 --hsm "$PK_HOST2_HSM" --spm "$PK_SPMS" snapshot delete \
		--vm "$VM" --volume "$vol" 2>&1) &&
		fail "snapshot delete succeeded although hsmd should die at $point: $out"
	for _ in $(seq 50); do hsmd_alive || break; sleep 0.1; done
	hsmd_alive && fail "hsmd did not die at $point"
	start_hsmd
	out=$(pk2 snapshot delete --vm "$VM" --volume "$vol") || fail "re-run after $point: $out"
	check_chain "$want"
	deleted "$vol"
	wait_acks 100 30
	ok "hsmd killed at $point: resumed, the re-run finished ($(echo "$out" | jq -r .how)); chain ${want//,/ <- }"
}

# ---- the lab ------------------------------------------------------------------------

merge_lab_up "itest-mcrash-$$" "" "pk.blocks=2048 pk.interval_ms=1"
BOOT1=$PK_LAB_DIR/$PK_LAB/host2/$VM.boot1.log

# ---- 1. kill -9 of hsmd in each state --------------------------------------------------------

# Internal commits: each round snapshots, then merges the old leaf into its parent.
LEAF=$L0
for point in merge:preparing merge:extending merge:committing merge:cleanup \
	merge:cleanup:orphaned merge:cleanup:synced; do
	NEW=$(snapshot) && [ -n "$NEW" ] || fail "snapshot"
	wait_acks 100 30
	crash "$point" "$LEAF" "$NEW,$BASE"
	LEAF=$NEW
done
# Active commits: each round snapshots, then merges the new leaf back.
for point in merge:ready merge:pivoting merge:pivoting:marked; do
	NEW=$(snapshot) && [ -n "$NEW" ] || fail "snapshot"
	wait_acks 100 30
	crash "$point" "$NEW" "$LEAF,$BASE"
	[ "$(legality "$LEAF")" = LEGAL ] || fail "$LEAF not LEGAL"
done

# ---- 2. kill -9 while the block job copies ------------------------------------------------------

# slow_merge VOLUME: an internal commit of VOLUME at 256 KiB/s; prints the job id.
slow_merge() {
	pk2 merge --vm "$VM" --drive vda --base "$BASE" --top "$1" --bandwidth 256K | jq -r .job.job_id
}
copying() { # copying JOB: waits until the block job made progress
	local deadline=$((SECONDS + 30))
	until [ "$(pk2 job show "$1" | jq -r '.job.state + " " + (.job.cur > 0 | tostring)')" = "COMMITTING true" ]; do
		[ $SECONDS -lt $deadline ] || fail "job $1 does not copy: $(pk2 job show "$1")"
		sleep 0.2
	done
}
NEW=$(snapshot)
wait_acks 2500 40 # the old leaf holds most of the guest's 8 MiB
JOB=$(slow_merge "$LEAF")
copying "$JOB"
stop_hsmd KILL
start_hsmd
[ "$(pk2 job show "$JOB" | jq -r .job.state)" = COMMITTING ] || fail "not resumed: $(pk2 job show "$JOB")"
pk2 job bandwidth "$JOB" 2M >/dev/null || fail "bandwidth"
# The engine flow run again follows the resumed job (not CONFLICT), then deletes.
out=$(pk2 snapshot delete --vm "$VM" --volume "$LEAF") || fail "re-run while the job runs: $out"
[ "$(echo "$out" | jq -r .job.job_id)" = "$JOB" ] || fail "the re-run did not follow $JOB: $out"
grep -q "resuming merge job job='$JOB'" "$PK_HOST2_DIR/hsmd.log" || fail "no resume logged"
n=$(grep -c "job='$JOB': block job started" "$PK_HOST2_DIR/hsmd.log" || true)
[ "$n" = 1 ] || fail "the block job was started $n times"
check_chain "$NEW,$BASE"
deleted "$LEAF"
LEAF=$NEW
ok "kill -9 of hsmd while copying: the resumed job adopted the running block job; the engine flow run again followed it to DONE and deleted the volume"

# ---- 3. libvirtd restart while the block job copies ---------------------------------------------

NEW=$(snapshot)
wait_acks 2500 40
JOB=$(slow_merge "$LEAF")
copying "$JOB"
pid=$(pidof -s libvirtd) || fail "libvirtd does not run"
kill -TERM "$pid"
for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "libvirtd did not stop"
sleep 1
setsid libvirtd -d || fail "cannot start libvirtd again"
if [ -f "$PK_LAB_DIR/.services/libvirtd.pid" ]; then
	pidof -s libvirtd >"$PK_LAB_DIR/.services/libvirtd.pid"
fi
deadline=$((SECONDS + 30))
until grep -q 'libvirt connection re-established' "$PK_HOST2_DIR/hsmd.log"; do
	[ $SECONDS -lt $deadline ] || fail "hsmd did not reconnect"
	sleep 0.2
done
pk2 job bandwidth "$JOB" 0 >/dev/null || fail "bandwidth after the reconnection"
out=$(pk2 job wait "$JOB") || fail "job after the libvirtd restart: $out"
pk2 snapshot delete --vm "$VM" --volume "$LEAF" >/dev/null || fail "delete orphan $LEAF"
check_chain "$NEW,$BASE"
deleted "$LEAF"
LEAF=$NEW
wait_acks 200 30
ok "libvirtd restarted while copying: hsmd reconnected, reconciled, job DONE"

# ---- 4. qemu killed while the block job copies -----------------------------------------------

NEW=$(snapshot)
wait_acks 2500 40
JOB=$(slow_merge "$LEAF")
copying "$JOB"
qpid=$(cat "/run/libvirt/qemu/$VM.pid") || fail "no qemu pid"
kill -9 "$qpid"
out=$(pk2 job wait "$JOB") && fail "the job survived qemu: $out"
code=$(echo "$out" | jq -r .error.code)
[ "$code" = ABORTED ] || fail "job after the qemu kill: $out"
echo "$out" | jq -r .error.message | grep -q intact || fail "job after the qemu kill: $out"
check_vm_chain "$NEW,$LEAF,$BASE"
for v in "$NEW" "$LEAF" "$BASE"; do
	[ "$(legality "$v")" = LEGAL ] || fail "$v not LEGAL after the qemu kill"
done
ok "qemu killed while copying: job FAILED ($code), chain, legality and qcow2 headers intact"
# The first boot's log is kept whole: the VM's next start truncates the live
# file, and its rotated backups would read as older than the second boot.
lab/guest-log "$SERIAL" >"$BOOT1" || fail "the first boot's serial log is incomplete"
rm -f "$SERIAL".[0-9]
virsh -c qemu:///system start "$VM" >/dev/null || fail "the VM does not start again"
wait_ready
wait_acks 300 30
out=$(pk2 snapshot delete --vm "$VM" --volume "$LEAF") || fail "merge again: $out"
check_chain "$NEW,$BASE"
deleted "$LEAF"
wait_acks 300 30
ok "the VM started again from the old chain; the merge run again finished"

# ---- 5. every acknowledged write is there ----------------------------------------------------

virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop the VM"
out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$NEW") || fail "pk-verify: $out"
b1=$(grep -a '^PKACK ' "$BOOT1" | awk '{ print $4 }' | sort -u | wc -l)
b2=$(lab/guest-log "$SERIAL" | grep -a '^PKACK ' | awk '{ print $4 }' | sort -u | wc -l)
ok "pk-verify (both boots; $b1 and $b2 blocks acknowledged in each): $out"
# ---- 6. cold merge of the leaf, hsmd killed in the middle -----------------------------------------

stop_hsmd
start_hsmd PK_FAULT=merge:pivoting:marked
out=$("$PKCTL" --json --timeout 2000 --hsm "$PK_HOST2_HSM" --spm "$PK_SPMS" snapshot delete \
	--vm "$VM" --volume "$NEW" 2>&1) && fail "cold delete succeeded although hsmd should die: $out"
for _ in $(seq 50); do hsmd_alive || break; sleep 0.1; done
hsmd_alive && fail "hsmd did not die at merge:pivoting:marked"
[ "$(legality "$NEW")" = ILLEGAL ] || fail "$NEW not marked ILLEGAL before the switch"
start_hsmd
out=$(pk2 snapshot delete --vm "$VM" --volume "$NEW") || fail "re-run of the cold delete: $out"
check_vm_chain "$BASE"
deleted "$NEW"
out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$BASE") || fail "pk-verify on $BASE: $out"
ok "cold merge of the leaf, hsmd killed between the ILLEGAL mark and the switch: resumed; $out"
hsmd_stops_cleanly
echo "PASS: $CHECKS checks"
