#!/bin/bash
# Authorization by certificate identity over real TLS sockets (docs/SECURITY.md,
# Authorization): spmd and hsmd map certificate CNs to roles (auth_engine,
# auth_host, auth_viewer). A viewer reads but cannot delete; a host
# certificate reaches what hsmd needs from spmd but not SpmStop, and the host
# id of its ImagePrepared is the certificate's, not the request's; a
# certificate mapped to no role gets nothing; the engine gets every verb. A
# connection over max_connections is dropped. No storage is needed: a verb
# that passes the check fails further on (NOT_SPM, NOT_FOUND), which is not
# PERMISSION_DENIED.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
. "$(dirname "$0")/nolab_lib.sh"

nolab_setup roles
port=$(nolab_ports 4) || fail "no free ports"
SPM_URL="tls+tcp://127.0.0.1:$port"
HSM_URL="tls+tcp://127.0.0.1:$((port + 1))"
BOUND_URL="tls+tcp://127.0.0.1:$((port + 2))"
NOSTORE=(-o lvm_devices=/dev/pk-no-such-device -o log_level=info)
AUTH=(-o auth_engine=engine -o auth_host=host1:1 -o auth_viewer=viewer)
DOM=11111111-1111-4111-8111-111111111111
IMG=22222222-2222-4222-8222-222222222222
VOL=33333333-3333-4333-8333-333333333333
tls_opts() { # NAME: a daemon's TLS settings with certificate NAME
	echo "-o tls_ca=$dir/ca.pem -o tls_cert=$dir/$1.pem -o tls_key=$dir/$1.key"
}
pk() { # pk NAME ARGS...: pkctl as identity NAME
	local name=$1
	shift
	"$PKCTL" --tls-ca "$dir/ca.pem" --tls-cert "$dir/$name.pem" --tls-key "$dir/$name.key" \
		--timeout 3000 --json "$@"
}
wait_ping() { # TARGET-FLAG URL
	for _ in $(seq 50); do
		pk engine "$1" "$2" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# expect_denied CMD...: PERMISSION_DENIED, pkctl's exit status 3
expect_denied() {
	local out rc=0
	out=$("$@" 2>/dev/null) || rc=$?
	[ "$rc" = 3 ] || fail "expected exit 3 (PERMISSION_DENIED) from: $*; got $rc: $out"
	echo "$out" | grep -q '"PERMISSION_DENIED"' || fail "expected PERMISSION_DENIED from: $*; got: $out"
	LAST_ERROR=$(echo "$out" | jq -r '[.. | objects | select(has("error")) | .error.message] | first')
}
# expect_not_denied CMD...: the call got past authorization (any other answer)
expect_not_denied() {
	local out
	out=$("$@" 2>/dev/null)
	echo "$out" | grep -q '"PERMISSION_DENIED"' && fail "denied: $*: $out"
	echo "$out" | grep -q '"UNAVAILABLE"' && fail "no answer: $*: $out"
	LAST_OUT=$out
}
wait_log() { # FILE PATTERN
	for _ in $(seq 30); do grep -q -- "$2" "$1" && return 0; sleep 0.1; done
	return 1
}

# 1. certificates: the CA, spmd's (CN server), and engine, viewer, host1, stranger
tls_make_certs "$dir" && tls_make_role_certs "$dir" || fail "openssl could not make the certificates"
ok "certificates made: engine, viewer, host1, stranger (unmapped)"

# 2. spmd with the mapping
# shellcheck disable=SC2046
"$BUILD/spmd" -o "listen=$SPM_URL" $(tls_opts server) "${AUTH[@]}" "${NOSTORE[@]}" \
	-o "run_dir=$dir/spm-run" -o "state_dir=$dir/spm-state" 2>>"$dir/spmd.log" &
pids+=($!)
wait_ping --spm "$SPM_URL" || { tail -n 20 "$dir/spmd.log"; fail "spmd does not answer on $SPM_URL"; }
grep -q "authorization listen='$SPM_URL' names=3" "$dir/spmd.log" || fail "no authorization line in spmd's log"
ok "spmd serves with the mapping (engine, host1:1, viewer)"

# 3. viewer: reads yes, DeleteVolume no
expect_denied pk viewer --spm "$SPM_URL" volume delete --domain "$DOM" --image "$IMG" --volume "$VOL"
echo "$LAST_ERROR" | grep -q "'viewer' (role viewer) may not call 'delete_volume'" || fail "message: $LAST_ERROR"
ok "a viewer's DeleteVolume is PERMISSION_DENIED (exit 3): $LAST_ERROR"
wait_log "$dir/spmd.log" "permission denied verb='delete_volume' identity='viewer' role=viewer" ||
	fail "the denial is not logged with identity and verb"
ok "the denial is logged with the identity and the verb"
out=$(pk viewer --spm "$SPM_URL" task list) || fail "viewer task list: $out"
expect_not_denied pk viewer --spm "$SPM_URL" spm status --domain "$DOM"
expect_not_denied pk viewer --spm "$SPM_URL" volume info --domain "$DOM" --image "$IMG" --volume "$VOL"
pk viewer --spm "$SPM_URL" ping >/dev/null || fail "viewer ping"
ok "a viewer reads: TaskList, SpmStatus, VolumeInfo, Ping"
expect_denied pk viewer --spm "$SPM_URL" spm stop --domain "$DOM"
ok "a viewer cannot SpmStop"

# 4. host: SpmStop no; what hsmd calls yes; ImagePrepared under the certificate's id
expect_denied pk host1 --spm "$SPM_URL" spm stop --domain "$DOM"
ok "a host certificate cannot SpmStop: $LAST_ERROR"
expect_denied pk host1 --spm "$SPM_URL" volume delete --domain "$DOM" --image "$IMG" --volume "$VOL"
expect_denied pk host1 --spm "$SPM_URL" task list
ok "a host certificate cannot DeleteVolume or TaskList"
expect_not_denied pk host1 --spm "$SPM_URL" volume extend --domain "$DOM" --image "$IMG" --volume "$VOL" --size 1G
expect_not_denied pk host1 --spm "$SPM_URL" volume reduce --domain "$DOM" --image "$IMG" --volume "$VOL" --size 1G
expect_not_denied pk host1 --spm "$SPM_URL" volume update --domain "$DOM" --image "$IMG" --volume "$VOL" --role leaf
ok "a host certificate reaches ExtendVolume, ReduceVolume, UpdateVolumeMeta"
out=$(PK_TLS_CA=$dir/ca.pem PK_TLS_CERT=$dir/host1.pem PK_TLS_KEY=$dir/host1.key \
	"$BUILD/tests/tools/pk-image-prepared" "$SPM_URL" "$DOM" "$IMG" 7) && rc=0 || rc=$?
[ "$rc" != 3 ] || fail "host1's ImagePrepared denied: $out"
wait_log "$dir/spmd.log" "image_prepared host_id=7 from 'host1' ignored: recorded under the certificate's host_id=1" ||
	{ tail -n 5 "$dir/spmd.log"; fail "the forged host id was not replaced by the certificate's"; }
ok "host1's ImagePrepared naming host 7 is served as host 1 (answer: $out)"
out=$(PK_TLS_CA=$dir/ca.pem PK_TLS_CERT=$dir/engine.pem PK_TLS_KEY=$dir/engine.key \
	"$BUILD/tests/tools/pk-image-prepared" "$SPM_URL" "$DOM" "$IMG" 7) && rc=0 || rc=$?
[ "$rc" != 3 ] || fail "engine's ImagePrepared denied: $out"
sleep 0.3
[ "$(grep -c "image_prepared host_id=7 from" "$dir/spmd.log")" = 1 ] ||
	fail "the engine's ImagePrepared host id was replaced"
ok "the engine's ImagePrepared keeps the host id it names"

# 5. unmapped: nothing, not even Ping
expect_denied pk stranger --spm "$SPM_URL" ping
echo "$LAST_ERROR" | grep -q "certificate 'stranger' maps to no role" || fail "message: $LAST_ERROR"
ok "a certificate mapped to no role is refused: $LAST_ERROR"
expect_denied pk client --spm "$SPM_URL" task list
ok "the CA's other certificates (CN client) are refused too"

# 6. engine: every verb
for args in "task list" "spm status --domain $DOM" "spm stop --domain $DOM" \
	"volume delete --domain $DOM --image $IMG --volume $VOL" \
	"image delete --domain $DOM --image $IMG" "task clear --domain $DOM $VOL"; do
	# shellcheck disable=SC2086
	expect_not_denied pk engine --spm "$SPM_URL" $args
done
ok "the engine passes on every verb tried (TaskList, SpmStatus, SpmStop, DeleteVolume, DeleteImage, TaskClear)"

# 7. hsmd with host1's certificate (its listener and its SPM client), the same mapping
# shellcheck disable=SC2046
"$BUILD/hsmd" -o "listen=$HSM_URL" -o "spm=$SPM_URL" $(tls_opts host1) "${AUTH[@]}" \
	"${NOSTORE[@]}" -o libvirt_uri=test:///default -o activation=lab \
	-o "lvmap_dir=$dir/lvmap" -o "run_dir=$dir/hsm-run" -o "state_dir=$dir/hsm-state" \
	2>>"$dir/hsmd.log" &
pids+=($!)
wait_ping --hsm "$HSM_URL" || { tail -n 20 "$dir/hsmd.log"; fail "hsmd does not answer on $HSM_URL"; }
out=$(pk viewer --hsm "$HSM_URL" vm list) || fail "viewer vm list on hsmd: $out"
expect_denied pk viewer --hsm "$HSM_URL" vm destroy --vm nosuchvm
expect_denied pk host1 --hsm "$HSM_URL" vm list
expect_not_denied pk engine --hsm "$HSM_URL" vm destroy --vm nosuchvm
ok "hsmd: a viewer lists VMs but cannot destroy one; a host certificate gets nothing; the engine may"

# 8. max_connections: a third connection to an spmd bounded at 2 is dropped
# shellcheck disable=SC2046
"$BUILD/spmd" -o "listen=$BOUND_URL" $(tls_opts server) "${AUTH[@]}" "${NOSTORE[@]}" \
	-o max_connections=2 -o "run_dir=$dir/b-run" -o "state_dir=$dir/b-state" \
	2>>"$dir/bound.log" &
pids+=($!)
wait_ping --spm "$BOUND_URL" || { tail -n 20 "$dir/bound.log"; fail "bounded spmd does not answer"; }
# Two idle peers: TLS, then the SP header of a REQ socket, then nothing.
for i in 1 2; do
	(printf '\000SP\000\000\060\000\000'; sleep 15) |
		openssl s_client -quiet -connect "127.0.0.1:$((port + 2))" -CAfile "$dir/ca.pem" \
			-cert "$dir/engine.pem" -key "$dir/engine.key" >/dev/null 2>&1 &
	pids+=($!)
done
dropped=0
for _ in $(seq 30); do
	if ! pk engine --spm "$BOUND_URL" --timeout 2000 ping >/dev/null 2>&1; then dropped=1; break; fi
	sleep 0.2
done
[ "$dropped" = 1 ] || fail "a third connection was served with max_connections=2"
wait_log "$dir/bound.log" "connection refused url='$BOUND_URL' max_connections=2" ||
	{ tail -n 5 "$dir/bound.log"; fail "the dropped connection is not logged"; }
ok "with two peers connected, a third connection is dropped and logged: $(grep -o "connection refused.*dropped=[0-9]*" "$dir/bound.log" | head -n 1)"
for p in "${pids[@]:3}"; do kill "$p" 2>/dev/null; done

served=0
for _ in $(seq 50); do
	if pk engine --spm "$BOUND_URL" --timeout 2000 ping >/dev/null 2>&1; then served=1; break; fi
	sleep 0.2
done
[ "$served" = 1 ] || fail "the bounded spmd does not serve again once the peers left"
ok "once the peers left, the bounded spmd serves again"

# 9. a mapping that does not parse stops the start
if "$BUILD/spmd" -o "listen=tls+tcp://127.0.0.1:$((port + 3))" $(tls_opts server) \
	-o auth_host=host1 "${NOSTORE[@]}" -o "run_dir=$dir/x-run" -o "state_dir=$dir/x-state" \
	2>"$dir/bad.log"; then
	fail "spmd started with auth_host=host1 (no host id)"
fi
grep -q "auth_host: entry 'host1' must be <certificate name>:<host id 1-2000>" "$dir/bad.log" ||
	{ cat "$dir/bad.log"; fail "no reason given"; }
ok "a bad mapping stops the start: $(grep -o "auth_host:.*" "$dir/bad.log" | head -n 1)"
echo "# $CHECKS checks passed"
