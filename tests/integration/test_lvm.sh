#!/bin/bash
# LVM in-process through liblvm2cmd (common/lvm.c), volume metadata as LV
# tags (common/meta.c) and the lab activation backend (common/activation*.c),
# driven by tests/tools/pk-lvm-probe on two sparse files on loop devices:
# a domain VG with tags; volumes created with their tags; a metadata update
# that is one LVM commit; an extend that spills onto the second PV; reports;
# LVM's failures mapped to codes; a held LVM lock waited for, boundedly;
# activation through pk-lvmapd with bytes checked on the PVs (when
# pk-lvmapd is built); removal; and lvcreate+lvremove timed in-process and
# with the lvm CLI on the same VG.
# Needs root and loop devices (and /dev/fuse for the mapper part).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PROBE=$BUILD/tests/tools/pk-lvm-probe
LVMAPD=$BUILD/pk-lvmapd
NAME=test_lvm_$$
WORK=$(mktemp -d "/tmp/$NAME.XXXXXX")
VG=tlvm$$
MiB=1048576
EXT=$((4 * MiB))
DOMAIN=6f1c2d3e-4b5a-4c6d-8e7f-$(printf '%012x' $$)
IMG=1a2b3c4d-0000-4000-8000-000000000001
V1=aaaaaaaa-0000-4000-8000-$(printf '%012x' $$)
V2=bbbbbbbb-0000-4000-8000-$(printf '%012x' $$)
NIL=00000000-0000-0000-0000-000000000000

source "$(dirname "$0")/scratch_lib.sh"
scratch_before_detach() {
	if [ ${#LOOPS[@]} -eq 2 ] && [ -x "$PROBE" ]; then
		"$PROBE" -d "${LOOPS[0]},${LOOPS[1]}" vg-remove "$VG" force >/dev/null 2>&1
	fi
	rm -f "/run/lock/lvm/V_$VG"
}

[ -x "$PROBE" ] || fail "$PROBE not built (make BUILD=... tools)"

# p ARGS...: the probe on this test's two PVs only, with its lvm.conf in $WORK/lvm.
p() { "$PROBE" -d "$L0,$L1" -c "$WORK/lvm" "$@"; }

# lvm_cli ARGS...: the lvm binary with exactly the settings the probe wrote.
lvm_cli() { LVM_SYSTEM_DIR=$WORK/lvm LVM_SUPPRESS_FD_WARNINGS=1 lvm "$@" 2>>"$WORK/lvm-cli.log"; }

# expect_error CODE ARGS...: the probe fails with "ERROR CODE: ...".
expect_error() {
	local code=$1 out
	shift
	if out=$(p "$@" 2>&1); then
		fail "'$*' succeeded, expected $code"
	fi
	case $out in
	"ERROR $code: "*) ok "$* -> $out" ;;
	*) fail "'$*': expected $code, got: $out" ;;
	esac
}

# field KEY TEXT: the value of KEY=... in key=value text.
field() { sed -n "s/^$1=//p" <<<"$2"; }

step "setup: two 128 MiB sparse PVs on loop devices (31 extents each)"
for i in 0 1; do
	truncate -s 128M "$WORK/pv$i.img"
	LOOPS+=("$(losetup --find --show "$WORK/pv$i.img")")
done
L0=${LOOPS[0]}
L1=${LOOPS[1]}
echo "pvs: $L0 $L1"

