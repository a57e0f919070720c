#!/bin/bash
# lab/lab: up a 2-host lab, ping its four daemons through pkctl over
# the real sockets, check that a second `up` is harmless, lose some of the
# lab's records (a killed spmd, a deleted pid file), then `down` and check
# that nothing of the lab is left: loop devices, VG, processes, mounts,
# state dir; a second `down` is harmless.
set -u
cd "$(dirname "$0")/../.." || exit 1
export BUILD=${BUILD:-build}
export PK_LAB=itest-lab-$$
LAB=lab/lab
PKCTL=$BUILD/pkctl
ROOT=${PK_LAB_DIR:-/run/pk-lab}
LAB_DIR=$ROOT/$PK_LAB

fail() {
	echo "FAIL: $*"
	exit 1
}
ok() { echo "ok: $*"; }

trap '"$LAB" down >/dev/null 2>&1' EXIT

for bin in hsmd spmd pkctl libpk-memlock-shim.so; do
	[ -e "$BUILD/$bin" ] || fail "$BUILD/$bin missing (make BUILD=$BUILD)"
done

# Processes of this lab, found by what names them (not by recorded pids).
lab_pids() {
	local p comm
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		case $comm in
		spmd | hsmd | pk-lvmapd)
			tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qF "$LAB_DIR/" && echo "${p#/proc/} $comm"
			;;
		sanlock | sanlock-helper)
			tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qF "SANLOCK_RUN_DIR=$LAB_DIR/" &&
				echo "${p#/proc/} $comm"
			;;
		esac
	done
}

out=$("$LAB" up --hosts 2 2>&1) || fail "lab up: $out"
echo "$out"
eval "$("$LAB" env)" || fail "lab env"
[ "$PK_HOSTS" = 2 ] || fail "PK_HOSTS=$PK_HOSTS"
for v in PK_DOMAIN PK_VG PK_PVS PK_HSM PK_SPM PK_HOST1_HSM PK_HOST1_SPM PK_HOST1_EVENTS \
	PK_HOST1_ID PK_HOST1_STATE PK_HOST1_LVMAP PK_HOST1_SANLOCK PK_HOST2_HSM PK_HOST2_SPM \
	PK_HOST2_EVENTS PK_HOST2_ID PK_HOST2_STATE PK_HOST2_LVMAP PK_HOST2_SANLOCK; do
	[ -n "${!v:-}" ] || fail "lab env does not set $v"
done
ok "lab up; env sets PK_* for 2 hosts (domain $PK_DOMAIN)"

for h in 1 2; do
	for role in hsm spm; do
		var=PK_HOST${h}_${role^^}
		out=$("$PKCTL" "--$role" "${!var}" --json ping 2>&1) || fail "pkctl --$role ${!var} ping: $out"
		echo "$out" | grep -q '^{' || fail "not a JSON object: $out"
		echo "$out" | grep -q "\"host_id\":${h}[,}]" || fail "${role}d of host $h answers as: $out"
		echo "$out" | grep -q "\"role\":\"$role\"" || fail "${role}d of host $h answers as: $out"
		ok "${role}d of host $h answers on ${!var} with host_id $h"
	done
done

# The lab runs on mutual TLS: every URL is tls+tcp://, pkctl presents the
# engine's certificate from the env, and a client without one is refused.
for v in PK_HSM PK_SPM PK_HOST2_EVENTS; do
	case ${!v} in tls+tcp://127.0.0.1:*) ;; *) fail "$v=${!v} is not a loopback tls+tcp:// URL" ;; esac
done
for f in ca.pem host1.pem host2.pem engine.pem viewer.pem; do
	[ -f "$PK_TLS_DIR/$f" ] || fail "lab made no $PK_TLS_DIR/$f"
done
grep -q "^tls_cert = $PK_TLS_DIR/host1.pem" "$PK_HOST1_DIR/hsmd.conf" || fail "host 1's hsmd.conf has no tls_cert"
if out=$(env -u PK_TLS_CERT -u PK_TLS_KEY "$PKCTL" --hsm "$PK_HSM" --timeout 2000 ping 2>&1); then
	fail "a client without a certificate was answered: $out"
fi
out=$("$PKCTL" --hsm "$PK_HSM" --tls-cert "$PK_TLS_DIR/viewer.pem" --tls-key "$PK_TLS_DIR/viewer.key" ping 2>&1) ||
	fail "the viewer's certificate is refused for Ping: $out"
if out=$("$PKCTL" --spm "$PK_SPM" --tls-cert "$PK_TLS_DIR/viewer.pem" --tls-key "$PK_TLS_DIR/viewer.key" \
	spm stop 2>&1); then
	fail "the viewer stopped the SPM: $out"
