#!/bin/bash
# pk-itest: libvirt
# test_hsm_snapshot — hsmd's images, VMs and live snapshots in a 2-host lab.
#
# The SPM runs on host 1; two images (RAW base <- COW leaf) are created there
# and prepared on host 2, where a VM (TCG, the lab's writing guest) runs on
# them. Then:
#   - `pkctl vm snapshot` adds a new leaf to both disks at once while the guest
#     writes; metadata and live chains agree; the acks go on, on the new leaves;
#   - libvirtd is restarted under the running VM: hsmd reconnects and
#     `pkctl vm list` shows the VM and its chains;
#   - a snapshot whose second new volume is made unreadable on purpose fails:
#     the VM keeps its chains and the new volumes are gone;
#   - bad input (unknown VM or drive, an image not prepared, a volume of
#     another image, a duplicate VM name, teardown of an image in use) is
#     refused with a clear error and changes nothing;
#   - after the VM is destroyed, pk-verify finds every acknowledged write.
# Everything (VM, lab) is removed in the EXIT trap.
#
# Needs: root, libvirtd, qemu, ${BUILD}/{spmd,hsmd,pkctl,pk-lvmapd},
# ${BUILD}/tests/tools/pk-verify (make tools). Restarts the shared libvirtd
# once (running VMs and other hsmds survive that; it is what is tested).
source "$(dirname "$0")/lib.sh"

VM=pkt-hsm-$$
VERIFY=$PWD/$BUILD/tests/tools/pk-verify
GUEST=$PWD/$BUILD/guest
export PK_CTL_TEST_SNAPSHOT_HOOK=

cleanup() {
	local rc=$?
	if ! pidof -s libvirtd >/dev/null; then
		setsid libvirtd -d || true
	fi
	if [ -n "${PK_HOST2_HSM:-}" ]; then
		"$PKCTL" --hsm "$PK_HOST2_HSM" --timeout 20000 vm destroy --vm "$VM" >/dev/null 2>&1 || true
	fi
	for v in "$VM" "$VM-b"; do
		if virsh -c qemu:///system dominfo "$v" >/dev/null 2>&1; then
			virsh -c qemu:///system destroy "$v" >/dev/null 2>&1 || true
			virsh -c qemu:///system undefine "$v" >/dev/null 2>&1 || true
		fi
	done
	(exit $rc)
	lab_down
}
trap cleanup EXIT

[ -x "$VERIFY" ] || fail "$VERIFY not built (make BUILD=$BUILD tools)"

# pk2 ARGS...: pkctl against host 2's hsmd and the cluster's SPM, JSON out.
pk2() { "$PKCTL" --json --hsm "$PK_HOST2_HSM" --spm "$PK_SPMS" "$@"; }

acks() { grep -ac '^PKACK ' "$SERIAL" || true; }

# wait_acks N SECONDS: until the guest acknowledged N more writes.
wait_acks() {
	local want=$(($(acks) + $1)) deadline=$((SECONDS + $2))
	while [ "$(acks)" -lt "$want" ]; do
		[ $SECONDS -lt $deadline ] || fail "the guest stopped acknowledging writes (at $(acks), wanted $want): $(grep -av PKACK "$SERIAL" | tail -n 3)"
		sleep 0.2
	done
}

# chains: "vda:leaf,...,base vdb:..." from `vm list`.
chains() {
	pk2 vm list --vm "$VM" | jq -r '.vms[0].drives[] | .target + ":" + (.live_chain | join(","))' |
		paste -sd' ' -
}

lvs_tags() { lvm lvs --config "$PK_LVM_CONFIG" --noheadings -o lv_name,lv_tags "$PK_VG" 2>/dev/null; }

# ---- 1. the lab, the SPM, two images prepared on host 2 ---------------------------

lab_up "itest-hsm-$$" 2
D=$PK_DOMAIN
SERIAL=$PK_LAB_DIR/$PK_LAB/host2/$VM.serial
spm 1 spm start >/dev/null || fail "spm start on host 1"
ok "host 1 is the SPM of domain $D"

