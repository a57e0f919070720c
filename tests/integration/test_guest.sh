#!/bin/bash
# test_guest — the lab's writing guest and the verifier of acknowledged writes.
#
# Boots the guest (lab/guest-build) under plain qemu with TCG on two qcow2
# disks, lets it write for ~20 s while QMP takes a live snapshot of both disks
# and commits vda's snapshot back into its base with a pivot (active commit),
# then kills qemu hard and checks with pk-verify that:
#   - every acknowledged write is intact on vda (merged) and on the vdb chain;
#   - vdb's base alone misses acknowledged writes (they are in the snapshot);
#   - a block corrupted on purpose (raw and qcow2) is reported lost.
# Finally reports whether the guest kernel boots under KVM on this host
# (lab/guest-build --detect-accel; informational, never fails the test).
#
# Needs: root, qemu-system-x86_64, qemu-img, qemu-io, ${BUILD}/tests/tools/pk-verify.
# No libvirt. Everything lives in one temp dir, removed with its processes on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
VERIFY="$BUILD/tests/tools/pk-verify"
GUEST_DIR="$BUILD/guest"
RUN_SECONDS=${PK_TEST_GUEST_SECONDS:-20}
# The guest kernel's arguments before its pk.* ones, as in lib.sh (this test
# does not use the lab).
GUEST_KARGS="console=ttyS0 quiet no_timer_check"

T=""
QEMU_PID=""
QMP_READER_PID=""

cleanup() {
	local rc=$?
	if [ -n "$QEMU_PID" ]; then
		kill -9 "$QEMU_PID" 2>/dev/null || true
		{ wait "$QEMU_PID" || true; } 2>/dev/null
	fi
	if [ -n "$QMP_READER_PID" ]; then
		kill "$QMP_READER_PID" 2>/dev/null || true
		wait "$QMP_READER_PID" 2>/dev/null || true
	fi
	exec 7>&- || true
	if [ $rc -ne 0 ] && [ -n "$T" ] && [ -f "$T/serial.log" ]; then
		echo "--- last lines of the guest console:" >&2
		grep -av '^PKACK' "$T/serial.log" | tail -n 15 >&2 || true
		tail -n 3 "$T/serial.log" >&2 || true
	fi
	[ -z "$T" ] || rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { echo "== $*"; }
ok() { echo "   ok: $*"; }
fail() {
	echo "   FAIL: $*" >&2
	exit 1
}

acks() { grep -ac '^PKACK ' "$T/serial.log" || true; }

# wait_log PATTERN FILE SECONDS: waits for an extended regex in FILE.
wait_log() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		if grep -aqE "$1" "$2" 2>/dev/null; then
			return 0
		fi
		if [ -n "$QEMU_PID" ] && ! kill -0 "$QEMU_PID" 2>/dev/null; then
			fail "qemu exited while waiting for '$1'"
		fi
		sleep 0.2
	done
	return 1
}

# qmp COMMAND [ARGUMENTS-JSON]: runs a QMP command, fails on an error reply.
QMP_N=0
qmp() {
	local id="c$((++QMP_N))" reply
	printf '{"execute": "%s", "arguments": %s, "id": "%s"}\n' "$1" "${2:-{\}}" "$id" >&7
	wait_log "\"id\": \"$id\"" "$T/qmp.log" 30 || fail "no QMP reply to $1"
	reply=$(grep -a "\"id\": \"$id\"" "$T/qmp.log")
	case "$reply" in
	*'"return"'*) ;;
	*) fail "QMP $1 failed: $reply" ;;
	esac
}

# ---- preconditions -------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "run as root"
for tool in qemu-system-x86_64 qemu-img qemu-io; do
	command -v $tool >/dev/null || fail "$tool not found (qemu-system-x86, qemu-utils)"
done
[ -x "$VERIFY" ] || fail "$VERIFY missing: make BUILD=$(basename "$BUILD") tools"

T=$(mktemp -d "/tmp/pk-test-guest.$$.XXXXXX")
chmod 0755 "$T"

step "build the guest"
"$REPO/lab/guest-build" "$GUEST_DIR"
[ -s "$GUEST_DIR/vmlinuz" ] && [ -s "$GUEST_DIR/initrd.img" ] || fail "guest-build made no kernel/initrd"
ok "$GUEST_DIR/{vmlinuz,initrd.img}"

step "boot it under TCG on two qcow2 disks"
for d in vda vdb; do
	qemu-img create -q -f qcow2 "$T/$d.qcow2" 64M
	chmod 0644 "$T/$d.qcow2"
