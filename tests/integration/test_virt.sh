#!/bin/bash
# pk-itest: libvirt
# test_virt — hsmd's libvirt seam (hsm/virt*.c, hsm/vmxml*.c) against the real
# libvirtd, through tests/tools/pk-virt-probe.
#
# A TCG domain (no kernel: it sits in firmware, block jobs need no guest OS)
# with two qcow2 disks whose chains are base <- s1 <- s2 (relative backing
# names, as poolkeeper's volumes have) and a raw SATA disk. Checked:
#   - the live chain parsed from the domain XML (paths, indexes, complete);
#   - an atomic 2-disk disk-only snapshot onto pre-created overlays
#     (REUSE_EXT, NO_METADATA), the third disk untouched; a quiesced one
#     fails with UNAVAILABLE (no guest agent);
#   - our metadata read back and rewritten;
#   - commit of an internal layer, finished by a BLOCK_JOB_2 event;
#     data moved into the base; relative backing names kept;
#   - a throttled commit: job info (type, bandwidth), a second job on the
#     same disk refused with CONFLICT, bandwidth changed while running;
#   - active commit: a pivot before READY refused (CONFLICT), a pivot
#     without a job NOT_FOUND; READY event, <mirror ready='yes'>, pivot,
#     new chain;
#   - pull (rebase) to a base, and to no base after ...
#   - ... libvirtd hangs (SIGSTOP for ~3 s: keepalive 1 s x 2 closes the
#     connection, the adapter reconnects once it answers again), then is
#     killed and started again: the adapter notices, fails verbs with
#     UNAVAILABLE meanwhile, reconnects, the domain is still listed and
#     running with its metadata, events flow again;
#   - destroy + undefine; NOT_FOUND afterwards.
#
# Ownership: disks carry <seclabel model='dac' relabel='no'/> (poolkeeper's
# storage layer owns image ownership, libvirt never chowns), so this test
# does what PrepareImage does: the images belong to the user qemu runs as
# (qemu.conf user/group, Debian: libvirt-qemu:kvm) in a directory that user
# can traverse.
#
# Needs: root, libvirtd + virtlogd (started here if not running and left
# running), qemu-img, qemu-io, ${BUILD}/tests/tools/pk-virt-probe.
# NOTE: stops libvirtd for ~3 s and restarts it once; other libvirt clients
# see a stall and a reconnect.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
PROBE="$BUILD/tests/tools/pk-virt-probe"
URI=qemu:///system
VM=pkt-virt-$$
T=""

step() { echo "== $*"; }
ok() { echo "   ok: $*"; }
fail() {
	echo "   FAIL: $*" >&2
	exit 1
}

libvirtd_running() { pgrep -x libvirtd >/dev/null; }

start_daemons() {
	pgrep -x virtlogd >/dev/null || virtlogd -d
	if ! libvirtd_running; then
		libvirtd -d
	fi
	for _ in $(seq 100); do
		virsh -c "$URI" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "libvirtd does not answer on $URI"
}

