#!/bin/bash
# pk-itest: libvirt
# test_merge_converge — a capped active commit under a guest that dirties its
# disk faster than the cap, against real qemu (the judgement of
# hsm/merge_converge.h reads qemu's own numbers and the drive's write counter).
#
# The SPM is host 1; the VM (TCG, the lab's writing guest, random 4 KiB writes
# over 2 MiB) runs on host 2. qemu's mirror tracks dirt in 64 KiB granules, so
# the guest keeps most of its 32 granules dirty while a 512 KiB/s cap copies 8
# a second: the mirror never gets in sync on its own.
#   1. default settings: `snapshot delete` of the leaf with --bandwidth 512K
#      ends DONE; the job says NOT_CONVERGING, cap_lifted, a note naming the
#      guest's rate and the lifted limit; hsmd logged why; the chain is L0;
#   2. merge_uncap_last_pass = false (hsmd restarted with it): the same merge
#      stays COMMITTING with the limit kept; JobInfo says NOT_CONVERGING with
#      the guest's rate and a note, cap_lifted false; `job bandwidth JOB 0`
#      then lets it finish; the merged leaf, an orphan, is deleted;
#   3. pk-verify: every write the guest acknowledged is on the final chain.
# Everything is removed in the EXIT trap.
#
# Needs: root, libvirtd, qemu, ${BUILD}/{spmd,hsmd,pkctl,pk-lvmapd},
# ${BUILD}/tests/tools/pk-verify (make tools).
source "$(dirname "$0")/lib.sh"

VM=pkt-conv-$$
cleanup() {
	local rc=$?
	merge_vm_remove
	(exit $rc)
	lab_down
}
trap cleanup EXIT
source "$(dirname "$0")/merge_lib.sh"

CAP=512K
CAP_BYTES=$((512 << 10))

# wait_not_converging JOB SECONDS: hsmd judges the running job NOT_CONVERGING
# (before that it may still be PREPARING or EXTENDING, never further).
wait_not_converging() {
	local deadline=$((SECONDS + $2)) out
	while :; do
		out=$(pk2 job show "$1") || fail "job show $1: $out"
		[ "$(echo "$out" | jq -r .job.convergence)" = NOT_CONVERGING ] && return 0
		case $(echo "$out" | jq -r .job.state) in
		PREPARING | EXTENDING | COMMITTING) ;;
		*) fail "job $1 went on before it was judged: $out" ;;
		esac
		[ $SECONDS -lt $deadline ] || fail "job $1 not judged NOT_CONVERGING in $2 s: $out"
		sleep 0.5
	done
}

# ---- the lab: SPM on host 1, the VM on host 2 ------------------------------------------

merge_lab_up "itest-conv-$$" 64M pk.blocks=512

# ---- 1. default: the cap is lifted for the last pass -------------------------------------------

S1=$(snapshot) && [ -n "$S1" ] || fail "snapshot 1"
wait_acks 1000 30 # S1 holds the guest's every granule
out=$(pk2 snapshot delete --vm "$VM" --volume "$S1" --bandwidth "$CAP") || fail "delete $S1: $out"
[ "$(echo "$out" | jq -r .job.kind)" = ACTIVE_COMMIT ] || fail "kind: $out"
[ "$(echo "$out" | jq -r .job.state)" = DONE ] || fail "state: $out"
[ "$(echo "$out" | jq -r .job.convergence)" = NOT_CONVERGING ] || fail "convergence: $out"
[ "$(echo "$out" | jq -r .job.cap_lifted)" = true ] || fail "cap_lifted: $out"
rate=$(echo "$out" | jq -r .job.guest_write_rate)
[ "$rate" -gt 0 ] || fail "no guest write rate measured: $out"
note=$(echo "$out" | jq -r .job.note)
echo "$note" | grep -q "^not converging: the guest writes .* MiB/s, the limit of 0.5 MiB/s was lifted for the last pass$" ||
	fail "note: $note"
JOB1=$(echo "$out" | jq -r .job.job_id)
grep -q "merge job job='$JOB1' .*not converging .*lifting the limit for the last pass" \
	"$PK_HOST2_DIR/hsmd.log" || fail "hsmd logged no lifted limit for $JOB1"
check_chain "$L0,$BASE"
merge_deleted "$S1"
wait_acks 300 30
ok "capped at $CAP, not converging (guest $((rate >> 10)) KiB/s): the limit was lifted for the last pass, DONE in $(echo "$out" | jq -r .elapsed_ms) ms; note: $note"

# ---- 2. merge_uncap_last_pass = false: the limit stays until it is changed ------------------------

echo "merge_uncap_last_pass = false" >>"$PK_LAB_DIR/$PK_LAB/host2/hsmd.conf"
stop_hsmd
start_hsmd
S2=$(snapshot) && [ -n "$S2" ] || fail "snapshot 2"
wait_acks 1000 30
JOB=$(pk2 merge --vm "$VM" --drive vda --base "$L0" --top "$S2" --bandwidth "$CAP" | jq -r .job.job_id)
[ -n "$JOB" ] && [ "$JOB" != null ] || fail "capped merge did not start"
wait_not_converging "$JOB" 60
# Judged, it stays so: the limit is kept, the job keeps copying at it.
sleep 8
out=$(pk2 job show "$JOB")
[ "$(echo "$out" | jq -r .job.state)" = COMMITTING ] || fail "state: $out"
[ "$(echo "$out" | jq -r .job.convergence)" = NOT_CONVERGING ] || fail "convergence: $out"
[ "$(echo "$out" | jq -r .job.cap_lifted)" = false ] || fail "cap_lifted: $out"
[ "$(echo "$out" | jq -r .job.bandwidth)" = "$CAP_BYTES" ] || fail "bandwidth: $out"
rate=$(echo "$out" | jq -r .job.guest_write_rate)
[ "$rate" -gt 0 ] || fail "no guest write rate measured: $out"
note=$(echo "$out" | jq -r .job.note)
echo "$note" | grep -q "^not converging: the guest writes .* MiB/s, the limit is 0.5 MiB/s$" ||
	fail "note: $note"
text=$("$PKCTL" --hsm "$PK_HOST2_HSM" job show "$JOB") || fail "job show: $text"
echo "$text" | grep -q "not converging" || fail "job show does not say it: $text"
grep -q "merge job job='$JOB' .*not converging: .*the limit stays (merge_uncap_last_pass = false)" \
	"$PK_HOST2_DIR/hsmd.log" || fail "hsmd logged no kept limit for $JOB"
ok "merge_uncap_last_pass = false: COMMITTING at $CAP for 8 s after the verdict; note: $note"
out=$(pk2 job bandwidth "$JOB" 0) || fail "bandwidth: $out"
out=$("$PKCTL" --hsm "$PK_HOST2_HSM" job wait "$JOB") || fail "job wait: $out"
echo "$out" | grep -q "job $JOB: DONE" || fail "job wait printed: $out"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S2") || fail "delete orphan $S2: $out"
[ "$(echo "$out" | jq -r .how)" = "already merged" ] || fail "orphan delete: $out"
check_chain "$L0,$BASE"
merge_deleted "$S2"
wait_acks 300 30
ok "the limit set to 0 while it ran: DONE, the merged leaf deleted; writes go on"

# ---- 3. every acknowledged write is on the final chain -------------------------------------------

virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop the VM"
out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$L0") || fail "pk-verify: $out"
ok "pk-verify: $out"
echo "PASS: $CHECKS checks"
