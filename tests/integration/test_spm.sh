#!/bin/bash
# SPM: the lease race, volumes and chains, safety checks, bad input,
# failover after kill -9, and a crash in the middle of DeleteVolume.
source "$(dirname "$0")/lib.sh"
trap lab_down EXIT
lab_up "itest-spm-$$" 2
D=$PK_DOMAIN

# Never two SPMs: checked at every step below.
check_single_spm() {
	local n=0 s
	for h in 1 2; do
		s=$(spm "$h" spm status | jq -r .state)
		[ "$s" = SPM ] && n=$((n + 1))
	done
	[ "$n" -le 1 ] || fail "two hosts claim the SPM role"
}

# 1. Both race SpmStart: exactly one wins, the other names the winner.
spm 1 spm start >/tmp/pk-spm-$$.1 2>&1 &
p1=$!
spm 2 spm start >/tmp/pk-spm-$$.2 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
[ $((r1 + r2)) -eq 1 ] || fail "expected exactly one winner (exits $r1 $r2): $(cat /tmp/pk-spm-$$.1 /tmp/pk-spm-$$.2)"
if [ $r1 -eq 0 ]; then W=1 L=2; else W=2 L=1; fi
loser=$(cat /tmp/pk-spm-$$.$L)
rm -f /tmp/pk-spm-$$.*
[ "$(echo "$loser" | jq -r .error.code)" = NOT_SPM ] || fail "loser answered: $loser"
echo "$loser" | jq -r .error.message | grep -q "host $W holds" || fail "loser does not name host $W: $loser"
ok "SpmStart race: host $W won, host $L answered NOT_SPM naming host $W"
[ "$(spm $W spm status | jq -r .state)" = SPM ] || fail "winner not SPM"
[ "$(spm $L spm status | jq -r .spm_host_id)" = "$W" ] || fail "loser does not see the SPM"
check_single_spm
ok "status: host $W is SPM, host $L sees it"

# 2. A chain base(RAW) <- s1(COW) <- s2(COW).
IMG=$(uuid) BASE=$(uuid) S1=$(uuid) S2=$(uuid)
spm_any volume create --image "$IMG" --volume "$BASE" --format raw --capacity 256M >/dev/null || fail "create base"
spm_any volume create --image "$IMG" --volume "$S1" --parent "$BASE" --format cow >/dev/null || fail "create s1"
out=$(spm_any volume create --image "$IMG" --volume "$S2" --parent "$S1" --format cow) || fail "create s2: $out"
[ "$(echo "$out" | jq -r .volume.capacity)" = $((256 << 20)) ] || fail "s2 capacity: $out"
[ "$(echo "$out" | jq -r .task.state)" = DONE ] || fail "s2 task: $out"
chain=$(spm_any image chain --image "$IMG" | jq -r '.chain[].volume_id' | paste -sd, -)
[ "$chain" = "$S2,$S1,$BASE" ] || fail "metadata chain is $chain"
ok "metadata chain leaf->base: s2, s1, base"

# The chain qemu sees on the activated leaf agrees (relative backing names).
PROBE="$BUILD/tests/tools/pk-lvm-probe -d $PK_PVS -a lab -m $PK_HOST1_LVMAP"
for v in "$BASE" "$S1" "$S2"; do $PROBE activate "$D" "$v" >/dev/null || fail "activate $v"; done
qchain=$(qemu-img info --backing-chain --output=json "$PK_HOST1_LVMAP/$D/$S2" |
	jq -r '.[].filename' | xargs -n1 basename | paste -sd, -)
[ "$qchain" = "$S2,$S1,$BASE" ] || fail "qemu-img chain is $qchain"
for v in "$S2" "$S1" "$BASE"; do $PROBE deactivate "$D" "$v" >/dev/null || fail "deactivate $v"; done
ok "qemu-img info --backing-chain on the activated leaf agrees"

# 3. Safety and bad input: each refused with a clear code, nothing changed.
expect_code IN_USE spm_any volume delete --image "$IMG" --volume "$S1"
ok "DeleteVolume s1 (a parent) -> IN_USE: $LAST_ERROR"
IMG2=$(uuid)
expect_code INVALID_ARGUMENT spm_any volume create --image not-a-uuid --format raw --capacity 1G
expect_code INVALID_ARGUMENT spm_any volume create --image "$IMG2" --volume "../x" --format raw --capacity 1G
expect_code INVALID_ARGUMENT spm_any volume create --image "$IMG2" --format raw --capacity 0
expect_code INVALID_ARGUMENT spm_any volume create --image "$IMG2" --format raw --capacity 1000
expect_code NO_SPACE spm_any volume create --image "$IMG2" --format raw --capacity 50T
expect_code INVALID_ARGUMENT spm_any volume create --image "$IMG2" --format cow --parent "$S2"
expect_code NOT_FOUND spm_any volume create --image "$IMG2" --format cow --parent "$(uuid)"
expect_code INVALID_ARGUMENT spm_any volume create --image "$IMG2" --format raw --parent "$BASE" --capacity 1G
expect_code CONFLICT spm_any volume create --image "$IMG" --format cow --parent "$BASE"
expect_code ALREADY_EXISTS spm_any volume create --image "$IMG" --volume "$S2" --format cow --parent "$S1"
expect_code NOT_FOUND spm_any volume info --domain "$(uuid)" --image "$IMG" --volume "$S2"
expect_code INVALID_ARGUMENT spm_any volume info --image "$IMG2" --volume "$S2"
expect_code NOT_FOUND spm_any volume delete --image "$IMG" --volume "$(uuid)"
expect_code INVALID_ARGUMENT spm_any volume extend --image "$IMG" --volume "$S2" --size 1000
expect_code NO_SPACE spm_any volume extend --image "$IMG" --volume "$S2" --size 50T
n=$(spm_any domain info | jq -r .volume_count)
[ "$n" = 3 ] || fail "volume count changed to $n"
ok "bad input refused (UUIDs, sizes, space, parents, images, domains); 3 volumes unchanged"