cleanup() {
	local rc=$?
	set +e
	# Resume libvirtd if the test stopped right after its SIGSTOP.
	pid=$(cat /run/libvirtd.pid 2>/dev/null || pgrep -o -x libvirtd)
	[ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null
	libvirtd_running || start_daemons
	if virsh -c "$URI" dominfo "$VM" >/dev/null 2>&1; then
		virsh -c "$URI" destroy "$VM" >/dev/null 2>&1
		virsh -c "$URI" undefine "$VM" >/dev/null 2>&1
	fi
	[ -z "$T" ] || rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] || fail "run as root"
[ -x "$PROBE" ] || fail "missing $PROBE (make BUILD=... tools)"
for tool in qemu-img qemu-io virsh libvirtd virtlogd; do
	command -v $tool >/dev/null || fail "missing $tool"
done

# The user and group qemu runs as (qemu.conf; Debian's defaults otherwise).
conf_value() {
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" \
		/etc/libvirt/qemu.conf 2>/dev/null | tail -n 1
}
QEMU_USER=$(conf_value user)
QEMU_USER=${QEMU_USER:-libvirt-qemu}
QEMU_GROUP=$(conf_value group)
QEMU_GROUP=${QEMU_GROUP:-kvm}

step "libvirtd and virtlogd"
start_daemons
ok "libvirtd answers on $URI"

step "images: base <- s1 <- s2 for vda and vdb, overlays s3, a raw sda"
T=$(mktemp -d "/tmp/pkt-virt-$$.XXXXXX")
chmod 0755 "$T"
(
	cd "$T"
	for d in a b; do
		qemu-img create -q -f qcow2 $d-base.qcow2 64M
		qemu-img create -q -f qcow2 -b $d-base.qcow2 -F qcow2 $d-s1.qcow2
		qemu-img create -q -f qcow2 -b $d-s1.qcow2 -F qcow2 $d-s2.qcow2
		qemu-img create -q -f qcow2 -b $d-s2.qcow2 -F qcow2 $d-s3.qcow2
	done
	qemu-img create -q -f raw c.raw 8M
	# One recognisable pattern per layer.
	qemu-io -f qcow2 -c 'write -P 0x11 0 64k' a-base.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x22 1M 64k' a-s1.qcow2 >/dev/null
	# 4 MiB in a-s2 and b-s2, so jobs throttled to 1 MiB/s run for seconds.
	qemu-io -f qcow2 -c 'write -P 0x33 2M 4M' a-s2.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x44 0 64k' b-base.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x55 1M 64k' b-s1.qcow2 >/dev/null
	qemu-io -f qcow2 -c 'write -P 0x66 4M 4M' b-s2.qcow2 >/dev/null
)
chown "$QEMU_USER:$QEMU_GROUP" "$T"/*.qcow2 "$T"/c.raw
chmod 0660 "$T"/*.qcow2 "$T"/c.raw
ok "images in $T owned by $QEMU_USER:$QEMU_GROUP"

# Reads a pattern from one image file alone (its backing chain included
# unless the image has none); -U: the VM holds the image open.
has_pattern() { # file pattern offset
	qemu-io -U -r -f qcow2 -c "read -P $2 $3 64k" "$T/$1" 2>&1 | grep -q '^read 65536/65536'
}
backing_of() { qemu-img info -U --output=json "$T/$1" | sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p' | head -n1; }
check_backing() { # file expected-backing
	local b
	b=$(backing_of "$1")
	[ "$b" = "$2" ] || fail "$1 has backing file '$b', expected '$2'"
	ok "$1 -> ${2:-no backing file}"
}

A=$T/a B=$T/b
VOL_NEW=0b6a3f1e-5c2d-4e8f-9a7b-1c2d3e4f5a6b
# Run by the probe's shell, so written unexpanded.
# shellcheck disable=SC2016
LIBVIRTD_PID='$(cat /run/libvirtd.pid 2>/dev/null || pgrep -o -x libvirtd)'
KILL_LIBVIRTD="kill $LIBVIRTD_PID; for i in \$(seq 100); do pgrep -x libvirtd >/dev/null || exit 0; sleep 0.1; done; exit 1"

PROBE_OPTS=""
run_probe() { # commands on stdin
	# shellcheck disable=SC2086
	"$PROBE" --uri "$URI" $PROBE_OPTS || fail "pk-virt-probe failed (see above)"
}

step "create, chains, snapshot, metadata, commit, active commit, pull"
run_probe <<EOF
build-create $VM qemu 64 $T/serial.log vda=$A-s2.qcow2 vdb=$B-s2.qcow2 sda=$T/c.raw:raw
wait-lifecycle $VM started 30
expect-state $VM running
expect-list $VM
fail CONFLICT start $VM
expect-chain $VM vda $A-s2.qcow2 $A-s1.qcow2 $A-base.qcow2
expect-chain $VM vdb $B-s2.qcow2 $B-s1.qcow2 $B-base.qcow2
expect-chain $VM sda $T/c.raw

# atomic disk-only snapshot of vda and vdb onto the pre-created overlays
fail UNAVAILABLE snapshot $VM quiesce vda=$A-s3.qcow2 vdb=$B-s3.qcow2
expect-chain $VM vda $A-s2.qcow2 $A-s1.qcow2 $A-base.qcow2
snapshot $VM vda=$A-s3.qcow2 vdb=$B-s3.qcow2
expect-chain $VM vda $A-s3.qcow2 $A-s2.qcow2 $A-s1.qcow2 $A-base.qcow2
expect-chain $VM vdb $B-s3.qcow2 $B-s2.qcow2 $B-s1.qcow2 $B-base.qcow2
expect-chain $VM sda $T/c.raw
sh virsh -q -c $URI dumpxml --inactive $VM | grep -q "$A-s3.qcow2"
expect-metadata $VM vda 00000003-0000-4000-8000-000000000001
set-volume $VM vda $VOL_NEW
expect-metadata $VM vda $VOL_NEW

# commit an internal layer: s1 into base
commit $VM vda $A-base.qcow2 $A-s1.qcow2
wait-job $VM vda completed 60
expect-job $VM vda none
expect-chain $VM vda $A-s3.qcow2 $A-s2.qcow2 $A-base.qcow2

# a throttled commit of vdb's s2 into s1
commit $VM vdb $B-s1.qcow2 $B-s2.qcow2 1048576
expect-job $VM vdb commit 1048576
fail CONFLICT pull $VM vdb none
set-bandwidth $VM vdb 2097152
expect-job $VM vdb commit 2097152
set-bandwidth $VM vdb 0
wait-job $VM vdb completed 120
expect-chain $VM vdb $B-s3.qcow2 $B-s1.qcow2 $B-base.qcow2

# active commit of vda's leaf into base (throttled: not ready at first),
# pivot only once ready
fail NOT_FOUND pivot $VM vda
active-commit $VM vda $A-base.qcow2 1048576
expect-job $VM vda active-commit 1048576
expect-mirror $VM vda syncing
fail CONFLICT pivot $VM vda
set-bandwidth $VM vda 0
wait-job $VM vda ready 60
expect-mirror $VM vda ready
pivot $VM vda
wait-job $VM vda completed 60
expect-mirror $VM vda none
expect-chain $VM vda $A-base.qcow2
sh virsh -q -c $URI dumpxml --inactive $VM | grep -q "$A-base.qcow2"

# pull s1 into vdb's leaf, keeping base
pull $VM vdb $B-base.qcow2
wait-job $VM vdb completed 60
expect-chain $VM vdb $B-s3.qcow2 $B-base.qcow2
EOF
ok "probe steps passed"

step "libvirtd hangs (SIGSTOP): keepalive notices; restart: reconnect, domain still there, events again"
PROBE_OPTS="--keepalive 1 2"
run_probe <<EOF
expect-list $VM
sh kill -STOP $LIBVIRTD_PID
wait-disconnected 20
sh kill -CONT $LIBVIRTD_PID
wait-reconnect 30
expect-state $VM running
sh $KILL_LIBVIRTD
wait-disconnected 30
fail UNAVAILABLE expect-state $VM running
sh libvirtd -d
wait-reconnect 60
expect-list $VM
expect-state $VM running
expect-metadata $VM vda $VOL_NEW
expect-chain $VM vdb $B-s3.qcow2 $B-base.qcow2
pull $VM vdb none
wait-job $VM vdb completed 60
expect-chain $VM vdb $B-s3.qcow2
destroy $VM
fail NOT_FOUND show $VM
fail NOT_FOUND destroy $VM
EOF
ok "probe steps passed"
virsh -c "$URI" dominfo "$VM" >/dev/null 2>&1 && fail "$VM is still defined"
ok "$VM destroyed and undefined"

# Checked once qemu is gone: a running qemu keeps qcow2 metadata of the
# images it writes in memory, so reading them from outside is unreliable.
step "data moved where the chains say; relative backing names kept"
has_pattern a-base.qcow2 0x11 0 || fail "a-base lost its own data"
has_pattern a-base.qcow2 0x22 1M || fail "a-base lacks s1's data after the commit"
has_pattern a-base.qcow2 0x33 2M || fail "a-base lacks s2's data after the active commit"
ok "a-base holds the data of s1 and s2"
has_pattern b-s1.qcow2 0x66 4M || fail "b-s1 lacks s2's data after the commit"
has_pattern b-s3.qcow2 0x55 1M || fail "b-s3 lacks s1's data after the pull"
has_pattern b-s3.qcow2 0x66 4M || fail "b-s3 lacks s2's data after the pull"
has_pattern b-s3.qcow2 0x44 0 || fail "b-s3 lacks base's data after the full pull"
ok "b-s1 holds s2's data; b-s3 holds everything"
check_backing a-s2.qcow2 a-base.qcow2
check_backing b-s1.qcow2 b-base.qcow2
check_backing b-s3.qcow2 ""
echo "test_virt: all checks passed"
