# Shared helpers of the integration tests (sourced). Each test runs in its
# own lab (PK_LAB unique per test run) and brings it down in an EXIT trap.
set -u
set -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
export BUILD
PKCTL=$PWD/$BUILD/pkctl
# The lab guest's kernel arguments before its pk.* ones (docs/GUEST.md):
# no_timer_check, because on a loaded host a TCG guest's timer check fails
# and the kernel panics ("IO-APIC + timer doesn't work!").
GUEST_KARGS="console=ttyS0 quiet no_timer_check"
CHECKS=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() {
	CHECKS=$((CHECKS + 1))
	echo "ok $CHECKS - $*"
}

# expect_code CODE CMD... : CMD fails (exit 1) with the JSON error code CODE.
expect_code() {
	local want=$1 out code
	shift
	out=$("$@" 2>/dev/null) && fail "expected $want from: $* (it succeeded: $out)"
	code=$(echo "$out" | jq -r '.error.code // empty' 2>/dev/null)
	[ "$code" = "$want" ] || fail "expected $want from: $*; got: $out"
	LAST_ERROR=$(echo "$out" | jq -r '.error.message')
}

lab_up() { # lab_up NAME HOSTS
	export PK_LAB=$1
	lab/lab up --hosts "$2" || fail "lab up"
	eval "$(lab/lab env)"
}

lab_down() {
	local rc=$?
	if [ -n "${PK_LAB:-}" ]; then
		if [ $rc -ne 0 ]; then
			echo "--- logs of lab $PK_LAB (last lines) ---" >&2
			for f in "$PK_LAB_DIR/$PK_LAB"/host*/{spmd,hsmd}.log; do
				[ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }
			done
		fi
		lab/lab down >/dev/null 2>&1 || lab/lab down
	fi
	exit $rc
}

# spm HOST ARGS... : pkctl against one host's spmd, JSON out.
spm() {
	local h=$1
	shift
	local v="PK_HOST${h}_SPM"
	"$PKCTL" --json --spm "${!v}" "$@"
}

# spm_any ARGS... : pkctl against "the SPM" (every host's spmd listed).
spm_any() {
	"$PKCTL" --json --spm "$PK_SPMS" "$@"
}

hsm() {
	local h=$1
	shift
	local v="PK_HOST${h}_HSM"
	"$PKCTL" --json --hsm "${!v}" "$@"
}

uuid() { cat /proc/sys/kernel/random/uuid; }

# Restarts one host's spmd (optionally with environment, e.g. PK_FAULT=...).
restart_spmd() { # restart_spmd HOST [VAR=VALUE...]
	local h=$1 dir pid url
	shift
	dir="$PK_LAB_DIR/$PK_LAB/host$h"
	pid=$(cat "$dir/spmd.pid" 2>/dev/null)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	env "$@" setsid "$BUILD/spmd" -c "$dir/spmd.conf" </dev/null >>"$dir/spmd.log" 2>&1 &
	echo $! >"$dir/spmd.pid"
	disown
	url="PK_HOST${h}_SPM"
	for _ in $(seq 100); do
		"$PKCTL" --spm "${!url}" --timeout 500 ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "spmd of host $h did not come back"
}
