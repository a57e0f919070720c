#!/bin/bash
# pk-itest: libvirt
# test_merge — live merge end to end in a 2-host lab, with a guest that writes.
#
# The SPM is host 1; the VM (TCG, the lab's writing guest) runs on host 2, whose
# hsmd asks host 1's spmd to extend and update metadata; `pkctl snapshot
# delete` deletes on the SPM. The image starts as BASE (RAW) <- L0 (COW).
#   1. internal commit: two snapshots, the middle volume merged away;
#   2. active commit with pivot: the leaf merged into its parent;
#   3. pull: a volume whose child is the leaf streamed up into it;
#   after each: metadata and live chains agree and are the expected ones, the
#   merged volume's LV is gone, the guest keeps acknowledging writes;
#   4. a slow merge (bandwidth) makes the drive busy: a second merge is
#   CONFLICT; bandwidth changed while it runs; events and progress seen;
#   5. bad input (unknown VM/drive/volume, base not below top, top == base, a
#   volume of another image, bandwidth out of range): clear errors, nothing
#   changes;
#   6. JobAbort of a running merge: FAILED (ABORTED), chain unchanged; the
#   merge run again finishes;
#   7. cold merge: the VM is stopped, an internal volume is merged with
#   qemu-img commit (the VM then starts, its data intact: its definition no
#   longer lists the merged layer), then the leaf (the VM's definition
#   switched to the base);
#   8. pk-verify: every write the guest acknowledged is on the final chain;
#   the VM starts again on it.
# Everything is removed in the EXIT trap.
#
# Needs: root, libvirtd, qemu, ${BUILD}/{spmd,hsmd,pkctl,pk-lvmapd},
# ${BUILD}/tests/tools/pk-verify (make tools).
source "$(dirname "$0")/lib.sh"

VM=pkt-merge-$$
cleanup() {
	local rc=$?
	merge_vm_remove
	(exit $rc)
	lab_down
}
trap cleanup EXIT
source "$(dirname "$0")/merge_lib.sh"

# deleted VOLUME: merge_deleted, and no longer active on host 2.
deleted() {
	merge_deleted "$1"
	[ ! -e "$PK_HOST2_LVMAP/$D/$1" ] || fail "volume $1 is still active on host 2"
}

# boot_writes CHAIN: the stopped VM starts (on a fresh serial log), its guest
# writes on CHAIN (ids, leaf first), and it is stopped again.
boot_writes() {
	virsh -c qemu:///system start "$VM" >/dev/null || fail "the VM does not start on $1"
	wait_ready
	wait_acks 100 30
	check_chain "$1"
	virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop the VM"
}

# ---- the lab: SPM on host 1, the VM on host 2 ------------------------------------------

# L0's LV starts small (16 MiB): merging into it needs the SPM to extend it.
merge_lab_up "itest-merge-$$" 16M pk.blocks=2048

# ---- 1. internal commit ---------------------------------------------------------------------

S1=$(snapshot) && [ -n "$S1" ] || fail "snapshot 1"
# Random writes all over the guest's 8 MiB land in S1's every cluster: merged
# into L0 (a 16 MiB LV already holding 8 MiB), they need an extend.
wait_acks 2500 40
S2=$(snapshot) && [ -n "$S2" ] || fail "snapshot 2"
wait_acks 300 30
check_chain "$S2,$S1,$L0,$BASE"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S1") || fail "delete $S1: $out"
[ "$(echo "$out" | jq -r .job.kind)" = COMMIT ] || fail "kind: $out"
[ "$(echo "$out" | jq -r .job.state)" = DONE ] || fail "state: $out"
[ "$(echo "$out" | jq -r .job.base_id)" = "$L0" ] || fail "base: $out"
check_chain "$S2,$L0,$BASE"
deleted "$S1"
lv=$(spm_any volume info --image "$IMG" --volume "$L0" | jq -r .volume.lv_size)
[ "$lv" -gt $((16 << 20)) ] || fail "$L0 was not extended (lv_size $lv)"
# The merge's EXTENDING grows L0 when it is still small; hsmd's drive monitor
# (docs/THIN.md) may have grown it first, as soon as the VM started on it.
grep -Eq "merge job .*volume '$L0' extended to|thin volume '$L0' of VM '$VM' extended" \
	"$PK_HOST2_DIR/hsmd.log" || fail "no extend of $L0 logged by host 2"
grep -q "volume extended domain='$D' volume='$L0'" "$PK_HOST1_DIR/spmd.log" || fail "host 1's spmd logged no extend of $L0"
wait_acks 300 30
ok "internal commit: $S1 merged into $L0 (extended by host 1's SPM to $((lv >> 20)) MiB, refreshed on host 2) and deleted in $(echo "$out" | jq -r .elapsed_ms) ms; writes go on"