done
mkfifo "$T/qmp.in" "$T/qmp.out"
cat "$T/qmp.out" >"$T/qmp.log" &
QMP_READER_PID=$!
exec 7<>"$T/qmp.in"
t_start=$SECONDS
qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -nographic -no-reboot \
	-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
	-append "$GUEST_KARGS pk.disks=vda,vdb pk.blocks=2048 pk.interval_ms=0 pk.stats_s=5" \
	-serial "file:$T/serial.log" -monitor none \
	-chardev "pipe,id=qmp,path=$T/qmp" -mon chardev=qmp,mode=control \
	-drive "file=$T/vda.qcow2,format=qcow2,if=virtio,id=vda,cache=none" \
	-drive "file=$T/vdb.qcow2,format=qcow2,if=virtio,id=vdb,cache=none" \
	</dev/null >"$T/qemu.out" 2>&1 &
QEMU_PID=$!
wait_log '"QMP"' "$T/qmp.log" 30 || fail "no QMP greeting from qemu: $(cat "$T/qemu.out")"
qmp qmp_capabilities
wait_log '^PKREADY ' "$T/serial.log" 60 || fail "no PKREADY within 60 s"
! grep -aq '^PKFAIL' "$T/serial.log" || fail "$(grep -a '^PKFAIL' "$T/serial.log")"
ok "PKREADY after $((SECONDS - t_start)) s: $(grep -a '^PKREADY' "$T/serial.log" | tr -d '\r')"

step "acknowledgements progress"
sleep 3
a1=$(acks)
[ "$a1" -gt 0 ] || fail "no PKACK 3 s after PKREADY"
ok "$a1 acks"

step "live snapshot of both disks while the guest writes"
qmp blockdev-snapshot-sync "{\"device\": \"vda\", \"snapshot-file\": \"$T/vda.snap1.qcow2\", \"format\": \"qcow2\"}"
qmp blockdev-snapshot-sync "{\"device\": \"vdb\", \"snapshot-file\": \"$T/vdb.snap1.qcow2\", \"format\": \"qcow2\"}"
sleep 4
a2=$(acks)
[ "$a2" -gt "$a1" ] || fail "acks stalled after the snapshot ($a1 -> $a2)"
ok "$a1 -> $a2 acks across the snapshot"

step "active commit of vda's snapshot into its base, then pivot"
qmp block-commit '{"device": "vda", "job-id": "commit-vda"}'
wait_log '"BLOCK_JOB_READY".*commit-vda' "$T/qmp.log" 60 || fail "commit never READY"
qmp block-job-complete '{"device": "commit-vda"}'
wait_log '"BLOCK_JOB_COMPLETED".*commit-vda' "$T/qmp.log" 60 || fail "commit never COMPLETED"
completed=$(grep -a 'BLOCK_JOB_COMPLETED.*commit-vda' "$T/qmp.log")
case "$completed" in *'"error"'*) fail "commit failed: $completed" ;; esac
qmp query-block
blocks=$(grep -a "\"id\": \"c$QMP_N\"" "$T/qmp.log")
grep -q "\"file\": \"$T/vda.qcow2\"" <<<"$blocks" ||
	fail "vda does not run on its base after the pivot: $blocks"
a3=$(acks)
sleep 4
a4=$(acks)
[ "$a4" -gt "$a3" ] || fail "acks stalled after the pivot ($a3 -> $a4)"
ok "pivoted to vda.qcow2; $a3 -> $a4 acks after the pivot"

left=$((RUN_SECONDS - (SECONDS - t_start)))
[ $left -le 0 ] || sleep $left
a5=$(acks)
! grep -aqE '^(PKERR|PKFAIL|PKEXIT)' "$T/serial.log" ||
	fail "guest reported: $(grep -aE '^(PKERR|PKFAIL|PKEXIT)' "$T/serial.log" | head -n 3)"
ok "$a5 acks in $((SECONDS - t_start)) s; $(grep -a '^PKSTATS' "$T/serial.log" | tail -n 1 | tr -d '\r')"

step "kill qemu hard (acknowledged writes must survive)"
kill -9 "$QEMU_PID"
{ wait "$QEMU_PID" || true; } 2>/dev/null
QEMU_PID=""
ok "killed"

step "pk-verify: every acknowledged write is intact"
out=$("$VERIFY" --log "$T/serial.log" --disk vda="$T/vda.qcow2" --disk vdb="$T/vdb.snap1.qcow2") ||
	fail "pk-verify exit $?: $out"
