#!/bin/bash
# pk-itest: libvirt
# test_merge_failover — a live merge survives the loss of the SPM (issue 14's
# scenario), in a 2-host lab with a writing guest: SPM on host 1, the VM on
# host 2.
#   1. `pkctl snapshot delete` of an internal layer with --bandwidth 1M runs
#      (one engine flow, started once, never re-run).
#   2. host 1's spmd is killed with -9 while the block job copies; the limit
#      is lifted so the job reaches CLEANUP while no spmd is the SPM.
#   3. the job stays in CLEANUP and says "waiting for the SPM since ..."
#      (JobInfo.waiting, `pkctl job show`); host 2's hsmd does not stick to the
#      dead spmd (it keeps asking both).
#   4. `pkctl spm start` on host 2: the job goes on to DONE and the same
#      engine flow deletes the merged volume through the new SPM.
#   5. the chain is consistent (metadata = live), the merged volume and its LV
#      are gone, the guest kept writing, and pk-verify finds every
#      acknowledged write intact.
# Everything is removed in the EXIT trap.
source "$(dirname "$0")/lib.sh"

VM=pkt-mfo-$$
FLOW_PID=""
cleanup() {
	local rc=$?
	[ -z "$FLOW_PID" ] || kill "$FLOW_PID" 2>/dev/null || true
	merge_vm_remove
	(exit $rc)
	lab_down
}
trap cleanup EXIT
source "$(dirname "$0")/merge_lib.sh"

lab_up "itest-mfo-$$" 2
D=$PK_DOMAIN
SERIAL=$PK_LAB_DIR/$PK_LAB/host2/$VM.serial
spm 1 spm start >/dev/null || fail "spm start on host 1"
IMG=$(uuid) BASE=$(uuid) L0=$(uuid)
spm_any volume create --image "$IMG" --volume "$BASE" --format raw --capacity 64M >/dev/null ||
	fail "create base"
spm_any volume create --image "$IMG" --volume "$L0" --parent "$BASE" --format cow >/dev/null ||
	fail "create leaf"
hsm 2 image prepare --image "$IMG" >/dev/null || fail "prepare"
lab/guest-build "$GUEST" >/dev/null || fail "guest-build"
out=$(pk2 vm create --name "$VM" --memory 256 --type qemu --disk "image=$IMG,volume=$L0" \
	--kernel vmlinuz --initrd initrd.img \
	--cmdline "console=ttyS0 quiet pk.disks=vda pk.blocks=2048 pk.interval_ms=1") ||
	fail "vm create: $out"
wait_ready
wait_acks 2500 60 # L0 holds most of the guest's 8 MiB
NEW=$(snapshot) && [ -n "$NEW" ] || fail "snapshot"
wait_acks 200 30
check_chain "$NEW,$L0,$BASE"
ok "VM $VM writes on host 2 on $NEW <- $L0 <- $BASE; SPM on host 1"

# ---- 1. the engine flow, once ----------------------------------------------------------------

FLOW_OUT=$PK_LAB_DIR/$PK_LAB/flow.json
"$PKCTL" --json --hsm "$PK_HOST2_HSM" --spm "$PK_SPMS" snapshot delete --vm "$VM" --volume "$L0" \
	--bandwidth 1M --no-progress >"$FLOW_OUT" 2>&1 &
FLOW_PID=$!
job_of_vm() { pk2 job list | jq -r --arg vm "$VM" '[.jobs[] | select(.vm == $vm)][0].job_id // empty'; }
deadline=$((SECONDS + 30))
JOB=""
until [ -n "$JOB" ] &&
	[ "$(pk2 job show "$JOB" | jq -r '.job.state + " " + (.job.cur > 0 | tostring)')" = "COMMITTING true" ]; do
	[ $SECONDS -lt $deadline ] || fail "no copying merge job: $(pk2 job list)"
	kill -0 "$FLOW_PID" 2>/dev/null || fail "the flow ended early: $(cat "$FLOW_OUT")"
	JOB=$(job_of_vm)
	sleep 0.2