step "a domain VG with its tags, in one vgcreate"
p domain-create "$VG" "$L0,$L1" "$DOMAIN" "test_lvm $$" || fail "domain-create"
grep -q "a|^$L0\\$|" "$WORK/lvm/lvm.conf" || fail "filter of $WORK/lvm/lvm.conf"
grep -q 'use_aio = 0' "$WORK/lvm/lvm.conf" || fail "use_aio in $WORK/lvm/lvm.conf"
ok "lvm.conf filters to $L0 $L1, use_aio = 0"
out=$(p domain-show "$VG") || fail "domain-show"
[ "$(field domain "$out")" = "$DOMAIN" ] || fail "domain id: $out"
[ "$(field version "$out")" = 1 ] || fail "version: $out"
[ "$(field description "$out")" = "test_lvm $$" ] || fail "description: $out"
ok "domain $DOMAIN version 1 read back"
out=$(p vg-report "$VG") || fail "vg-report"
echo "$out"
grep -q "^vg $VG .*extent_size=$EXT .*tags=.*PK_ROLE=DOMAIN" <<<"$out" || fail "vg line"
PE0=$(sed -n "s|^pv $L0 .*pe_start=\([0-9]*\)$|\1|p" <<<"$out")
PE1=$(sed -n "s|^pv $L1 .*pe_start=\([0-9]*\)$|\1|p" <<<"$out")
[ -n "$PE0" ] && [ -n "$PE1" ] || fail "pe_start of the PVs"
ok "VG report: extent size 4 MiB, pe_start $PE0 / $PE1"
[ "$(lvm_cli vgs --noheadings -o vg_tags "$VG" | tr -d ' ' | tr ',' '\n' | sort | paste -sd,)" = \
	"PK_DESC=test_lvm&20$$,PK_DOMAIN=$DOMAIN,PK_ROLE=DOMAIN,PK_VERSION=1" ] ||
	fail "tags as the lvm CLI sees them"
ok "the lvm CLI sees the same tags"

step "volumes created with their metadata tags"
p vol-create "$VG" "$V1" $((8 * MiB)) "$IMG" "$NIL" COW "base" || fail "vol-create V1"
p vol-create "$VG" "$V2" $((4 * MiB)) "$IMG" "$V1" COW || fail "vol-create V2"
out=$(p vol-show "$VG" "$V2") || fail "vol-show V2"
echo "$out"
[ "$(field parent "$out")" = "$V1" ] && [ "$(field format "$out")" = COW ] &&
	[ "$(field role "$out")" = LEAF ] && [ "$(field legality "$out")" = LEGAL ] &&
	[ "$(field capacity "$out")" = $((4 * MiB)) ] && [ "$(field generation "$out")" = 0 ] ||
	fail "V2 metadata"
ok "V2 decodes: parent V1, COW, LEAF, LEGAL, generation 0"

step "a metadata update is one LVM commit"
seq0=$(lvm_cli vgs --noheadings -o vg_seqno "$VG" | tr -d ' ')
out=$(p vol-set "$VG" "$V1" role=INTERNAL desc="base of $V2") || fail "vol-set"
echo "$out"
[ "$out" = "generation=1 added=3 deleted=3" ] || fail "vol-set: $out"
seq1=$(lvm_cli vgs --noheadings -o vg_seqno "$VG" | tr -d ' ')
[ "$seq1" -eq $((seq0 + 1)) ] || fail "VG seqno went $seq0 -> $seq1"
ok "VG metadata seqno $seq0 -> $seq1: one commit"
tags=$(lvm_cli lvs --noheadings -o lv_tags "$VG/$V1" | tr -d ' ')
for t in PK_ROLE=INTERNAL PK_GEN=1; do
	case ",$tags," in *",$t,"*) ;; *) fail "$t not in the tags after the update: $tags" ;; esac
done
for t in PK_ROLE=LEAF PK_GEN=0; do
	case ",$tags," in *",$t,"*) fail "$t left in the tags: $tags" ;; esac
done
ok "tags on storage: PK_ROLE=INTERNAL, PK_GEN=1, no old ones"
out=$(p vol-show "$VG" "$V1")
[ "$(field description "$out")" = "base of $V2" ] || fail "description: $out"
ok "description with spaces survives: '$(field description "$out")'"