fi
echo "$out" | grep -q PERMISSION_DENIED || fail "the viewer's SpmStop: $out (wanted PERMISSION_DENIED)"
ok "mutual TLS on loopback ($PK_HSM); no certificate is refused, a viewer cannot SpmStop"

vgs=$(lvm vgs --config "$PK_LVM_CONFIG" --noheadings -o vg_name,vg_tags 2>/dev/null)
echo "$vgs" | grep -q "$PK_VG .*PK_DOMAIN=$PK_DOMAIN" || fail "VG $PK_VG not found or untagged: $vgs"
ok "VG $PK_VG on $PK_PVS, tagged PK_DOMAIN=$PK_DOMAIN"
for h in 1 2; do
	var=PK_HOST${h}_LVMAP
	if [ -x "$BUILD/pk-lvmapd" ]; then
		awk -v d="${!var}" '$2 == d { f = 1 } END { exit !f }' /proc/mounts ||
			fail "no pk-lvmapd mount at ${!var}"
	fi
	var=PK_HOST${h}_SANLOCK
	SANLOCK_RUN_DIR=${!var} sanlock client status >/dev/null 2>&1 || fail "sanlock of host $h does not answer"
done
ok "sanlock (and pk-lvmapd, if built) of both hosts up"

out=$("$LAB" up --hosts 2 2>&1) || fail "second lab up: $out"
echo "$out" | grep -q "already up" || fail "second up does not say it is already up: $out"
"$LAB" status >/dev/null || fail "lab status reports a problem: $("$LAB" status)"
ok "second up is harmless; status is healthy"

pids_before=$(lab_pids)
kinds="sanlock sanlock-helper spmd hsmd"
[ -x "$BUILD/pk-lvmapd" ] && kinds+=" pk-lvmapd"
for kind in $kinds; do
	n=$(echo "$pids_before" | awk -v k="$kind" '$2 == k' | wc -l)
	[ "$n" -ge 2 ] || fail "expected a $kind process per host, found: $pids_before"
done
ok "found the lab's processes by name: $(echo "$pids_before" | awk '{ print $2 }' | sort | uniq -c | xargs)"

# Lose records: spmd of host 1 dies, host 2's sanlock pid file disappears.
kill -9 "$(cat "$LAB_DIR/host1/spmd.pid")"
rm -f "$LAB_DIR/host2/sanlock.pid"
"$LAB" status >/dev/null && fail "status does not notice the dead spmd"
ok "status notices a dead spmd"

loops=$(echo "$PK_PVS" | tr ',' ' ')
out=$("$LAB" down 2>&1) || fail "lab down: $out"
echo "$out"

left=$(lab_pids)
[ -z "$left" ] || fail "processes of the lab left: $left"
for pid in $(echo "$pids_before" | awk '{ print $1 }'); do
	[ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
		fail "lab process $pid still runs"
done
ok "no sanlock/spmd/hsmd/pk-lvmapd process of the lab"

for loop in $loops; do
	back=$(losetup -n -O BACK-FILE "$loop" 2>/dev/null)
	case $back in "$LAB_DIR"/*) fail "$loop still backed by $back" ;; esac
done
backed=$(losetup -l -n -O NAME,BACK-FILE | awk -v d="$LAB_DIR/" 'index($2, d) == 1')
[ -z "$backed" ] || fail "loop devices backed by lab files: $backed"
ok "no loop device backed by the lab's files"

vgs=$(lvm vgs --config "$PK_LVM_CONFIG" --noheadings -o vg_name 2>/dev/null)
echo "$vgs" | grep -qw "$PK_VG" && fail "VG $PK_VG still visible"
[ -e "/etc/lvm/backup/$PK_VG" ] && fail "LVM backup of $PK_VG left in /etc/lvm/backup"
ok "no VG $PK_VG"

mounts=$(awk -v d="$LAB_DIR/" 'index($2, d) == 1' /proc/mounts)
[ -z "$mounts" ] || fail "mounts left under the lab dir: $mounts"
[ -e "$LAB_DIR" ] && fail "$LAB_DIR still exists"
ok "no mount under $LAB_DIR; the lab dir is gone"

out=$("$LAB" down 2>&1) || fail "second down: $out"
"$LAB" status >/dev/null; [ $? -eq 3 ] || fail "status of a down lab should exit 3"
"$LAB" env >/dev/null 2>&1 && fail "env of a down lab should fail"
ok "second down is harmless; status/env say the lab is down"

echo "PASS test_lab"