# ---- 2. active commit with pivot ----------------------------------------------------------------

out=$(pk2 snapshot delete --vm "$VM" --volume "$S2") || fail "delete $S2: $out"
[ "$(echo "$out" | jq -r .job.kind)" = ACTIVE_COMMIT ] || fail "kind: $out"
check_chain "$L0,$BASE"
deleted "$S2"
[ "$(pk2 vm list --vm "$VM" | jq -r '.vms[0].drives[0].volume_id')" = "$L0" ] ||
	fail "drive metadata does not name $L0 as the leaf"
[ "$(spm_any volume info --image "$IMG" --volume "$L0" | jq -r .volume.role)" = LEAF ] ||
	fail "$L0 is not LEAF"
grep -q "kind=ACTIVE_COMMIT state=READY -> PIVOTING" "$PK_HOST2_DIR/hsmd.log" ||
	fail "no READY -> PIVOTING in hsmd's log"
wait_acks 300 30
ok "active commit: $S2 merged into $L0 with a pivot, deleted; $L0 is the LEAF again; writes go on"

# ---- 3. pull -------------------------------------------------------------------------------------

S3=$(snapshot) && [ -n "$S3" ] || fail "snapshot 3"
wait_acks 300 30
out=$(pk2 snapshot delete --vm "$VM" --volume "$L0" --direction pull) || fail "pull $L0: $out"
[ "$(echo "$out" | jq -r .job.kind)" = PULL ] || fail "kind: $out"
check_chain "$S3,$BASE"
deleted "$L0"
[ "$(spm_any volume info --image "$IMG" --volume "$S3" | jq -r .volume.parent_id)" = "$BASE" ] ||
	fail "$S3 does not name $BASE as parent"
wait_acks 300 30
ok "pull: $L0 streamed up into $S3 and deleted; $S3 <- $BASE; writes go on"

# ---- 4. a slow merge: busy drive, bandwidth, progress, events -----------------------------------

S4=$(snapshot) && [ -n "$S4" ] || fail "snapshot 4"
wait_acks 2000 30 # S3 gets most of the guest's 8 MiB written
"$PKCTL" --hsm "$PK_HOST2_HSM" job list >/dev/null || fail "job list"
JOB=$(pk2 merge --vm "$VM" --drive vda --base "$BASE" --top "$S3" --bandwidth 256K | jq -r .job.job_id)
[ -n "$JOB" ] && [ "$JOB" != null ] || fail "slow merge did not start"
deadline=$((SECONDS + 20))
until [ "$(pk2 job show "$JOB" | jq -r '.job.state + " " + (.job.cur > 0 | tostring)')" = "COMMITTING true" ]; do
	[ $SECONDS -lt $deadline ] || fail "no progress: $(pk2 job show "$JOB")"
	sleep 0.2
done
ok "slow merge $JOB: COMMITTING, $(pk2 job show "$JOB" | jq -r '.job.cur') of $(pk2 job show "$JOB" | jq -r '.job.end') bytes"
expect_code CONFLICT pk2 merge --vm "$VM" --drive vda --base "$BASE" --top "$S3"
ok "second merge on the busy drive -> CONFLICT: $LAST_ERROR"
expect_code CONFLICT pk2 snapshot delete --vm "$VM" --volume "$S4"
ok "snapshot delete of another volume of the busy drive -> CONFLICT"
expect_code INVALID_ARGUMENT pk2 job bandwidth "$JOB" 1
out=$(pk2 job bandwidth "$JOB" 0) || fail "bandwidth: $out"
[ "$(echo "$out" | jq -r .job.bandwidth)" = 0 ] || fail "bandwidth not changed: $out"
# Follow it to the end (plain progress lines: stdout is not a terminal).
out=$("$PKCTL" --hsm "$PK_HOST2_HSM" job wait "$JOB") || fail "job wait: $out"
echo "$out" | grep -q "job $JOB: DONE" || fail "job wait printed: $out"
# The merged-away volume is an orphan: snapshot delete only deletes it.
[ "$(spm_any volume info --image "$IMG" --volume "$S3" | jq -r '.volume.legality + " " + .volume.role')" = "ILLEGAL INTERNAL" ] ||
	fail "$S3 is not an ILLEGAL INTERNAL orphan"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S3") || fail "delete orphan $S3: $out"
[ "$(echo "$out" | jq -r .how)" = "already merged" ] || fail "orphan delete: $out"
check_chain "$S4,$BASE"
deleted "$S3"
ok "bandwidth set to unlimited while running; job wait followed it to DONE; the orphan was just deleted"

# ---- 5. bad input ---------------------------------------------------------------------------------

