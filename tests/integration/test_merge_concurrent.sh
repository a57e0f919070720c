#!/bin/bash
# pk-itest: libvirt
# test_merge_concurrent — many live merges at once on one host, as an engine
# deleting snapshots of many VMs runs them.
#
# A 2-host lab: the SPM on host 1, PK_CONC_VMS (default 10) writing guests on
# host 2, each on BASE (RAW) <- L0 (COW, a small LV that merges must extend),
# and one more VM with two disks.
#   1. two live snapshots of every VM (S1, S2), then one `pkctl snapshot
#   delete` per VM, all at once: the leaf S2 of even VMs (active commit and
#   pivot), the internal S1 of odd ones (commit); every job DONE, every chain
#   the expected one in metadata and in qemu, consistent, the volume deleted;
#   2. the other volume of every VM, again all at once (now every kind mixed
#   the other way round);
#   3. both disks of the two-disk VM merged at once;
#   4. two deletes of one snapshot at once: both exit 0; a re-run after
#   success exits 0 ("already deleted"), while an unknown volume id still is
#   NOT_FOUND;
#   5. pk-verify: every write each guest acknowledged is on its final chain.
# PK_CONC_ROUNDS (default 1) repeats 1-2 with fresh snapshots.
# Everything is removed in the EXIT trap.
#
# Needs: root, libvirtd, qemu, ${BUILD}/{spmd,hsmd,pkctl,pk-lvmapd},
# ${BUILD}/tests/tools/pk-verify (make tools).
source "$(dirname "$0")/lib.sh"

NVM=${PK_CONC_VMS:-10}
ROUNDS=${PK_CONC_ROUNDS:-1}
PREFIX=pkt-conc-$$
VMS=()
cleanup() {
	local rc=$?
	for VM in "${VMS[@]}"; do merge_vm_remove; done
	# The lab goes with its logs: keep host 2's hsmd log of a failed run.
	[ $rc -eq 0 ] || cp "${PK_LAB_DIR:-}/${PK_LAB:-}/host2/hsmd.log" \
		"$BUILD/test-logs/integration/test_merge_concurrent.hsmd2.log" 2>/dev/null
	(exit $rc)
	lab_down
}
trap cleanup EXIT
source "$(dirname "$0")/merge_lib.sh"

# use I: the merge_lib globals (VM, IMG, SERIAL) name VM number I.
use() {
	VM=${VMS[$1]} IMG=${IMGS[$1]} SERIAL=${SERIALS[$1]}
}