IMG_A=$(uuid) BASE_A=$(uuid) LEAF_A=$(uuid)
IMG_B=$(uuid) BASE_B=$(uuid) LEAF_B=$(uuid)
for x in A B; do
	img=IMG_$x base=BASE_$x leaf=LEAF_$x
	spm_any volume create --image "${!img}" --volume "${!base}" --format raw --capacity 64M \
		>/dev/null || fail "create base $x"
	spm_any volume create --image "${!img}" --volume "${!leaf}" --parent "${!base}" --format cow \
		>/dev/null || fail "create leaf $x"
done
ok "two images created on the SPM: base (RAW) <- leaf (COW) each"

for x in A B; do
	img=IMG_$x leaf=LEAF_$x base=BASE_$x
	out=$(hsm 2 image prepare --image "${!img}") || fail "prepare $x: $out"
	[ "$(echo "$out" | jq -r '[.volumes[].volume_id] | join(",")')" = "${!leaf},${!base}" ] ||
		fail "prepare $x returned $out"
	link=$(echo "$out" | jq -r '.volumes[0].path')
	[ "$link" = "$PK_HOST2_RUN/storage/$D/${!img}/${!leaf}" ] || fail "leaf path $link"
	[ "$(readlink "$link")" = "$PK_HOST2_LVMAP/$D/${!leaf}" ] || fail "link $link -> $(readlink "$link")"
	[ "$(stat -L -c %U "$link")" = libvirt-qemu ] || fail "LV not given to qemu's user: $(stat -L -c %U:%G "$link")"
done
ok "both images prepared on host 2: links to the activated LVs, owned by libvirt-qemu"
n=$(lvs_tags | grep -c 'PK_PREP=2' || true)
[ "$n" -eq 4 ] || fail "the SPM recorded $n prepared volumes, not 4: $(lvs_tags)"
ok "the SPM recorded the preparation (PK_PREP=2 on all 4 volumes)"

# ---- 2. the VM ---------------------------------------------------------------------

lab/guest-build "$GUEST" >/dev/null || fail "guest-build"
out=$(pk2 vm create --name "$VM" --memory 256 --type qemu \
	--disk "image=$IMG_A,volume=$LEAF_A" --disk "image=$IMG_B,volume=$LEAF_B" \
	--kernel vmlinuz --initrd initrd.img \
	--cmdline "$GUEST_KARGS pk.disks=vda,vdb pk.blocks=2048") || fail "vm create: $out"
[ "$(echo "$out" | jq -r .vm.state)" = running ] || fail "vm create: $out"
[ "$(echo "$out" | jq -r .vm.type)" = qemu ] || fail "vm type: $out"
ok "VM $VM runs on host 2 (TCG)"
deadline=$((SECONDS + 60))
until grep -aq '^PKREADY' "$SERIAL" 2>/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "the guest did not start writing: $(tail -n 5 "$SERIAL" 2>/dev/null)"
	sleep 0.2
done
wait_acks 300 30
ok "the guest writes ($(acks) acks)"
[ "$(chains)" = "vda:$LEAF_A,$BASE_A vdb:$LEAF_B,$BASE_B" ] || fail "chains before: $(chains)"
ok "vm list: live chains leaf <- base on both drives"

# ---- 3. a live snapshot of both disks --------------------------------------------------

before=$(acks)
out=$(pk2 vm snapshot --vm "$VM") || fail "vm snapshot: $out"
NEW_A=$(echo "$out" | jq -r '.snapshot[] | select(.drive == "vda") | .new_leaf')
NEW_B=$(echo "$out" | jq -r '.snapshot[] | select(.drive == "vdb") | .new_leaf')
[ "$(echo "$out" | jq -r .warnings)" = null ] || fail "snapshot warnings: $out"
[ "$(chains)" = "vda:$NEW_A,$LEAF_A,$BASE_A vdb:$NEW_B,$LEAF_B,$BASE_B" ] ||
	fail "chains after the snapshot: $(chains)"
ok "vm snapshot: both drives switched to new leaves ($before acks before)"
for d in vda vdb; do
	c=$(pk2 vm chain --vm "$VM" --drive "$d") || fail "chain $d: $c"
	[ "$(echo "$c" | jq -r .consistent)" = true ] || fail "$d: metadata and live chains differ: $c"
	[ "$(echo "$c" | jq -r .live_source)" = libvirt ] || fail "$d: live source: $c"