step "errors are mapped, with LVM's words"
expect_error ALREADY_EXISTS lv-create "$VG" "$V1" $MiB
expect_error NO_SPACE lv-create "$VG" big $((1024 * MiB))
expect_error NOT_FOUND lv-remove "$VG" nope
expect_error NOT_FOUND lv-report "$VG" nope
expect_error NOT_FOUND vg-report "${VG}nope"
expect_error IN_USE vg-remove "$VG"
expect_error INVALID_ARGUMENT lv-create "$VG" "bad#name" $MiB
expect_error INVALID_ARGUMENT lv-create "$VG" x 1000
expect_error INVALID_ARGUMENT vg-create "${VG}b" /dev/loop-not-mine 0
p lv-create "$VG" "$IMG" $MiB || fail "a bare LV"
expect_error ILLEGAL vol-show "$VG" "$IMG"
p lv-remove "$VG" "$IMG" || fail "lv-remove"

step "extend V1 past the size of a PV: a second segment on the other PV"
p lv-extend "$VG" "$V1" $((40 * EXT)) || fail "extend"
p lv-extend "$VG" "$V1" $((2 * EXT)) || fail "extend to a smaller size"
ok "an extend to a smaller size is a no-op"
out=$(p lv-report "$VG" "$V1") || fail "lv-report"
echo "$out"
grep -q "^lv $V1 size=$((40 * EXT)) linear=1 " <<<"$out" || fail "V1 size"
pvs_used=$(awk '$1 == "seg" {print $5}' <<<"$out" | sort -u | tr '\n' ' ')
[ "$pvs_used" = "$(printf '%s\n' "$L0" "$L1" | sort | tr '\n' ' ')" ] ||
	fail "V1 lies on '$pvs_used'"
ok "V1 (40 extents, a PV holds 31) has segments on both PVs"
all=$(p lv-report "$VG") || fail "lv-report of the VG"
[ "$(grep -c '^lv ' <<<"$all")" -eq 2 ] || fail "LVs of the VG: $all"
ok "one report call lists both volumes"

step "the lab table: extents -> 512-byte sectors on the PVs"
table=$(p table "$VG" "$V1") || fail "table"
echo "$table"
expected=$(awk -v e=$((EXT / 512)) -v pe0=$((PE0 / 512)) -v pe1=$((PE1 / 512)) -v l0="$L0" '
	$1 == "seg" { print $3 * e, $4 * e, $5, ($5 == l0 ? pe0 : pe1) + $6 * e }' <<<"$out")
[ "$table" = "$expected" ] || fail "table differs from the report: $expected"
ok "table matches the segments"

if [ -x "$LVMAPD" ] && [ -e /dev/fuse ]; then
	step "activate V1 through pk-lvmapd; bytes land on the PVs"
	M=$WORK/map
	MOUNTS+=("$M")
	"$LVMAPD" --mount "$M" --foreground 2>"$WORK/lvmapd.log" &
	PIDS+=($!)
	for i in $(seq 100); do
		[ -e "$M/.control" ] && break
		sleep 0.05
	done
	[ -e "$M/.control" ] || fail "pk-lvmapd did not mount $M"
	pl() { p -a lab -m "$M" "$@"; }
	pl activate "$VG" "$V1" || fail "activate"
	F=$(pl path "$VG" "$V1")
	[ "$F" = "$M/$VG/$V1" ] || fail "path $F"
	[ "$(stat -c %s "$F")" -eq $((40 * EXT)) ] || fail "size of $F"
	ok "$F is a $((40 * EXT / MiB)) MiB file"
	# one 64 KiB pattern in every segment, 4 KiB into it
	while read -r start count pv off; do
		head -c 65536 /dev/urandom >"$WORK/pat"
		dd if="$WORK/pat" of="$F" bs=4096 seek=$((start / 8 + 1)) oflag=direct \
			conv=notrunc status=none || fail "write at sector $start"
		dd if="$pv" bs=512 skip=$((off + 8)) count=128 status=none >"$WORK/got"
		cmp -s "$WORK/pat" "$WORK/got" || fail "bytes at LV sector $start not at $pv:$off"
		ok "LV sector $((start + 8)) -> $pv sector $((off + 8))"
	done <<<"$table"

	step "refresh after an extend; deactivate (refused while open)"
	p lv-extend "$VG" "$V1" $((42 * EXT)) || fail "extend 2"
	exec 7<"$F"
	[ "$(stat -c %s "$F")" -eq $((40 * EXT)) ] || fail "size changed before the refresh"
	pl refresh "$VG" "$V1" || fail "refresh"
	[ "$(stat -c %s "$F")" -eq $((42 * EXT)) ] || fail "size after refresh"
	ok "refresh: $F grew to $((42 * EXT / MiB)) MiB under an open descriptor"
	out=$(pl deactivate "$VG" "$V1" 2>&1) && fail "deactivate of an open LV succeeded"
	case $out in "ERROR IN_USE: "*) ok "deactivate while open -> $out" ;;
	*) fail "deactivate while open: $out" ;; esac
	exec 7<&-
	pl deactivate "$VG" "$V1" || fail "deactivate"
	[ ! -e "$F" ] || fail "$F still there"
	pl deactivate "$VG" "$V1" || fail "second deactivate"
	ok "deactivated; deactivating again succeeds"
	pl activate "$VG" "$V2" && pl deactivate "$VG" "$V2" || fail "V2 activation"