# delete_all OUTDIR I=VOLUME...: one `pkctl snapshot delete` per VM, all at
# once; OUTDIR/I.json holds each one's output and OUTDIR/I.rc its status.
delete_all() {
	local dir=$1 kv i v
	shift
	mkdir -p "$dir"
	for kv in "$@"; do
		i=${kv%%=*} v=${kv#*=}
		(
			use "$i"
			pk2 snapshot delete --vm "$VM" --volume "$v" >"$dir/$i.json"
			echo $? >"$dir/$i.rc"
		) &
	done
	wait
}

# two_deletes OUTDIR V1 V2: `pkctl snapshot delete` of V1 and of V2 on the VM at
# once; both must exit 0 (outputs in OUTDIR/1.json and OUTDIR/2.json).
two_deletes() {
	local dir=$1 p1 p2
	mkdir -p "$dir"
	pk2 snapshot delete --vm "$VM" --volume "$2" >"$dir/1.json" &
	p1=$!
	pk2 snapshot delete --vm "$VM" --volume "$3" >"$dir/2.json" &
	p2=$!
	wait $p1 || fail "delete of $2 (with one of $3 at once): $(cat "$dir/1.json")"
	wait $p2 || fail "delete of $3 (with one of $2 at once): $(cat "$dir/2.json")"
}

# expect_done OUTDIR I KIND: delete I exited 0 with a DONE job of KIND.
expect_done() {
	local out rc
	out=$(cat "$1/$2.json") rc=$(cat "$1/$2.rc")
	[ "$rc" = 0 ] || fail "delete on ${VMS[$2]} exited $rc: $out"
	[ "$(echo "$out" | jq -r .job.state)" = DONE ] || fail "delete on ${VMS[$2]}: $out"
	[ "$(echo "$out" | jq -r .job.kind)" = "$3" ] || fail "delete on ${VMS[$2]}: kind $(echo "$out" | jq -r .job.kind), want $3"
}

# ---- the lab: SPM on host 1, the VMs on host 2 ------------------------------------------

lab_up "itest-conc-$$" 2
D=$PK_DOMAIN
spm 1 spm start >/dev/null || fail "spm start on host 1"
lab/guest-build "$GUEST" >/dev/null || fail "guest-build"
IMGS=() SERIALS=() BASES=() L0S=()
for i in $(seq 0 $((NVM - 1))); do
	VMS[i]=$PREFIX-$i IMGS[i]=$(uuid) BASES[i]=$(uuid) L0S[i]=$(uuid)
	SERIALS[i]=$PK_LAB_DIR/$PK_LAB/host2/${VMS[i]}.serial
	use "$i"
	spm_any volume create --image "$IMG" --volume "${BASES[i]}" --format raw --capacity 64M \
		>/dev/null || fail "create base $i"
	spm_any volume create --image "$IMG" --volume "${L0S[i]}" --parent "${BASES[i]}" \
		--format cow --size 16M >/dev/null || fail "create leaf $i"
	out=$(hsm 2 image prepare --image "$IMG") || fail "prepare $i: $out"
	out=$(pk2 vm create --name "$VM" --memory 192 --type qemu \
		--disk "image=$IMG,volume=${L0S[i]}" \
		--kernel vmlinuz --initrd initrd.img \
		--cmdline "$GUEST_KARGS pk.disks=vda pk.blocks=2048 pk.stats_s=0") || fail "vm create $i: $out"
done
# The two-disk VM (index NVM).
T=$NVM
VMS[T]=$PREFIX-two IMGS[T]=$(uuid) IMG_B=$(uuid) BASES[T]=$(uuid) L0S[T]=$(uuid)
BASE_B=$(uuid) L0_B=$(uuid)
SERIALS[T]=$PK_LAB_DIR/$PK_LAB/host2/${VMS[T]}.serial
use "$T"
spm_any volume create --image "$IMG" --volume "${BASES[T]}" --format raw --capacity 64M >/dev/null &&
	spm_any volume create --image "$IMG" --volume "${L0S[T]}" --parent "${BASES[T]}" \
		--format cow --size 16M >/dev/null &&
	spm_any volume create --image "$IMG_B" --volume "$BASE_B" --format raw --capacity 64M >/dev/null &&
	spm_any volume create --image "$IMG_B" --volume "$L0_B" --parent "$BASE_B" --format cow \
		--size 16M >/dev/null || fail "create the two-disk VM's volumes"
hsm 2 image prepare --image "$IMG" >/dev/null && hsm 2 image prepare --image "$IMG_B" >/dev/null ||
	fail "prepare the two-disk VM's images"
out=$(pk2 vm create --name "$VM" --memory 192 --type qemu \
	--disk "image=$IMG,volume=${L0S[T]}" --disk "image=$IMG_B,volume=$L0_B" \
	--kernel vmlinuz --initrd initrd.img \
	--cmdline "$GUEST_KARGS pk.disks=vda,vdb pk.blocks=2048 pk.stats_s=0") || fail "vm create two-disk: $out"
for i in $(seq 0 "$T"); do
	use "$i"
	wait_ready
done
for i in $(seq 0 "$T"); do
	use "$i"
	wait_acks 200 120
done
ok "$((NVM + 1)) VMs write on host 2; SPM on host 1"

# ---- 1-2. NVM deletes at once, twice per round --------------------------------------------------

declare -A S1 S2
for round in $(seq 1 "$ROUNDS"); do
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		S1[$i]=$(snapshot) && [ -n "${S1[$i]}" ] || fail "snapshot 1 of $VM"
	done
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		wait_acks 300 120
		S2[$i]=$(snapshot) && [ -n "${S2[$i]}" ] || fail "snapshot 2 of $VM"
	done
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		wait_acks 300 120
		check_chain "${S2[$i]},${S1[$i]},${L0S[i]},${BASES[i]}"
	done
	args=()
	for i in $(seq 0 $((NVM - 1))); do
		if ((i % 2 == 0)); then args+=("$i=${S2[$i]}"); else args+=("$i=${S1[$i]}"); fi
	done
	start=$SECONDS
	delete_all "$PK_LAB_DIR/$PK_LAB/r$round.a" "${args[@]}"
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		if ((i % 2 == 0)); then
			expect_done "$PK_LAB_DIR/$PK_LAB/r$round.a" "$i" ACTIVE_COMMIT
			check_chain "${S1[$i]},${L0S[i]},${BASES[i]}"
			merge_deleted "${S2[$i]}"
		else
			expect_done "$PK_LAB_DIR/$PK_LAB/r$round.a" "$i" COMMIT
			check_chain "${S2[$i]},${L0S[i]},${BASES[i]}"
			merge_deleted "${S1[$i]}"
		fi
	done
	ok "round $round: $NVM deletes at once (active and internal commits) in $((SECONDS - start)) s: all DONE, chains consistent"
	args=()
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		wait_acks 200 120
		if ((i % 2 == 0)); then args+=("$i=${S1[$i]}"); else args+=("$i=${S2[$i]}"); fi
	done
	start=$SECONDS
	delete_all "$PK_LAB_DIR/$PK_LAB/r$round.b" "${args[@]}"
	for i in $(seq 0 $((NVM - 1))); do
		use "$i"
		expect_done "$PK_LAB_DIR/$PK_LAB/r$round.b" "$i" ACTIVE_COMMIT
		check_chain "${L0S[i]},${BASES[i]}"
		if ((i % 2 == 0)); then merge_deleted "${S1[$i]}"; else merge_deleted "${S2[$i]}"; fi
	done
	ok "round $round: $NVM active commits at once in $((SECONDS - start)) s: all DONE, every VM back on its L0"
done

# ---- 3. both disks of one VM at once ----------------------------------------------------------------

use "$T"
out=$(pk2 vm snapshot --vm "$VM") || fail "snapshot of the two-disk VM: $out"
NA=$(echo "$out" | jq -r '.snapshot[] | select(.drive == "vda") | .new_leaf')
NB=$(echo "$out" | jq -r '.snapshot[] | select(.drive == "vdb") | .new_leaf')
wait_acks 300 60
dir=$PK_LAB_DIR/$PK_LAB/two
two_deletes "$dir" "$NA" "$NB"
chains=$(pk2 vm list --vm "$VM" | jq -r '[.vms[0].drives[] | .target + ":" + (.live_chain | join(","))] | join(" ")')
[ "$chains" = "vda:${L0S[T]},${BASES[T]} vdb:$L0_B,$BASE_B" ] || fail "two-disk chains: $chains"
for drv in vda vdb; do
	c=$(pk2 vm chain --vm "$VM" --drive $drv) || fail "vm chain $drv: $c"
	[ "$(echo "$c" | jq -r .consistent)" = true ] || fail "$drv: chains differ: $c"
done
ok "both disks of $VM merged at once (active commits): $chains"

# ---- 4. the same snapshot deleted twice at once, and once more ---------------------------------------

use 0
S3=$(snapshot) && [ -n "$S3" ] || fail "snapshot 3"
wait_acks 300 60
dir=$PK_LAB_DIR/$PK_LAB/twice
two_deletes "$dir" "$S3" "$S3"
for n in 1 2; do
	[ "$(jq -r .volume_id "$dir/$n.json")" = "$S3" ] || fail "delete $n: $(cat "$dir/$n.json")"
done
check_chain "${L0S[0]},${BASES[0]}"
merge_deleted "$S3"
out=$(pk2 snapshot delete --vm "$VM" --volume "$S3") || fail "re-run after success: $out"
[ "$(echo "$out" | jq -r '.volume_id + " " + (.already_deleted | tostring)')" = "$S3 true" ] ||
	fail "re-run after success: $out"
expect_code NOT_FOUND pk2 snapshot delete --vm "$VM" --volume "$(uuid)"
ok "two deletes of $S3 at once both exit 0 ($(jq -r .how "$dir/1.json"), $(jq -r .how "$dir/2.json")); a re-run says: $(echo "$out" | jq -r .how); an unknown id -> NOT_FOUND"

# ---- 5. every acknowledged write is on the final chains ---------------------------------------------

for i in $(seq 0 $((NVM - 1))); do
	use "$i"
	virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop $VM"
	out=$(verify_acks "$PK_HOST2_RUN/storage/$D/$IMG/${L0S[i]}") || fail "pk-verify of $VM: $out"
done
use "$T"
virsh -c qemu:///system destroy "$VM" >/dev/null || fail "stop $VM"
guest_log >"$SERIAL.all" || fail "the two-disk guest's serial log is incomplete"
out=$("$VERIFY" --log "$SERIAL.all" --disk "vda=$PK_HOST2_RUN/storage/$D/$IMG/${L0S[T]}" \
	--disk "vdb=$PK_HOST2_RUN/storage/$D/$IMG_B/$L0_B") || fail "pk-verify of $VM: $out"
ok "pk-verify: every acknowledged write of the $((NVM + 1)) guests is on its final chain"
hsmd_stops_cleanly
echo "PASS: $CHECKS checks"
