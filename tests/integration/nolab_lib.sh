# Helpers of the integration tests that run their own spmd/hsmd without a lab
# (sourced after lib.sh): `nolab_setup NAME` makes the scratch dir $dir
# (/tmp/pk-itest-NAME-*), the list $pids the test appends its daemons to, and
# the EXIT trap that stops them and removes $dir; `nolab_ports COUNT` prints
# the first of COUNT consecutive tcp ports nothing listens on, above the
# labs' port blocks (lab/lab takes 21000-32700), so such tests never take a
# port a lab of a parallel test was given.

nolab_setup() { # NAME
	dir=$(mktemp -d "/tmp/pk-itest-$1-XXXXXX")
	pids=()
	trap nolab_cleanup EXIT
}

nolab_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}

nolab_ports() { # COUNT
	local count=$1 base p listening free
	listening=" $(ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ') "
	for _ in $(seq 200); do
		base=$((33000 + (RANDOM * 32768 + RANDOM) % 27000))
		free=1
		for ((p = base; p < base + count; p++)); do
			[[ $listening == *" $p "* ]] && { free=0; break; }
		done
		[ "$free" = 1 ] && { echo "$base"; return 0; }
	done
	echo "nolab_ports: no $count free ports" >&2
	return 1
}