else
	echo "skip - pk-lvmapd not built or no /dev/fuse: lab activation not tested"
fi

step "a held LVM lock is waited for, but not forever"
flock -x /run/lock/lvm/V_$VG sleep 1.5 &
holder=$!
sleep 0.2
start=$(date +%s%N)
p -t 5000 lv-report "$VG" "$V2" >/dev/null || fail "report behind a held lock"
waited=$((($(date +%s%N) - start) / 1000000))
[ "$waited" -ge 800 ] || fail "waited only ${waited} ms"
ok "report waited ${waited} ms for the lock, then succeeded"
wait "$holder"
flock -x /run/lock/lvm/V_$VG sleep 3 &
holder=$!
sleep 0.2
expect_error BUSY -t 300 lv-report "$VG" "$V2"
wait "$holder"

step "lvcreate + lvremove: in-process vs the lvm CLI, 11 LVs in the VG while cycling"
for i in $(seq 8); do
	p lv-create "$VG" "fill$i" $MiB >/dev/null || fail "fill$i"
done
bench=$(p bench "$VG" 0 100) || fail "bench"
echo "in-process: $bench"
n=20
start=$(date +%s%N)
for i in $(seq $n); do
	lvm_cli lvcreate -qq --activate n --zero n --wipesignatures n -L 1m -n clicycle \
		"$VG" >/dev/null || fail "cli lvcreate"
	lvm_cli lvremove -f "$VG/clicycle" >/dev/null || fail "cli lvremove"
done
cli_ms=$(awk -v t=$(($(date +%s%N) - start)) -v n=$n 'BEGIN { printf "%.2f", t / n / 1e6 }')
echo "lvm CLI: cycle_ms=$cli_ms (fork+exec of lvm, same lvm.conf)"
inproc_ms=$(sed -n 's/.*cycle_ms=\([0-9.]*\).*/\1/p' <<<"$bench")
awk -v a="$inproc_ms" -v b="$cli_ms" 'BEGIN { exit !(a < b) }' ||
	fail "in-process ($inproc_ms ms) not faster than the CLI ($cli_ms ms)"
ok "in-process $inproc_ms ms per cycle, CLI $cli_ms ms"

step "remove"
p lv-remove "$VG" "$V2" || fail "lv-remove V2"
expect_error NOT_FOUND vol-show "$VG" "$V2"
p vg-remove "$VG" force || fail "vg-remove"
expect_error NOT_FOUND vg-report "$VG"
ok "all gone"
echo "PASS"
