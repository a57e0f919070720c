# Helpers of the integration tests that run without a lab, on their own
# scratch loop devices and mappers (sourced). The test sets WORK (a temporary
# dir) and fills LOOPS, PIDS and MOUNTS as it makes them; the EXIT trap set
# here stops the processes, unmounts, runs the test's scratch_before_detach
# (if it defines one: e.g. removing a VG from the loops), detaches the loops
# and removes WORK, whatever state the test stopped in.
LOOPS=()
PIDS=()
MOUNTS=()

step() { echo "== $*"; }
ok() { echo "ok - $*"; }
fail() {
	echo "FAIL - $*"
	for log in "$WORK"/*.log; do
		[ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }
	done
	exit 1
}

scratch_cleanup() {
	local rc=$? pid m l i
	set +e
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	for m in "${MOUNTS[@]}"; do
		if grep -q " $m fuse" /proc/mounts; then
			umount -l "$m"
		fi
	done
	if declare -F scratch_before_detach >/dev/null; then
		scratch_before_detach
	fi
	for l in "${LOOPS[@]}"; do
		losetup -d "$l"
	done
	rm -rf "$WORK"
	exit "$rc"
}
trap scratch_cleanup EXIT
trap 'exit 143' TERM INT
