#!/bin/bash
# SPM failover when the SPM *host* dies (its sanlock daemon is killed):
# the old SPM stops writing at once; the other host can take the lease
# only after sanlock's host_dead_seconds (8 x io_timeout + 60 s, ~70 s at
# io_timeout 1), and never are there two SPMs.
source "$(dirname "$0")/lib.sh"
trap lab_down EXIT
lab_up "itest-spmfo-$$" 2

spm 1 spm start >/dev/null || fail "host 1 spm start"
IMG=$(uuid)
spm_any volume create --image "$IMG" --format raw --capacity 64M >/dev/null || fail "create"
ok "host 1 is SPM and writes"

H1="$PK_LAB_DIR/$PK_LAB/host1"
kill -9 "$(cat "$H1/sanlock.pid")"
t0=$(date +%s)
ok "host 1's sanlock daemon killed"

# Host 1 must refuse writes from now on.
expect_code NOT_SPM spm 1 volume create --image "$(uuid)" --format raw --capacity 64M
ok "host 1 refuses writes without its sanlock: $LAST_ERROR"

took=""
for _ in $(seq 150); do
	s1=$(spm 1 spm status 2>/dev/null | jq -r .state)
	if out=$(spm 2 spm start 2>/dev/null); then
		[ "$s1" = SPM ] && fail "host 1 still claimed SPM when host 2 got the lease"
		took=$(($(date +%s) - t0))
		break
	fi
	[ "$s1" = SPM ] && [ "$(spm 2 spm status | jq -r .state)" = SPM ] && fail "two SPMs"
	sleep 1
done
[ -n "$took" ] || fail "host 2 never became SPM"
[ "$took" -ge 20 ] || fail "host 2 took the lease after ${took}s: before host 1 could be dead"
ok "host 2 became SPM ${took}s after host 1's sanlock died (bound: ~70s)"
[ "$(spm 1 spm status 2>/dev/null | jq -r .state)" != SPM ] || fail "host 1 claims SPM"
spm_any volume create --image "$(uuid)" --format raw --capacity 64M >/dev/null || fail "host 2 writes"
ok "host 2 serves writes; host 1 does not claim the role"
echo "PASS: $CHECKS checks"
