# Helpers of the live-merge tests (sourced after lib.sh). The test sets VM,
# IMG, D, SERIAL (and BOOT1 when it keeps an earlier boot's log).
VERIFY=$PWD/$BUILD/tests/tools/pk-verify
GUEST=$PWD/$BUILD/guest
[ -x "$VERIFY" ] || fail "$VERIFY not built (make BUILD=$BUILD tools)"

# merge_vm_remove: destroys and undefines the test's VM if it exists.
merge_vm_remove() {
	if virsh -c qemu:///system dominfo "$VM" >/dev/null 2>&1; then
		virsh -c qemu:///system destroy "$VM" >/dev/null 2>&1 || true
		virsh -c qemu:///system undefine "$VM" >/dev/null 2>&1 || true
	fi
}

# pk2 ARGS...: pkctl against host 2's hsmd and the cluster's SPM, JSON out. Other
# tests restart the shared libvirtd: a call hsmd answers UNAVAILABLE (not
# connected to libvirtd for a moment) is tried again, for up to 30 s.
pk2() {
	local out rc deadline=$((SECONDS + 30))
	while :; do
		out=$("$PKCTL" --json --hsm "$PK_HOST2_HSM" --spm "$PK_SPMS" "$@")
		rc=$?
		if [ $rc -ne 0 ] && [ "$(echo "$out" | jq -r '.error.code // empty' 2>/dev/null)" = UNAVAILABLE ] &&
			echo "$out" | grep -q libvirtd && [ $SECONDS -lt $deadline ]; then
			sleep 0.5
			continue
		fi
		echo "$out"
		return $rc
	done
}
# guest_log: the guest's serial log whole, across virtlogd's rotations (the
# test's SERIAL, after BOOT1 when the test keeps an earlier boot's log there).
guest_log() {
	[ -z "${BOOT1:-}" ] || cat "$BOOT1" 2>/dev/null
	lab/guest-log "$SERIAL"
}
acks() { guest_log | grep -ac '^PKACK ' || true; }
# verify_acks IMAGE: pk-verify of every acknowledged write of the guest's vda.
verify_acks() {
	guest_log >"$SERIAL.all" || fail "the guest's serial log is incomplete"
	"$VERIFY" --log "$SERIAL.all" --disk "vda=$1"
}
# wait_ready: the guest printed PKREADY. Eleven guests booting at once under
# TCG on two cores take minutes, so the limit is on a stall (60 s without a
# new byte on the console), with 300 s in all as the bound.
wait_ready() {
	local stall=$((SECONDS + 60)) limit=$((SECONDS + 300)) size=-1 now
	until grep -aq '^PKREADY' "$SERIAL" 2>/dev/null; do
		now=$(stat -c %s "$SERIAL" 2>/dev/null || echo 0)
		[ "$now" = "$size" ] || { size=$now stall=$((SECONDS + 60)); }
		[ $SECONDS -lt $stall ] && [ $SECONDS -lt $limit ] ||
			fail "the guest did not start writing: $(tail -n 5 "$SERIAL" 2>/dev/null)"
		sleep 0.2
	done
}
wait_acks() { # wait_acks N SECONDS
	local want=$(($(acks) + $1)) deadline=$((SECONDS + $2))
	while [ "$(acks)" -lt "$want" ]; do
		[ $SECONDS -lt $deadline ] || fail "the guest stopped acknowledging writes (at $(acks), wanted $want): $(grep -av PKACK "$SERIAL" | tail -n 3)"
		sleep 0.2
	done
}
live_chain() { pk2 vm list --vm "$VM" | jq -r '.vms[0].drives[0].live_chain | join(",")'; }
spm_chain() { spm_any image chain --image "$IMG" | jq -r '[.chain[].volume_id] | join(",")'; }
lv_exists() { lvm lvs --config "$PK_LVM_CONFIG" --noheadings -o lv_name "$PK_VG" 2>/dev/null | grep -qw "$1"; }
snapshot() { pk2 vm snapshot --vm "$VM" | jq -r '.snapshot[0].new_leaf'; }

# check_vm_chain WANT: the metadata chain and the chain GetVolumeChain says is in
# use (the live XML of a running VM; for a shut-off one the leaf its definition
# names, then the qcow2 headers) are WANT (ids, leaf first), and hsmd agrees.
check_vm_chain() {
	local c
	[ "$(spm_chain)" = "$1" ] || fail "metadata chain $(spm_chain), want $1"
	c=$(pk2 vm chain --vm "$VM" --drive vda) || fail "vm chain: $c"
	[ "$(echo "$c" | jq -r '.live_chain | join(",")')" = "$1" ] || fail "chain in use, want $1: $c"
	[ "$(echo "$c" | jq -r .consistent)" = true ] || fail "hsmd: chains differ: $c"
}