done
ok "snapshot delete of $L0 runs: job $JOB copies at 1 MiB/s"

# ---- 2. the SPM's spmd dies ------------------------------------------------------------------

H1=$PK_LAB_DIR/$PK_LAB/host1
kill -9 "$(cat "$H1/spmd.pid")"
t_kill=$SECONDS
ok "host 1's spmd killed with -9 during COMMITTING"
pk2 job bandwidth "$JOB" 0 >/dev/null || fail "bandwidth"

# ---- 3. the job waits in CLEANUP, with a reason ------------------------------------------------

deadline=$((SECONDS + 90))
until [ "$(pk2 job show "$JOB" | jq -r '.job.state + " " + (.job.waiting != "" | tostring)')" = "CLEANUP true" ]; do
	[ $SECONDS -lt $deadline ] || fail "the job does not wait in CLEANUP: $(pk2 job show "$JOB")"
	state=$(pk2 job show "$JOB" | jq -r .job.state)
	[ "$state" != FAILED ] || fail "the job failed without the SPM: $(pk2 job show "$JOB")"
	sleep 0.5
done
waiting=$(pk2 job show "$JOB" | jq -r .job.waiting)
echo "$waiting" | grep -q '^waiting for the SPM since ' || fail "waiting: $waiting"
human=$("$PKCTL" --hsm "$PK_HOST2_HSM" job show "$JOB") || fail "job show: $human"
echo "$human" | grep -q 'waiting for the SPM since' || fail "pkctl job show does not say it waits: $human"
sleep 6 # longer than the wait's largest backoff: still waiting, not failed
[ "$(pk2 job show "$JOB" | jq -r .job.state)" = CLEANUP ] || fail "the job left CLEANUP: $(pk2 job show "$JOB")"
kill -0 "$FLOW_PID" 2>/dev/null || fail "the flow gave up: $(cat "$FLOW_OUT")"
ok "the job waits in CLEANUP: $waiting"

# ---- 4. host 2 becomes the SPM -------------------------------------------------------------------

spm 2 spm start >/dev/null || fail "spm start on host 2"
t_spm=$SECONDS
[ "$(spm 2 spm status | jq -r .state)" = SPM ] || fail "host 2 is not SPM"
ok "host 2 is SPM $((t_spm - t_kill)) s after the kill"
rc=0
wait "$FLOW_PID" || rc=$?
FLOW_PID=""
out=$(cat "$FLOW_OUT")
[ $rc -eq 0 ] || fail "the engine flow failed (exit $rc): $out"
[ "$(echo "$out" | jq -r .deleted)" = true ] || fail "flow: $out"
[ "$(echo "$out" | jq -r .job)" = "$JOB" ] || [ "$(echo "$out" | jq -r .job.job_id)" = "$JOB" ] ||
	fail "the flow did not follow $JOB: $out"
[ "$(pk2 job show "$JOB" | jq -r '.job.state + " " + .job.waiting')" = "DONE " ] ||
	fail "job: $(pk2 job show "$JOB")"
grep -q "merge job job='$JOB' state=CLEANUP: the SPM answers again" "$PK_HOST2_DIR/hsmd.log" ||
	fail "hsmd did not log the end of the wait"
ok "the job finished DONE $((SECONDS - t_spm)) s after the new SPM, and the one engine flow deleted $L0"

# ---- 5. the result ------------------------------------------------------------------------------

check_chain "$NEW,$BASE"
merge_deleted "$L0"
wait_acks 200 30
ok "chain $NEW <- $BASE consistent, $L0 and its LV gone, the guest writes on"
# The dead spmd is not preferred: a new metadata call through hsmd's client is fast.
t0=$(date +%s%N)
hsm 2 image prepare --image "$IMG" >/dev/null || fail "prepare again"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 5000 ] || fail "an SPM call from host 2 took $ms ms"
ok "host 2's hsmd reaches the new SPM at once (${ms} ms)"
virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop the VM"
out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$NEW") || fail "pk-verify: $out"
ok "pk-verify: $out"
echo "PASS: $CHECKS checks"