done
[ "$(spm_any image chain --image "$IMG_A" | jq -r '.chain[].volume_id' | paste -sd, -)" = \
	"$NEW_A,$LEAF_A,$BASE_A" ] || fail "SPM chain of A"
[ "$(spm_any volume info --image "$IMG_A" --volume "$LEAF_A" | jq -r .volume.role)" = INTERNAL ] ||
	fail "old leaf of A is not INTERNAL"
[ "$(spm_any volume info --image "$IMG_B" --volume "$LEAF_B" | jq -r .volume.role)" = INTERNAL ] ||
	fail "old leaf of B is not INTERNAL"
ok "GetVolumeChain: metadata and live chains agree on both drives; old leaves INTERNAL"
wait_acks 300 30
for x in A B; do
	img=IMG_$x new=NEW_$x
	n=$(qemu-img map -U --output=json "$PK_HOST2_RUN/storage/$D/${!img}/${!new}" |
		jq '[.[] | select(.depth == 0 and .data)] | length')
	[ "$n" -gt 0 ] || fail "no data written to the new leaf of $x"
done
ok "the guest keeps writing, into the new leaves ($(acks) acks)"

# ---- 4. libvirtd restarts under the running VM -------------------------------------------

pid=$(pidof -s libvirtd) || fail "libvirtd does not run"
kill -TERM "$pid"
for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "libvirtd did not stop"
setsid libvirtd -d || fail "cannot start libvirtd again"
if [ -f "$PK_LAB_DIR/.services/libvirtd.pid" ]; then # a lab started it: keep its record right
	pidof -s libvirtd >"$PK_LAB_DIR/.services/libvirtd.pid"
fi
deadline=$((SECONDS + 30))
until out=$(pk2 vm list --vm "$VM" 2>/dev/null); do
	[ $SECONDS -lt $deadline ] || fail "hsmd did not reconnect to libvirtd: $out"
	sleep 0.5
done
grep -q 'libvirt connection re-established' "$PK_HOST2_DIR/hsmd.log" || fail "no reconnection logged"
[ "$(echo "$out" | jq -r '.vms[0].state')" = running ] || fail "after the restart: $out"
[ "$(chains)" = "vda:$NEW_A,$LEAF_A,$BASE_A vdb:$NEW_B,$LEAF_B,$BASE_B" ] ||
	fail "chains after the libvirtd restart: $(chains)"
wait_acks 200 30
ok "libvirtd restarted: hsmd reconnected, vm list shows the VM and its chains, writes go on"

# ---- 5. a failed snapshot: the second new volume is unreadable for qemu -------------------

HOOKOUT=$PK_LAB_DIR/$PK_LAB/hook.out
export PK_CTL_TEST_SNAPSHOT_HOOK="echo \"\$PK_SNAPSHOT_VOLUMES\" >$HOOKOUT; for kv in \$PK_SNAPSHOT_VOLUMES; do case \$kv in vdb=*) v=\${kv#vdb=}; chmod 000 $PK_HOST2_LVMAP/\${v%%/*}/\${v##*/} ;; esac; done"
before_chains=$(chains)
expect_code INTERNAL pk2 vm snapshot --vm "$VM"
export PK_CTL_TEST_SNAPSHOT_HOOK=
echo "$LAST_ERROR" | grep -q 'keeps its old leaves, 2 new volume(s) removed' ||
	fail "failed snapshot says: $LAST_ERROR"