# check_chain WANT: check_vm_chain, and VmList shows the running VM on WANT.
check_chain() {
	[ "$(live_chain)" = "$1" ] || fail "live chain $(live_chain), want $1"
	check_vm_chain "$1"
}

# hsmd_stops_cleanly: host 2's hsmd stops on SIGTERM, and a sanitizer build
# reported nothing (it reports leaks and errors at exit).
hsmd_stops_cleanly() {
	local pid
	pid=$(cat "$PK_HOST2_DIR/hsmd.pid")
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "hsmd of host 2 did not stop on SIGTERM"
	! grep -q 'Sanitizer' "$PK_HOST2_DIR/hsmd.log" ||
		fail "sanitizer report: $(grep -A5 Sanitizer "$PK_HOST2_DIR/hsmd.log" | head -20)"
	ok "hsmd of host 2 stopped cleanly on SIGTERM"
}

# merge_deleted VOLUME: gone from the SPM and from LVM, no link left on host 2.
merge_deleted() {
	expect_code NOT_FOUND spm_any volume info --image "$IMG" --volume "$1"
	lv_exists "$1" && fail "the LV of $1 still exists"
	[ ! -e "$PK_HOST2_RUN/storage/$D/$IMG/$1" ] || fail "volume $1 is still linked on host 2"
}

# merge_lab_up NAME LEAF_SIZE GUEST_ARGS: a 2-host lab with the SPM on host 1 and
# the test's VM on host 2, whose guest (its kernel arguments GUEST_ARGS, e.g.
# "pk.blocks=2048") writes on the image IMG = L0 (COW, an LV of LEAF_SIZE; ""
# for the default size) <- BASE (RAW, 64 MiB). Sets D, SERIAL, IMG, BASE and L0.
merge_lab_up() {
	local out
	lab_up "$1" 2
	D=$PK_DOMAIN
	SERIAL=$PK_LAB_DIR/$PK_LAB/host2/$VM.serial
	spm 1 spm start >/dev/null || fail "spm start on host 1"
	IMG=$(uuid) BASE=$(uuid) L0=$(uuid)
	spm_any volume create --image "$IMG" --volume "$BASE" --format raw --capacity 64M >/dev/null ||
		fail "create base"
	spm_any volume create --image "$IMG" --volume "$L0" --parent "$BASE" --format cow ${2:+--size "$2"} \
		>/dev/null || fail "create leaf"
	out=$(hsm 2 image prepare --image "$IMG") || fail "prepare: $out"
	lab/guest-build "$GUEST" >/dev/null || fail "guest-build"
	out=$(pk2 vm create --name "$VM" --memory 256 --type qemu --disk "image=$IMG,volume=$L0" \
		--kernel vmlinuz --initrd initrd.img \
		--cmdline "$GUEST_KARGS pk.disks=vda $3") ||
		fail "vm create: $out"
	wait_ready
	wait_acks 300 30
	ok "VM $VM writes on host 2 ($(acks) acks); SPM on host 1; chain $L0 <- $BASE"
}

HSMD_PID=""
# start_hsmd [VAR=VALUE...]: (re)starts host 2's hsmd (with that environment) and
# waits until it answers; stop_hsmd [SIGNAL] stops it.
start_hsmd() {
	local dir=$PK_LAB_DIR/$PK_LAB/host2
	env "$@" setsid "$BUILD/hsmd" -c "$dir/hsmd.conf" </dev/null >>"$dir/hsmd.log" 2>&1 &
	HSMD_PID=$!
	echo "$HSMD_PID" >"$dir/hsmd.pid"
	disown
	for _ in $(seq 100); do
		"$PKCTL" --hsm "$PK_HOST2_HSM" --timeout 500 ping >/dev/null 2>&1 && return 0
		kill -0 "$HSMD_PID" 2>/dev/null || fail "hsmd exited at start: $(tail -n 5 "$dir/hsmd.log")"
		sleep 0.1
	done
	fail "hsmd of host 2 does not answer"
}
stop_hsmd() { # stop_hsmd [SIGNAL]
	local pid
	pid=$(cat "$PK_LAB_DIR/$PK_LAB/host2/hsmd.pid")
	kill "-${1:-TERM}" "$pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	fail "hsmd $pid did not stop"
}
hsmd_alive() { kill -0 "$(cat "$PK_LAB_DIR/$PK_LAB/host2/hsmd.pid")" 2>/dev/null; }