IMG2=$(uuid) OTHER=$(uuid)
spm_any volume create --image "$IMG2" --volume "$OTHER" --format raw --capacity 16M >/dev/null ||
	fail "create other image"
jobs_before=$(pk2 job list | jq '.jobs | length')
expect_code NOT_FOUND pk2 merge --vm "nosuch-$$" --drive vda --base "$BASE"
ok "unknown VM -> NOT_FOUND: $LAST_ERROR"
expect_code NOT_FOUND pk2 merge --vm "$VM" --drive vdz --base "$BASE"
ok "unknown drive -> NOT_FOUND: $LAST_ERROR"
expect_code NOT_FOUND pk2 merge --vm "$VM" --drive vda --base "$(uuid)"
ok "unknown volume -> NOT_FOUND: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base "$S4" --top "$BASE"
ok "base not below top -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base "$S4" --top "$S4"
ok "top == base -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base "$OTHER" --top "$S4"
ok "a volume of another image -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base "$BASE" --bandwidth 100
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base "$BASE" --bandwidth 2T
ok "bandwidth out of range -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 merge --vm "$VM" --drive vda --base not-a-uuid
expect_code NOT_FOUND pk2 snapshot delete --vm "$VM" --volume "$(uuid)"
expect_code INVALID_ARGUMENT pk2 snapshot delete --vm "$VM" --volume "$BASE" --direction pull --bandwidth 1
expect_code NOT_FOUND pk2 job show "$(uuid)"
check_chain "$S4,$BASE"
[ "$(pk2 job list | jq '.jobs | length')" = "$jobs_before" ] || fail "a job was created"
ok "after the bad input: chain $S4 <- $BASE, no new job"

# ---- 6. abort ---------------------------------------------------------------------------------------

S5=$(snapshot) && [ -n "$S5" ] || fail "snapshot 5"
wait_acks 2000 30
JOB=$(pk2 merge --vm "$VM" --drive vda --base "$BASE" --top "$S4" --bandwidth 128K | jq -r .job.job_id)
deadline=$((SECONDS + 20))
until [ "$(pk2 job show "$JOB" | jq -r .job.state)" = COMMITTING ]; do
	[ $SECONDS -lt $deadline ] || fail "not COMMITTING: $(pk2 job show "$JOB")"
	sleep 0.2
done
pk2 job abort "$JOB" >/dev/null || fail "abort"
expect_code ABORTED pk2 job wait "$JOB"
ok "abort: $LAST_ERROR"
check_chain "$S5,$S4,$BASE"
[ "$(spm_any volume info --image "$IMG" --volume "$S4" | jq -r .volume.legality)" = LEGAL ] ||
	fail "$S4 not LEGAL after the abort"
ok "after the abort the chain and legality are unchanged"

# ---- 7. cold merge ----------------------------------------------------------------------------------

wait_acks 300 30
virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop the VM"
[ "$(pk2 vm list --vm "$VM" | jq -r '.vms[0].state')" = shutoff ] || fail "VM not shut off"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S4") || fail "cold delete $S4: $out"
[ "$(echo "$out" | jq -r .job.kind)" = COLD_COMMIT ] || fail "kind: $out"
check_vm_chain "$S5,$BASE"
deleted "$S4"
ok "cold merge of $S4 (qemu-img commit) while the VM is down"
# The live snapshots wrote the chain into the VM's definition (<backingStore>):
# after the cold merge the VM must still start, on S5 <- BASE.
out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$S5") || fail "pk-verify after the cold merge: $out"
rm -f "$SERIAL" "$SERIAL".[0-9] "$SERIAL.all"
boot_writes "$S5,$BASE"
ok "after the cold merge of $S4 the VM starts on $S5 <- $BASE and writes; its data was intact ($out)"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S5") || fail "cold delete of the leaf $S5: $out"
[ "$(echo "$out" | jq -r .job.kind)" = COLD_COMMIT ] || fail "kind: $out"
check_vm_chain "$BASE"
[ "$(spm_any volume info --image "$IMG" --volume "$BASE" | jq -r .volume.role)" = LEAF ] ||
	fail "$BASE is not the LEAF"
deleted "$S5"
ok "cold merge of the leaf $S5: the VM's definition opens $BASE (raw) now"

# ---- 8. every acknowledged write is there; the VM starts on its new chain --------------------------

out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/$BASE") || fail "pk-verify: $out"
ok "pk-verify: $out"
mv "$SERIAL" "$SERIAL.boot1" && rm -f "$SERIAL".[0-9]
boot_writes "$BASE"
ok "the VM started again on $BASE alone and wrote"
hsmd_stops_cleanly
echo "PASS: $CHECKS checks"
