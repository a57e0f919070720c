#!/bin/bash
# pk-itest: libvirt
# test_rule6 — nothing from the wire becomes a host path, and no host file is
# opened because a guest wrote a qcow2 header (docs/DESIGN.md rule 6); and
# DeleteVolume refuses what a VM may use. A 1-host lab (SPM and hsmd on host 1):
#   1. VmCreate with kernel=/etc/shadow, a '..' name or a symlink out of the
#      boot dir is INVALID_ARGUMENT; pkctl --serial-log is gone;
#   2. a RAW volume whose first bytes are a qcow2 header naming /etc/shadow
#      as its backing file (image I: COW leaf <- that RAW base; image J: that
#      RAW volume alone) is inspected (GetVolumeChain), snapshotted, merged
#      (active commit into the COW layer, then into the RAW base: measured,
#      checked, committed) and its merged layers deleted, while
#      `strace -f -e trace=open,openat` of hsmd shows /etc/shadow never opened
#      (and qemu-img opening the volumes, so the trace is not empty);
#   3. the serial log is hsmd's <log_dir>/<vm>.serial;
#   4. DeleteVolume refuses a prepared leaf and an unprepared leaf without
#      force; PrepareImage fails when the SPM cannot record it.
# Everything (VM, lab, strace) is removed in the EXIT trap.
#
# Needs: root, libvirtd, qemu, strace, ${BUILD}/{spmd,hsmd,pkctl,pk-lvmapd}.
source "$(dirname "$0")/lib.sh"

VM=pkt-rule6-$$
T=$(mktemp -d /tmp/pk-itest-rule6-XXXXXX)
STRACE_PID=""