echo "$out" | sed 's/^/   /'
grep -q '^vda: [1-9][0-9]* acknowledged blocks verified, 0 lost$' <<<"$out" || fail "vda: $out"
grep -q '^vdb: [1-9][0-9]* acknowledged blocks verified, 0 lost$' <<<"$out" || fail "vdb: $out"
ok "vda (merged) and vdb (snapshot chain) intact"

step "pk-verify: vdb's base alone misses the writes made after the snapshot"
rc=0
out=$("$VERIFY" --log "$T/serial.log" --disk vdb="$T/vdb.qcow2" --max-report 100000 \
	2>"$T/verify.err") || rc=$?
[ $rc -eq 1 ] || fail "expected exit 1, got $rc: $(echo "$out" | tail -n 3) $(cat "$T/verify.err")"
# Blocks first written after the snapshot are zeros in the base, blocks
# rewritten after it hold an older record.
grep -q '^vdb: block [0-9]* lost: acknowledged seq [0-9]*, found older seq' <<<"$out" ||
	fail "no 'older seq' verdict: $(echo "$out" | tail -n 3)"
grep -q '^vdb: block [0-9]* lost: acknowledged seq [0-9]*, found only zeros' <<<"$out" ||
	fail "no 'only zeros' verdict: $(echo "$out" | tail -n 3)"
ok "$(echo "$out" | tail -n 1) ($(echo "$out" | grep -c 'found older seq') older, $(echo "$out" | grep -c 'only zeros') zeros)"

# An acknowledged block of vda and the seq acknowledged last for it.
read -r _ _ seq idx < <(grep -a '^PKACK vda ' "$T/serial.log" | tail -n 1 | tr -d '\r')
[ -n "$idx" ] || fail "no PKACK for vda"

step "pk-verify: a corrupted block in a raw image is lost (block $idx)"
qemu-img convert -f qcow2 -O raw "$T/vda.qcow2" "$T/vda.raw"
"$VERIFY" --log "$T/serial.log" --disk vda="$T/vda.raw" >/dev/null 2>"$T/verify.err" ||
	fail "raw copy not intact: $(cat "$T/verify.err")"
printf 'CORRUPT' | dd of="$T/vda.raw" bs=1 seek=$((idx * 4096 + 2000)) conv=notrunc status=none
rc=0
out=$("$VERIFY" --log "$T/serial.log" --disk vda="$T/vda.raw" 2>"$T/verify.err") || rc=$?
[ $rc -eq 1 ] || fail "expected exit 1, got $rc: $out $(cat "$T/verify.err")"
grep -q "^vda: block $idx lost: .*damaged" <<<"$out" || fail "$out"
grep -q '^vda: .* verified, 1 lost$' <<<"$out" || fail "$out"
ok "$(echo "$out" | head -n 1)"

step "pk-verify: a block overwritten inside a qcow2 image is lost (block $idx)"
cp "$T/vda.qcow2" "$T/vda.bad.qcow2"
qemu-io -f qcow2 -c "write -q -P 0x5a $((idx * 4096)) 4096" "$T/vda.bad.qcow2" >/dev/null
rc=0
out=$("$VERIFY" --log "$T/serial.log" --disk vda="$T/vda.bad.qcow2" 2>"$T/verify.err") || rc=$?
[ $rc -eq 1 ] || fail "expected exit 1, got $rc: $out $(cat "$T/verify.err")"
grep -q "^vda: block $idx lost: .*garbage" <<<"$out" || fail "$out"
ok "$(echo "$out" | head -n 1)"

step "pk-verify: usage and I/O errors exit 2"
rc=0
"$VERIFY" --log "$T/nonexistent.log" --disk vda="$T/vda.qcow2" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "missing log: expected exit 2, got $rc"
rc=0
"$VERIFY" --log "$T/serial.log" --disk vdz="$T/vda.qcow2" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "disk absent from the log: expected exit 2, got $rc"
rc=0
"$VERIFY" --log "$T/serial.log" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "no --disk: expected exit 2, got $rc"
ok "exit 2"

step "does the guest kernel boot under KVM here? (informational)"
accel=$("$REPO/lab/guest-build" --detect-accel "$GUEST_DIR")
case "$accel" in
kvm) ok "yes: the guest boots under KVM on this host" ;;
tcg) ok "no: the guest kernel does not boot under KVM here (or no /dev/kvm); use TCG" ;;
*) fail "--detect-accel printed '$accel'" ;;
esac

echo "PASS test_guest"
