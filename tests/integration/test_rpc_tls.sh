#!/bin/bash
# Mutual TLS and ipc protection over real sockets: spmd and hsmd listen on
# tls+tcp:// with certificates made here by openssl; a client with a
# certificate from the cluster CA is served; one without a certificate, with
# another CA's or with an expired one is refused, and so is a client that
# does not trust the daemon's CA; plain tcp:// is refused at start unless
# insecure_tcp is set; an ipc socket is 0600 and refuses other uids.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
. "$(dirname "$0")/nolab_lib.sh"

nolab_setup tls
port=$(nolab_ports 4) || fail "no free ports"
SPM_URL="tls+tcp://127.0.0.1:$port"
HSM_URL="tls+tcp://127.0.0.1:$((port + 1))"
EVENTS_URL="tls+tcp://127.0.0.1:$((port + 2))"
NOSTORE=(-o lvm_devices=/dev/pk-no-such-device -o log_level=info)
tls_opts() { # NAME: a daemon's TLS settings with certificate NAME
	echo "-o tls_ca=$dir/ca.pem -o tls_cert=$dir/$1.pem -o tls_key=$dir/$1.key"
}
# pkctl as identity NAME trusting CA: pk NAME CA ARGS...
pk() {
	local name=$1 ca=$2
	shift 2
	"$PKCTL" --tls-ca "$dir/$ca.pem" --tls-cert "$dir/$name.pem" --tls-key "$dir/$name.key" \
		--timeout 3000 "$@"
}
wait_ping() { # TARGET-FLAG URL
	for _ in $(seq 50); do
		pk client ca "$1" "$2" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# expect_ping CODE CMD... : a ping that fails with CODE (ping's JSON nests the
# error under the daemon it asked); its message in LAST_ERROR.
expect_ping() {
	local want=$1 out code
	shift
	out=$("$@" 2>/dev/null) && fail "expected $want from: $* (it succeeded: $out)"
	code=$(echo "$out" | jq -r '[.. | objects | select(has("error")) | .error.code] | first // empty')
	[ "$code" = "$want" ] || fail "expected $want from: $*; got: $out"
	LAST_ERROR=$(echo "$out" | jq -r '[.. | objects | select(has("error")) | .error.message] | first')
}

# 1. certificates
tls_make_certs "$dir" || fail "openssl could not make the test certificates"
ok "certificates made: CA, server, client, another CA's client, an expired client"

# 2. spmd on tls+tcp://
# shellcheck disable=SC2046
"$BUILD/spmd" -o "listen=$SPM_URL" $(tls_opts server) "${NOSTORE[@]}" \
	-o "run_dir=$dir/spm-run" -o "state_dir=$dir/spm-state" 2>>"$dir/spmd.log" &
pids+=($!)
wait_ping --spm "$SPM_URL" || { tail -n 20 "$dir/spmd.log"; fail "spmd does not answer on $SPM_URL"; }
ok "spmd answers a client with a certificate from the cluster CA ($SPM_URL)"

out=$(PK_TLS_CA=$dir/ca.pem PK_TLS_CERT=$dir/client.pem PK_TLS_KEY=$dir/client.key \
	"$PKCTL" --spm "$SPM_URL" --timeout 3000 --json ping) || fail "PK_TLS_* not used: $out"
ok "PK_TLS_CA/PK_TLS_CERT/PK_TLS_KEY work like the flags"

# 3. refusals
expect_ping UNAVAILABLE pk rogue ca --json --spm "$SPM_URL" ping
echo "$LAST_ERROR" | grep -q "TLS handshake" || fail "no actionable message: $LAST_ERROR"
ok "a certificate from another CA is refused: $LAST_ERROR"
expect_ping UNAVAILABLE pk expired ca --json --spm "$SPM_URL" ping
ok "an expired certificate is refused"
expect_ping UNAVAILABLE pk client otherca --json --spm "$SPM_URL" ping
ok "a client that does not trust the daemon's CA does not talk to it"
expect_ping INVALID_ARGUMENT "$PKCTL" --json --timeout 3000 --spm "$SPM_URL" ping
echo "$LAST_ERROR" | grep -q -- "--tls-ca" || fail "no hint at the flags: $LAST_ERROR"
ok "pkctl without certificates says which flags to give"
# A TLS client that presents no certificate at all: the handshake fails.
if timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$dir/ca.pem" \
	</dev/null >"$dir/s_client.out" 2>&1; then
	grep -q "Cipher is (NONE)" "$dir/s_client.out" ||
		{ cat "$dir/s_client.out"; fail "a client without a certificate completed a handshake"; }
fi
grep -q "Cipher is (NONE)\|alert\|unexpected eof\|errno" "$dir/s_client.out" ||
	{ cat "$dir/s_client.out"; fail "s_client without a certificate: unexpected output"; }
ok "a TLS client without a certificate is refused in the handshake"
# Plain tcp to the TLS port gets no service either.
expect_ping UNAVAILABLE "$PKCTL" --json --timeout 2000 --spm "tcp://127.0.0.1:$port" ping
ok "plain tcp to the TLS port is not served"
wait_ping --spm "$SPM_URL" || fail "spmd stopped serving after the refusals"
ok "spmd still serves good clients after the refusals"

# 4. hsmd on tls+tcp://, events on tls+tcp://, its SPM client with TLS
# shellcheck disable=SC2046
"$BUILD/hsmd" -o "listen=$HSM_URL" -o "events=$EVENTS_URL" -o "spm=$SPM_URL" $(tls_opts server) \
	"${NOSTORE[@]}" -o libvirt_uri=test:///default -o activation=lab \
	-o "lvmap_dir=$dir/lvmap" -o "run_dir=$dir/hsm-run" -o "state_dir=$dir/hsm-state" \
	2>>"$dir/hsmd.log" &
pids+=($!)
wait_ping --hsm "$HSM_URL" || { tail -n 20 "$dir/hsmd.log"; fail "hsmd does not answer on $HSM_URL"; }
ok "hsmd answers over mutual TLS ($HSM_URL, events on $EVENTS_URL)"
expect_ping UNAVAILABLE pk rogue ca --json --hsm "$HSM_URL" ping
ok "hsmd refuses a certificate from another CA"
# The SPM client reads its certificate at start: a missing key stops hsmd.
if "$BUILD/hsmd" -o "listen=ipc://$dir/hsm2/hsm.sock" -o "spm=$SPM_URL" \
	-o "tls_ca=$dir/ca.pem" -o "tls_cert=$dir/server.pem" -o "tls_key=$dir/missing.key" \
	"${NOSTORE[@]}" -o libvirt_uri=test:///default -o activation=lab \
	-o "lvmap_dir=$dir/lvmap" -o "run_dir=$dir/hsm2-run" -o "state_dir=$dir/hsm2-state" \
	2>"$dir/hsmd2.log"; then
	fail "hsmd started with an unreadable tls_key for its SPM client"
fi
grep -q "missing.key" "$dir/hsmd2.log" || { cat "$dir/hsmd2.log"; fail "hsmd2: no file named"; }
if "$BUILD/hsmd" -o "listen=ipc://$dir/hsm2/hsm.sock" -o "spm=$SPM_URL" \
	"${NOSTORE[@]}" -o libvirt_uri=test:///default -o activation=lab \
	-o "lvmap_dir=$dir/lvmap" -o "run_dir=$dir/hsm2-run" -o "state_dir=$dir/hsm2-state" \
	2>"$dir/hsmd3.log"; then
	fail "hsmd started with a tls+tcp:// spm address and no certificates"
fi
grep -q "needs TLS certificates" "$dir/hsmd3.log" || { cat "$dir/hsmd3.log"; fail "hsmd3: no reason"; }
ok "hsmd's SPM client takes the TLS settings (an unreadable key stops the start: $(grep -o "tls_key[^;]*" "$dir/hsmd2.log" | head -n 1))"

# 5. plain tcp:// is refused at start unless insecure_tcp, and then only on loopback
plain="tcp://127.0.0.1:$((port + 3))"
if "$BUILD/spmd" -o "listen=$plain" "${NOSTORE[@]}" -o "run_dir=$dir/p-run" \
	-o "state_dir=$dir/p-state" 2>"$dir/plain.log"; then
	fail "spmd started on plain $plain"
fi
grep -q "refused" "$dir/plain.log" || { cat "$dir/plain.log"; fail "no reason given"; }
ok "plain tcp:// is refused by default: $(tail -n 1 "$dir/plain.log")"
if "$BUILD/spmd" -o "listen=tcp://0.0.0.0:$((port + 3))" -o insecure_tcp=true "${NOSTORE[@]}" \
	-o "run_dir=$dir/p-run" -o "state_dir=$dir/p-state" 2>"$dir/plain2.log"; then
	fail "spmd started on plain tcp on all interfaces"
fi
ok "insecure_tcp allows loopback only"
if "$BUILD/spmd" -o "listen=tls+tcp://127.0.0.1:$((port + 3))" "${NOSTORE[@]}" \
	-o "run_dir=$dir/p-run" -o "state_dir=$dir/p-state" 2>"$dir/plain3.log"; then
	fail "spmd started on tls+tcp:// without certificates"
fi
ok "tls+tcp:// without tls_ca/tls_cert/tls_key is refused at start"

# 6. ipc: socket 0600 in a 0700 directory; other uids refused even if the mode is loosened
mkdir -p "$dir/shared" && chmod 1777 "$dir/shared" && chmod 0711 "$dir"
IPC="ipc://$dir/shared/spm.sock"
"$BUILD/spmd" -o "listen=$IPC" "${NOSTORE[@]}" -o "run_dir=$dir/i-run" \
	-o "state_dir=$dir/i-state" 2>>"$dir/spmd-ipc.log" &
pids+=($!)
for _ in $(seq 50); do "$PKCTL" --spm "$IPC" --timeout 500 ping >/dev/null 2>&1 && break; sleep 0.1; done
"$PKCTL" --spm "$IPC" --timeout 2000 ping >/dev/null || fail "spmd does not answer on $IPC"
mode=$(stat -c %a "$dir/shared/spm.sock")
[ "$mode" = 600 ] || fail "ipc socket mode is $mode, not 600"
ok "the ipc socket is created with mode 0600"
other=nobody
id "$other" >/dev/null 2>&1 || fail "no user '$other' to test another uid with"
chmod 0666 "$dir/shared/spm.sock"
install -m 0755 "$PKCTL" "$dir/shared/pkctl" # reachable by that uid
if setpriv --reuid="$other" --regid="$(id -g "$other")" --clear-groups \
	"$dir/shared/pkctl" --spm "$IPC" --timeout 2000 ping >"$dir/other.out" 2>&1; then
	cat "$dir/other.out"
	fail "uid $other was served on a loosened ipc socket"
fi
for _ in $(seq 20); do grep -q "ipc connection refused" "$dir/spmd-ipc.log" && break; sleep 0.1; done
grep -q "ipc connection refused.*peer_uid=$(id -u "$other")" "$dir/spmd-ipc.log" ||
	{ cat "$dir/other.out" "$dir/spmd-ipc.log"; fail "no refusal logged for uid $other"; }
ok "a connection from uid $(id -u "$other") is refused and logged even on a 0666 socket"
"$PKCTL" --spm "$IPC" --timeout 2000 ping >/dev/null || fail "spmd stopped serving ipc"
ok "our own uid is still served on ipc"
echo "# $CHECKS checks passed"
