# Test certificates made with openssl (sourced by tests that use tls+tcp://).
#
# tls_make_certs DIR [DAYS] writes, in DIR:
#   ca.pem            the cluster CA (ca.key its key)
#   server.pem/.key   a daemon on this machine: subjectAltName DNS:localhost and
#                     DNS:127.0.0.1 (mbedTLS 2.28, Debian 12's, matches the host
#                     of a URL against DNS entries only, an address included)
#   client.pem/.key   an engine / pkctl, signed by ca
#   rogue.pem/.key    a client signed by another CA (otherca.pem)
#   expired.pem/.key  a client signed by ca, valid only in January 2020
# EC P-256 keys: quick to make, and mbedTLS handles them.

tls__key_csr() { # DIR NAME
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1/$2.key" -out "$1/$2.csr" -subj "/CN=$2" 2>/dev/null
}

tls__ca() { # DIR NAME DAYS
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1/$2.key" -out "$1/$2.pem" -days "$3" -subj "/CN=poolkeeper test $2" \
		2>/dev/null
}

tls__leaf() { # DIR NAME CA SAN DAYS
	tls__key_csr "$1" "$2" || return 1
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$4" >"$1/$2.ext"
	openssl x509 -req -in "$1/$2.csr" -CA "$1/$3.pem" -CAkey "$1/$3.key" \
		-CAcreateserial -days "$5" -extfile "$1/$2.ext" -out "$1/$2.pem" 2>/dev/null
}

# A certificate whose validity lies in the past needs `openssl ca` (x509 -req
# only counts days from now).
tls__expired() { # DIR NAME CA
	local d=$1
	mkdir -p "$d/ca.db" && : >"$d/ca.db/index.txt" && echo 1000 >"$d/ca.db/serial" || return 1
	cat >"$d/ca.db/ca.cnf" <<EOC
[ca]
default_ca = pk
[pk]
database = $d/ca.db/index.txt
serial = $d/ca.db/serial
new_certs_dir = $d/ca.db
default_md = sha256
policy = any
[any]
commonName = supplied
[leaf]
basicConstraints = CA:FALSE
subjectAltName = DNS:$2
EOC
	tls__key_csr "$d" "$2" || return 1
	openssl ca -batch -config "$d/ca.db/ca.cnf" -cert "$d/$3.pem" -keyfile "$d/$3.key" \
		-extensions leaf -startdate 20200101000000Z -enddate 20200102000000Z \
		-in "$d/$2.csr" -out "$d/$2.pem" 2>/dev/null
}

tls_make_certs() { # DIR [DAYS]
	local d=$1 days=${2:-2}
	tls__ca "$d" ca "$days" &&
		tls__ca "$d" otherca "$days" &&
		tls__leaf "$d" server ca "DNS:localhost,DNS:127.0.0.1" "$days" &&
		tls__leaf "$d" client ca "DNS:engine" "$days" &&
		tls__leaf "$d" rogue otherca "DNS:engine" "$days" &&
		tls__expired "$d" expired ca || return 1
	rm -rf "$d"/*.csr "$d"/*.ext "$d"/*.srl "$d/ca.db"
}

# tls_make_role_certs DIR: after tls_make_certs, client certificates named as
# the lab names them (docs/SECURITY.md, Authorization), signed by ca:
#   engine.pem/.key, viewer.pem/.key   CN engine, CN viewer
#   host1.pem/.key                     CN host1, also a daemon's certificate
#                                      (DNS:localhost, DNS:127.0.0.1)
#   stranger.pem/.key                  CN stranger: mapped to no role
tls_make_role_certs() { # DIR [DAYS]
	local d=$1 days=${2:-2}
	tls__leaf "$d" engine ca "DNS:engine" "$days" &&
		tls__leaf "$d" viewer ca "DNS:viewer" "$days" &&
		tls__leaf "$d" host1 ca "DNS:localhost,DNS:127.0.0.1" "$days" &&
		tls__leaf "$d" stranger ca "DNS:stranger" "$days" || return 1
	rm -rf "$d"/*.csr "$d"/*.ext "$d"/*.srl
}