cleanup() {
	local rc=$?
	[ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null
	if [ -n "${PK_HOST1_HSM:-}" ]; then
		"$PKCTL" --hsm "$PK_HOST1_HSM" --timeout 20000 vm destroy --vm "$VM" >/dev/null 2>&1 || true
	fi
	if virsh -c qemu:///system dominfo "$VM" >/dev/null 2>&1; then
		virsh -c qemu:///system destroy "$VM" >/dev/null 2>&1 || true
		virsh -c qemu:///system undefine "$VM" >/dev/null 2>&1 || true
	fi
	rm -rf "$T"
	(exit $rc)
	lab_down
}
trap cleanup EXIT

command -v strace >/dev/null || fail "strace is not installed (scripts/deps.txt)"

# pk1 ARGS...: pkctl against host 1's hsmd and the cluster's SPM, JSON out.
pk1() { "$PKCTL" --json --hsm "$PK_HOST1_HSM" --spm "$PK_SPMS" "$@"; }
chain_of() { hsm 1 vm chain --image "$1" | jq -r '.live_chain | join(",")'; }

# ---- 1. the lab, with a boot directory of its own ------------------------------------

mkdir -p "$T/boot/sub"
echo "not a kernel" >"$T/boot/vmlinuz"
ln -s /etc/shadow "$T/boot/evil"
ln -s ../../../../../../../etc/shadow "$T/boot/sub/up"
export PK_LAB_BOOT_DIR=$T/boot
lab_up "itest-rule6-$$" 1
D=$PK_DOMAIN
spm 1 spm start >/dev/null || fail "spm start on host 1"
ok "host 1 is the SPM of domain $D; hsmd's boot_dir is $T/boot"

for k in /etc/shadow ../../../../etc/shadow sub/../../../etc/shadow evil sub/up sub; do
	expect_code INVALID_ARGUMENT pk1 vm create --name "$VM" --type qemu --kernel "$k"
	echo "$LAST_ERROR" | grep -q kernel || fail "kernel '$k': the message does not name the field: $LAST_ERROR"
	echo "$LAST_ERROR" | grep -q 'root:' && fail "kernel '$k': the message shows the file: $LAST_ERROR"
done
expect_code INVALID_ARGUMENT pk1 vm create --name "$VM" --type qemu --kernel vmlinuz --initrd evil
virsh -c qemu:///system dominfo "$VM" >/dev/null 2>&1 && fail "a refused VmCreate left a domain"
ok "kernel /etc/shadow, '..' names, symlinks out of the boot dir, a directory: INVALID_ARGUMENT ($LAST_ERROR)"
out=$("$PKCTL" --hsm "$PK_HOST1_HSM" vm create --name "$VM" --serial-log /etc/cron.d/x 2>&1) &&
	fail "pkctl --serial-log accepted: $out"
echo "$out" | grep -q log_dir || fail "pkctl --serial-log: $out"
ok "pkctl vm create --serial-log is refused: $out"

# ---- 2. volumes whose data is a qcow2 header naming /etc/shadow -----------------------

I=$(uuid) BASE=$(uuid) L0=$(uuid) J=$(uuid) R=$(uuid) K=$(uuid) KB=$(uuid)
spm_any volume create --image "$I" --volume "$BASE" --format raw --capacity 64M >/dev/null &&
	spm_any volume create --image "$I" --volume "$L0" --parent "$BASE" --format cow >/dev/null &&
	spm_any volume create --image "$J" --volume "$R" --format raw --capacity 64M >/dev/null &&
	spm_any volume create --image "$K" --volume "$KB" --format raw --capacity 64M >/dev/null ||
	fail "create volumes"
for img in "$I" "$J"; do
	out=$(hsm 1 image prepare --image "$img") || fail "prepare $img: $out"
done
qemu-img create -q -f qcow2 -u -o backing_file=/etc/shadow,backing_fmt=raw "$T/evil.qcow2" 64M ||
	fail "qemu-img create"
for v in "$I/$BASE" "$J/$R"; do
	dd if="$T/evil.qcow2" of="$PK_HOST1_RUN/storage/$D/$v" bs=64k conv=notrunc,fsync status=none ||
		fail "write the header into $v"
done
qemu-img info --output=json "$PK_HOST1_RUN/storage/$D/$J/$R" 2>/dev/null | jq -r '."backing-filename"' |
	grep -qx /etc/shadow || fail "the RAW volume does not look like a qcow2 over /etc/shadow to a probing qemu-img"
ok "RAW volumes $BASE (under COW $L0) and $R (alone) hold a qcow2 header naming /etc/shadow"

strace -f -qq -e trace=open,openat -o "$T/strace" -p "$(cat "$PK_HOST1_DIR/hsmd.pid")" &
STRACE_PID=$!
sleep 1 # strace attaches to every thread of hsmd
kill -0 "$STRACE_PID" 2>/dev/null || fail "strace could not attach to hsmd"

[ "$(chain_of "$J")" = "$R" ] || fail "GetVolumeChain of $J: $(hsm 1 vm chain --image "$J")"
[ "$(hsm 1 vm chain --image "$J" | jq -r .consistent)" = true ] || fail "chain of $J not consistent"
[ "$(chain_of "$I")" = "$L0,$BASE" ] || fail "GetVolumeChain of $I: $(hsm 1 vm chain --image "$I")"
ok "GetVolumeChain (qemu-img) reads $R alone and $L0 <- $BASE: the headers in RAW data are data"

# A firmware-only VM (no kernel): block jobs need no guest OS.
out=$(pk1 vm create --name "$VM" --memory 128 --type qemu --disk "image=$I,volume=$L0") ||
	fail "vm create: $out"
SERIAL=$(virsh -c qemu:///system dumpxml "$VM" | grep -o "<source path='[^']*serial'" | head -n 1 | cut -d"'" -f2)
[ "$SERIAL" = "$PK_HOST1_DIR/$VM.serial" ] || fail "serial log at '$SERIAL', not $PK_HOST1_DIR/$VM.serial"
ok "VM $VM runs on $L0; its serial log is hsmd's $SERIAL"

S1=$(pk1 vm snapshot --vm "$VM" | jq -r '.snapshot[0].new_leaf')
[ -n "$S1" ] && [ "$S1" != null ] || fail "snapshot failed"
out=$(pk1 snapshot delete --vm "$VM" --volume "$S1" --no-progress) || fail "delete $S1: $out"
[ "$(pk1 vm list --vm "$VM" | jq -r '.vms[0].drives[0].live_chain | join(",")')" = "$L0,$BASE" ] ||
	fail "live chain after the first merge: $(pk1 vm list --vm "$VM")"
out=$(pk1 snapshot delete --vm "$VM" --volume "$L0" --no-progress) || fail "delete $L0: $out"
[ "$(pk1 vm list --vm "$VM" | jq -r '.vms[0].drives[0].live_chain | join(",")')" = "$BASE" ] ||
	fail "live chain after the second merge: $(pk1 vm list --vm "$VM")"
for v in "$S1" "$L0"; do
	expect_code NOT_FOUND spm_any volume info --image "$I" --volume "$v"
done
ok "snapshot $S1, then merged $S1 into $L0 and $L0 into the RAW base; both deleted by the flow"

kill "$STRACE_PID" && wait "$STRACE_PID" 2>/dev/null
STRACE_PID=""
grep -q /etc/shadow "$T/strace" && fail "hsmd or a child opened /etc/shadow: $(grep /etc/shadow "$T/strace" | head -3)"
n=$(grep -c "storage/$D/\($I/$BASE\|$J/$R\)" "$T/strace" || true)
[ "$n" -gt 0 ] || fail "the trace shows no open of the RAW volumes: $(wc -l <"$T/strace") lines"
ok "strace of hsmd: $n opens of the RAW volumes, none of /etc/shadow"

# ---- 4. DeleteVolume refuses what a VM may use ------------------------------------------

expect_code IN_USE spm_any volume delete --image "$I" --volume "$BASE"
ok "DeleteVolume of the leaf under the VM -> IN_USE: $LAST_ERROR"
expect_code IN_USE spm_any volume delete --image "$J" --volume "$R"
hsm 1 image teardown --image "$J" >/dev/null || fail "teardown $J"
expect_code IN_USE spm_any volume delete --image "$J" --volume "$R"
echo "$LAST_ERROR" | grep -q leaf || fail "not refused as a leaf: $LAST_ERROR"
spm_any volume delete --image "$J" --volume "$R" --force >/dev/null || fail "forced delete of $R"
ok "a prepared leaf, then the torn-down leaf: IN_USE without force; forced delete works"

spm 1 spm stop >/dev/null || fail "spm stop"
out=$(hsm 1 image prepare --image "$K") && fail "prepare with no SPM succeeded: $out"
echo "$out" | jq -r .error.message | grep -q "cannot record" || fail "prepare with no SPM: $out"
[ -e "$PK_HOST1_RUN/storage/$D/$K/$KB" ] && fail "a refused prepare left a link"
spm 1 spm start >/dev/null || fail "spm start again"
out=$(hsm 1 image prepare --image "$K") || fail "prepare with the SPM back: $out"
ok "PrepareImage fails when the SPM cannot record it, nothing linked; works once it can"

echo "PASS: $CHECKS checks"
