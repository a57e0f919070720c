#!/bin/bash
# pk-lvmapd end to end: two sparse files on loop devices as pvs, a mapper on
# a temporary mount; a 2-segment table spanning both pvs; writes (buffered,
# O_DIRECT, unaligned) checked at the pv offsets; a reload that extends the
# LV under an open file; qemu-img/qemu-io (O_DIRECT, Linux AIO) on a mapped
# file; ownership; remove of an open and a closed file; two mappers on the
# same pvs seeing each other's writes at once; clean shutdown.
# Needs root, /dev/fuse, loop devices, qemu-utils. Uses ${BUILD:-build}/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
LVMAPD=$BUILD/pk-lvmapd
NAME=test_lvmap_$$
WORK=$(mktemp -d "/tmp/$NAME.XXXXXX")
chmod 0711 "$WORK" # the qemu user must reach the mounts inside
VG=tlvmapvg$$

source "$(dirname "$0")/scratch_lib.sh"

[ -x "$LVMAPD" ] || fail "$LVMAPD not built (make BUILD=... all)"

# ctl MOUNT COMMAND: one command, one write(2), as the protocol requires.
ctl() {
	printf '%s' "$2" | dd of="$1/.control" bs=65536 iflag=fullblock conv=notrunc status=none
}

# wait_mount MOUNT PID: until MOUNT/.control appears (or PID dies).
wait_mount() {
	local i
	for i in $(seq 100); do
		[ -e "$1/.control" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# pv_bytes PV SECTOR BYTES: BYTES bytes of PV from 512-byte sector SECTOR.
pv_bytes() {
	dd if="$1" bs=512 skip="$2" count=$(($3 / 512)) status=none
}

# same DESCRIPTION FILE1 FILE2
same() {
	cmp -s "$2" "$3" || fail "$1 ($(cmp "$2" "$3" 2>&1 | head -n1))"
	ok "$1"
}

MiB=1048576

step "setup: two 64 MiB sparse pvs on loop devices"
for i in 1 2; do
	truncate -s 64M "$WORK/pv$i.img"
	LOOPS+=("$(losetup --find --show "$WORK/pv$i.img")")
done
L1=${LOOPS[0]}
L2=${LOOPS[1]}
echo "pvs: $L1 $L2"

step "start a mapper in the foreground"
M1=$WORK/m1
MOUNTS+=("$M1")
"$LVMAPD" --mount "$M1" --foreground --log-level debug 2>"$WORK/m1.log" &
P1=$!
PIDS+=("$P1")
wait_mount "$M1" "$P1" || fail "mapper 1 did not mount $M1"
grep -q " $M1 fuse.pk-lvmapd .*allow_other" /proc/mounts || fail "mount options"
ok "mounted $M1 with allow_other"
[ "$(stat -c %A "$M1/.control")" = "--w-------" ] || fail ".control is not write-only"
ok ".control is write-only"

step "load a 2-segment table: 1 MiB on $L1 @ sector 2048, 2 MiB on $L2 @ 4096"
ctl "$M1" "load $VG/lv1
0 2048 $L1 2048
2048 4096 $L2 4096
" || fail "load lv1"
LV1=$M1/$VG/lv1
[ "$(stat -c %s "$LV1")" -eq $((3 * MiB)) ] || fail "size of lv1: $(stat -c %s "$LV1")"
ok "lv1 is a 3 MiB file"
[ "$(stat -c '%U:%G %a %F' "$LV1")" = "root:root 660 regular file" ] ||
	fail "owner/mode of lv1: $(stat -c '%U:%G %a %F' "$LV1")"
ok "lv1 has the default owner and mode 0660"
[ "$(ls "$M1")" = "$VG" ] && [ "$(ls "$M1/$VG")" = "lv1" ] || fail "listing"
ok "directory listing"

step "buffered dd of a pattern over the whole LV"
head -c $((3 * MiB)) /dev/urandom >"$WORK/pat"
dd if="$WORK/pat" of="$LV1" bs=1M conv=notrunc status=none || fail "dd to lv1"
head -c $MiB "$WORK/pat" >"$WORK/want"
pv_bytes "$L1" 2048 $MiB >"$WORK/got"
same "segment 1 landed on $L1 at sector 2048" "$WORK/want" "$WORK/got"
tail -c +$((MiB + 1)) "$WORK/pat" >"$WORK/want"
pv_bytes "$L2" 4096 $((2 * MiB)) >"$WORK/got"
same "segment 2 landed on $L2 at sector 4096" "$WORK/want" "$WORK/got"
same "read back through the mapper" "$WORK/pat" "$LV1"

step "O_DIRECT dd across the segment boundary"
head -c 65536 /dev/urandom >"$WORK/pat2"
# 64 KiB at 1 MiB - 32 KiB: half on each pv.
dd if="$WORK/pat2" of="$LV1" bs=4096 seek=$(((MiB - 32768) / 4096)) oflag=direct \
	conv=notrunc status=none || fail "O_DIRECT dd to lv1"
head -c 32768 "$WORK/pat2" >"$WORK/want"
pv_bytes "$L1" $((2048 + 2048 - 64)) 32768 >"$WORK/got"
same "O_DIRECT: first half on $L1" "$WORK/want" "$WORK/got"
tail -c 32768 "$WORK/pat2" >"$WORK/want"
pv_bytes "$L2" 4096 32768 >"$WORK/got"
same "O_DIRECT: second half on $L2" "$WORK/want" "$WORK/got"
dd if="$LV1" of="$WORK/got" bs=4096 skip=$(((MiB - 32768) / 4096)) count=16 \
	iflag=direct status=none
same "O_DIRECT read back" "$WORK/pat2" "$WORK/got"

step "unaligned 200-byte write across the boundary"
head -c 200 /dev/urandom >"$WORK/pat3"
dd if="$WORK/pat3" of="$LV1" bs=200 seek=$((MiB - 100)) oflag=seek_bytes conv=notrunc \
	status=none || fail "unaligned dd"
pv_bytes "$L1" 4095 512 | tail -c 100 >"$WORK/got"
head -c 100 "$WORK/pat3" >"$WORK/want"
same "unaligned: first 100 bytes end $L1's segment" "$WORK/want" "$WORK/got"
pv_bytes "$L2" 4096 512 | head -c 100 >"$WORK/got"
tail -c 100 "$WORK/pat3" >"$WORK/want"
same "unaligned: last 100 bytes start $L2's segment" "$WORK/want" "$WORK/got"

step "end of the LV"
[ "$(dd if="$LV1" bs=4096 skip=$((3 * MiB / 4096)) count=1 status=none | wc -c)" -eq 0 ] ||
	fail "read at the end returned data"
ok "a read at the end returns 0 bytes"
if dd if=/dev/zero of="$LV1" bs=4096 seek=$((3 * MiB / 4096)) count=1 conv=notrunc \
	status=none 2>"$WORK/err"; then
	fail "a write at the end succeeded"
fi
grep -q "No space left on device" "$WORK/err" || fail "write at end: $(cat "$WORK/err")"
ok "a write at the end fails with ENOSPC"
if truncate -s $((4 * MiB)) "$LV1" 2>"$WORK/err"; then
	fail "truncate to another size succeeded"
fi
ok "truncate to another size is refused: $(cat "$WORK/err")"
if fallocate -l $((4 * MiB)) "$LV1" 2>/dev/null; then
	fail "fallocate beyond the end succeeded"
fi
ok "fallocate beyond the end is refused"

step "extend: reload with a 3rd segment (1 MiB on $L1 @ 20480) while a file is open"
exec 3<>"$LV1"
ctl "$M1" "load $VG/lv1
0 2048 $L1 2048
2048 4096 $L2 4096
6144 2048 $L1 20480
" || fail "reload lv1"
[ "$(stat -c %s "$LV1")" -eq $((4 * MiB)) ] || fail "size after extend: $(stat -c %s "$LV1")"
[ "$(stat -L -c %s /proc/$$/fd/3)" -eq $((4 * MiB)) ] || fail "size seen by the open fd"
ok "size is 4 MiB, also through the open descriptor"
head -c $MiB /dev/urandom >"$WORK/pat4"
# dd writes to its stdout, i.e. through the descriptor opened before the reload.
dd if="$WORK/pat4" bs=1M seek=3 conv=notrunc status=none >&3 || fail "write via fd 3"
pv_bytes "$L1" 20480 $MiB >"$WORK/got"
same "new bytes landed on $L1 at sector 20480" "$WORK/pat4" "$WORK/got"
head -c $((3 * MiB)) "$LV1" >"$WORK/got"
head -c $((3 * MiB)) "$WORK/pat" >"$WORK/want"
# Patch in the two later writes to the expected image.
dd if="$WORK/pat2" of="$WORK/want" bs=4096 seek=$(((MiB - 32768) / 4096)) conv=notrunc \
	status=none
dd if="$WORK/pat3" of="$WORK/want" bs=200 seek=$((MiB - 100)) oflag=seek_bytes \
	conv=notrunc status=none
same "old bytes unchanged after the extend" "$WORK/want" "$WORK/got"

step "remove of an open file fails with EBUSY, of a closed one works"
if ctl "$M1" "remove $VG/lv1
" 2>"$WORK/err"; then
	fail "remove of an open file succeeded"
fi
grep -q "busy" "$WORK/err" || fail "remove error: $(cat "$WORK/err")"
grep -q "is open" "$WORK/m1.log" || fail "the mapper did not log why"
ok "remove while open: $(cat "$WORK/err")"
exec 3>&-
ctl "$M1" "remove $VG/lv1
" || fail "remove after close"
[ ! -e "$LV1" ] && [ ! -e "$M1/$VG" ] || fail "lv1 or its vg dir still there"
ok "removed after close; the empty vg directory is gone"
if ctl "$M1" "remove $VG/lv1
" 2>/dev/null; then
	fail "remove of a missing LV succeeded"
fi
ok "remove of a missing LV fails"
if ctl "$M1" "load $VG/bad
0 8 relative/path 0
" 2>/dev/null; then
	fail "a bad table was accepted"
fi
grep -q "control command refused.*not absolute" "$WORK/m1.log" || fail "refusal not logged"
ok "a bad table is refused and logged"

step "qemu-img on a mapped file (8 MiB over both pvs)"
ctl "$M1" "load $VG/lv2
0 8192 $L1 32768
8192 8192 $L2 32768
" || fail "load lv2"
LV2=$M1/$VG/lv2
qemu-img create -q -f qcow2 "$LV2" 1G || fail "qemu-img create"
qemu-img info --output=json "$LV2" >"$WORK/info.json" || fail "qemu-img info"
grep -q '"format": "qcow2"' "$WORK/info.json" || fail "format: $(cat "$WORK/info.json")"
grep -q '"virtual-size": 1073741824' "$WORK/info.json" || fail "virtual size"
ok "qemu-img create -f qcow2 / info: qcow2, 1 GiB"
# cache=none (O_DIRECT) and aio=native (io_submit), like qemu and sanlock.
qemu-io -t none -i native -f qcow2 -c 'write -P 0x5a 0 2M' -c 'read -P 0x5a 0 2M' \
	"$LV2" >"$WORK/qemu-io.out" || fail "qemu-io"
grep -q "read 2097152/2097152" "$WORK/qemu-io.out" || fail "qemu-io: $(cat "$WORK/qemu-io.out")"
qemu-img check -q "$LV2" || fail "qemu-img check"
ok "qemu-io O_DIRECT + Linux AIO write/read, qemu-img check clean"

step "ownership and permissions (libvirt's DAC driver chowns images)"
chown libvirt-qemu:kvm "$LV2"
chmod 0600 "$LV2"
[ "$(stat -c '%U:%G %a' "$LV2")" = "libvirt-qemu:kvm 600" ] ||
	fail "after chown/chmod: $(stat -c '%U:%G %a' "$LV2")"
ok "chown/chmod are kept"
runuser -u libvirt-qemu -- qemu-img info "$LV2" >/dev/null || fail "libvirt-qemu cannot read"
ok "libvirt-qemu opens its file (allow_other)"
if runuser -u nobody -- head -c 1 "$LV2" >/dev/null 2>&1; then
	fail "nobody could read a 0600 file of libvirt-qemu"
fi
ok "another user cannot (default_permissions)"
ctl "$M1" "load $VG/lv2
0 8192 $L1 32768
8192 8192 $L2 32768
16384 2048 $L2 36000
" 2>/dev/null && fail "a table mapping the same pv sectors twice was accepted"
ctl "$M1" "load $VG/lv2
0 8192 $L1 32768
8192 8192 $L2 32768
16384 2048 $L2 0
" || fail "reload lv2"
[ "$(stat -c '%U:%G %a' "$LV2")" = "libvirt-qemu:kvm 600" ] || fail "owner lost on reload"
ok "a reload keeps owner and mode"

step "a second mapper (daemonized) on the same pvs sees writes at once"
M2=$WORK/m2
MOUNTS+=("$M2")
"$LVMAPD" --mount "$M2" --uid libvirt-qemu --gid kvm --mode 0640 2>"$WORK/m2.log" ||
	fail "mapper 2 did not start"
P2=$(sed -n "s/.*serving mount=.* pid=\([0-9]*\).*/\1/p" "$WORK/m2.log" | head -n1)
[ -n "$P2" ] || fail "no pid in mapper 2's log"
PIDS+=("$P2")
[ -e "$M2/.control" ] || fail "mapper 2 returned before its mount was up"
ok "mapper 2 daemonized (pid $P2) with its mount up"
TABLE="load $VG/shared
0 4096 $L2 40960
4096 4096 $L1 40960
"
ctl "$M1" "$TABLE" || fail "load shared on mapper 1"
ctl "$M2" "$TABLE" || fail "load shared on mapper 2"
[ "$(stat -c '%U:%G %a' "$M2/$VG/shared")" = "libvirt-qemu:kvm 640" ] ||
	fail "--uid/--gid/--mode not applied: $(stat -c '%U:%G %a' "$M2/$VG/shared")"
ok "mapper 2 applies --uid/--gid/--mode to new files"
# Round 2 crosses the segment boundary, round 4 ends at the end of the LV.
OFFSETS=(0 4096 $((2 * MiB - 32768)) $((3 * MiB)) $((4 * MiB - 65536)))
for round in 1 2 3 4; do
	head -c 65536 /dev/urandom >"$WORK/r$round"
	off=${OFFSETS[$round]}
	if [ $((round % 2)) -eq 1 ]; then
		dd if="$WORK/r$round" of="$M1/$VG/shared" bs=65536 seek="$off" oflag=seek_bytes,direct \
			conv=notrunc status=none
		dd if="$M2/$VG/shared" of="$WORK/got" bs=65536 skip="$off" iflag=skip_bytes \
			count=1 status=none
		same "round $round: written via mapper 1 (O_DIRECT), read at once via mapper 2" \
			"$WORK/r$round" "$WORK/got"
	else
		dd if="$WORK/r$round" of="$M2/$VG/shared" bs=65536 seek="$off" oflag=seek_bytes \
			conv=notrunc status=none
		dd if="$M1/$VG/shared" of="$WORK/got" bs=65536 skip="$off" iflag=skip_bytes,direct \
			count=1 status=none
		same "round $round: written via mapper 2, read at once via mapper 1 (O_DIRECT)" \
			"$WORK/r$round" "$WORK/got"
	fi
done
# A file of mapper 2 that read a block before mapper 1 overwrote it reads
# the new bytes through the same open file: nothing is cached in between.
head -c 4096 /dev/urandom >"$WORK/r5"
perl -e '
	my ($reader, $writer, $pattern) = @ARGV;
	open(my $r, "<", $reader) or die "open $reader: $!";
	sysread($r, my $before, 4096) == 4096 or die "first read: $!";
	system("dd", "if=$pattern", "of=$writer", "bs=4096", "conv=notrunc",
	       "status=none") == 0 or die "dd failed";
	sysseek($r, 0, 0) or die "seek: $!";
	sysread($r, my $after, 4096) == 4096 or die "second read: $!";
	open(my $p, "<", $pattern) or die;
	sysread($p, my $want, 4096);
	exit($after eq $want ? 0 : 1);
' "$M2/$VG/shared" "$M1/$VG/shared" "$WORK/r5" ||
	fail "mapper 2's open file did not see mapper 1's overwrite"
ok "an overwrite via mapper 1 is seen through a file of mapper 2 open before it"

step "SIGTERM unmounts cleanly and leaves nothing behind"
kill -TERM "$P1" "$P2"
wait "$P1" || fail "mapper 1 exited with $?"
for i in $(seq 100); do
	kill -0 "$P2" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$P2" 2>/dev/null && fail "mapper 2 still running"
PIDS=()
for m in "$M1" "$M2"; do
	grep -q " $m " /proc/mounts && fail "$m still mounted"
	[ ! -e "$m" ] || fail "$m (made by the mapper) still exists"
done
ok "both mappers exited, unmounted and removed their mount dirs"
grep -q "stopping mount=" "$WORK/m1.log" || fail "no shutdown line in the log"
echo "PASS test_lvmap"