echo "$LAST_ERROR" | grep -q 'Permission denied' || fail "failed snapshot says: $LAST_ERROR"
[ "$(chains)" = "$before_chains" ] || fail "chains changed: $(chains)"
for kv in $(cat "$HOOKOUT"); do
	v=${kv##*/}
	expect_code NOT_FOUND spm_any volume info --image "$(echo "$kv" | cut -d/ -f2)" --volume "$v"
	[ ! -e "$PK_HOST2_LVMAP/$D/$v" ] || fail "new volume $v still active on host 2"
	ls "$PK_HOST2_RUN/storage/$D/"*/"$v" >/dev/null 2>&1 && fail "new volume $v still linked"
	lvs_tags | grep -q "$v" && fail "LV of new volume $v still exists"
done
[ "$(spm_any image chain --image "$IMG_B" | jq '.orphans | length')" = 0 ] || fail "orphans in B"
wait_acks 200 30
ok "failed snapshot (qemu: Permission denied on vdb's new leaf): old chains kept, new volumes gone, writes go on"

# ---- 6. bad input: a clear error each, nothing changes -------------------------------------

IMG_C=$(uuid) BASE_C=$(uuid)
spm_any volume create --image "$IMG_C" --volume "$BASE_C" --format raw --capacity 16M >/dev/null ||
	fail "create image C"
expect_code NOT_FOUND pk2 vm snapshot --vm "nosuch-$$"
ok "snapshot of an unknown VM -> NOT_FOUND: $LAST_ERROR"
expect_code NOT_FOUND pk2 vm snapshot --vm "$VM" --drive vdz
ok "snapshot of an unknown drive -> NOT_FOUND: $LAST_ERROR"
expect_code NOT_FOUND pk2 vm chain --vm "$VM" --drive vdz
ok "hsmd GetVolumeChain of an unknown drive -> NOT_FOUND: $LAST_ERROR"
expect_code NOT_FOUND pk2 vm create --name "$VM-b" --type qemu --disk "image=$IMG_C,volume=$BASE_C"
ok "VM on an image not prepared here -> NOT_FOUND: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 vm create --name "$VM-b" --type qemu --disk "image=$IMG_A,volume=$LEAF_B"
ok "VM disk with a volume of another image -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code INVALID_ARGUMENT pk2 image prepare --image "$IMG_A" --volume "$NEW_B"
ok "prepare with a volume of another image -> INVALID_ARGUMENT: $LAST_ERROR"
expect_code ALREADY_EXISTS pk2 vm create --name "$VM" --type qemu
ok "duplicate VM name -> ALREADY_EXISTS: $LAST_ERROR"
expect_code IN_USE pk2 image teardown --image "$IMG_A"
ok "teardown of an image a VM uses -> IN_USE: $LAST_ERROR"
[ "$(pk2 vm list | jq -r '[.vms[].name] | join(",")')" = "$VM" ] || fail "VMs changed: $(pk2 vm list)"
[ "$(chains)" = "$before_chains" ] || fail "chains changed: $(chains)"
[ ! -e "$PK_HOST2_RUN/storage/$D/$IMG_C" ] || fail "image C got prepared"
ok "after the bad input: the same single VM, the same chains"

# ---- 7. destroy, verify every acknowledged write, tear down -----------------------------------

wait_acks 200 30
pk2 vm destroy --vm "$VM" >/dev/null || fail "vm destroy"
virsh -c qemu:///system dominfo "$VM" >/dev/null 2>&1 && fail "VM still defined in libvirt"
ok "VM destroyed ($(acks) acks in total)"
c=$(pk2 vm chain --image "$IMG_B") || fail "chain of B: $c"
[ "$(echo "$c" | jq -r .live_source)" = qemu-img ] || fail "live source without VM: $c"
[ "$(echo "$c" | jq -r .consistent)" = true ] || fail "chain of B without VM: $c"
ok "GetVolumeChain without a VM (qemu-img): consistent"
"$VERIFY" --log "$SERIAL" --disk "vda=$PK_HOST2_RUN/storage/$D/$IMG_A/$NEW_A" \
	--disk "vdb=$PK_HOST2_RUN/storage/$D/$IMG_B/$NEW_B" || fail "pk-verify found lost writes"
ok "pk-verify: every acknowledged write is on the chains"
for img in "$IMG_A" "$IMG_B"; do
	pk2 image teardown --image "$img" >/dev/null || fail "teardown $img"
done
[ -z "$(ls -A "$PK_HOST2_RUN/storage" 2>/dev/null)" ] || fail "links left: $(ls -R "$PK_HOST2_RUN/storage")"
[ -z "$(ls -A "$PK_HOST2_LVMAP/$D" 2>/dev/null)" ] || fail "LVs left active: $(ls "$PK_HOST2_LVMAP/$D")"
n=$(lvs_tags | grep -c 'PK_PREP=' || true)
[ "$n" -eq 0 ] || fail "PK_PREP tags left: $(lvs_tags)"
ok "images torn down: no links, no active LVs, the SPM's PK_PREP tags cleared"
echo "test_hsm_snapshot: all $CHECKS checks passed"