# Refused by the checks before a task is recorded: the SPM's task list does not grow.
ntasks=$(spm $W task list | jq '.tasks | length')
expect_code INVALID_ARGUMENT spm $W volume create --image "$IMG2" --format raw --capacity 64M \
	--description "$(printf 'd%.0s' $(seq 200))"
echo "$LAST_ERROR" | grep -q "200 bytes, longer than the limit of 120" ||
	fail "description message: $LAST_ERROR"
expect_code INVALID_ARGUMENT spm $W volume extend --image "$IMG" --volume "$S2" --size 1000
expect_code NOT_FOUND spm $W volume extend --image "$IMG" --volume "$(uuid)" --size 1G
expect_code NOT_FOUND spm $W volume delete --image "$IMG" --volume "$(uuid)"
expect_code NOT_FOUND spm $W volume create --image "$IMG2" --format cow --parent "$(uuid)"
[ "$(spm $W task list | jq '.tasks | length')" = "$ntasks" ] || fail "a refused request left a task"
ok "refused before recording (description over 120 bytes named, sizes, missing volumes): no task"

# Mutations on the non-SPM are refused, naming the SPM.
expect_code NOT_SPM spm $L volume create --image "$IMG2" --format raw --capacity 64M
echo "$LAST_ERROR" | grep -q "host $W" || fail "NOT_SPM does not name host $W: $LAST_ERROR"
ok "non-SPM refuses writes: $LAST_ERROR"

# Extend and update-meta, then delete the leaf, then the chain is s1, base.
out=$(spm_any volume extend --image "$IMG" --volume "$S2" --size 600M) || fail "extend: $out"
[ "$(echo "$out" | jq -r .volume.lv_size)" -ge $((600 << 20)) ] || fail "extend size: $out"
expect_code IN_USE spm_any volume delete --image "$IMG" --volume "$S2"
ok "DeleteVolume s2 (the leaf, prepared nowhere) -> IN_USE without force: $LAST_ERROR"
spm_any volume delete --image "$IMG" --volume "$S2" --force >/dev/null || fail "delete s2"
chain=$(spm_any image chain --image "$IMG" | jq -r '.chain[].volume_id' | paste -sd, -)
[ "$chain" = "$S1,$BASE" ] || fail "chain after delete is $chain"
ok "extend, delete leaf (forced): chain s1, base"

# 4. A crash in the middle of DeleteVolume: the next SPM finishes it.
restart_spmd $W PK_FAULT=delete_volume:marked
spm $W spm start >/dev/null || fail "spm start after restart"
# s1 is the leaf again (forced: a leaf is refused otherwise).
spm_any volume delete --image "$IMG" --volume "$S1" --force >/dev/null 2>&1 && fail "delete should have crashed spmd"
lvs_out=$(lvs --config "$PK_LVM_CONFIG" --noheadings -o lv_name,lv_tags "$D" 2>/dev/null)
echo "$lvs_out" | grep "$S1" | grep -q PK_LEGAL=REMOVING || fail "s1 not marked REMOVING after the crash: $lvs_out"
ok "kill at delete_volume:marked left s1 marked REMOVING"
restart_spmd $W
spm $W spm start >/dev/null || fail "spm start for recovery"
lvs --config "$PK_LVM_CONFIG" --noheadings -o lv_name "$D" | grep -q "$S1" && fail "s1 still exists after recovery"
chain=$(spm_any image chain --image "$IMG" | jq -r '.chain[].volume_id' | paste -sd, -)
[ "$chain" = "$BASE" ] || fail "chain after recovery is $chain"
ok "recovery on SpmStart completed the removal; no LV half removed"

# 5. kill -9 of the SPM's spmd lets the other host become SPM.
check_single_spm
kill -9 "$(cat "$PK_LAB_DIR/$PK_LAB/host$W/spmd.pid")"
sleep 0.5
out=$(spm $L spm start) || fail "host $L could not take over: $out"
[ "$(echo "$out" | jq -r .state)" = SPM ] || fail "host $L not SPM: $out"
ok "kill -9 of host $W's spmd: host $L became SPM"
restart_spmd $W
check_single_spm
expect_code NOT_SPM spm $W spm start
ok "restarted host $W stays HSM-only: $LAST_ERROR"
out=$(spm_any volume create --image "$IMG" --parent "$BASE" --format cow) || fail "create on new SPM: $out"
ok "the new SPM serves writes"
echo "PASS: $CHECKS checks"
