# Stock behaviour: an unprivileged user gets kernel modules loaded just by
# asking for a socket or an algorithm. Enforcement scenarios flip these.
# results: stock_autoload_vsock stock_autoload_sctp stock_autoload_af_alg_aead stock_autoload_sock_diag stock_autoload_sock_diag_vsock

# socket(AF_VSOCK, SOCK_STREAM, 0) -> net-pf-40 -> vsock.
expect_autoload stock_autoload_vsock "vsock" probe socket 40 1 0

# socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) -> net-pf-2-proto-132 -> sctp.
expect_autoload stock_autoload_sctp "sctp" probe socket 2 1 132

# AF_ALG aead bind -> af_alg, algif-aead, crypto-authencesn(...).
expect_autoload stock_autoload_af_alg_aead "af_alg algif_aead authencesn" \
	probe alg-bind aead "authencesn(hmac(sha256),cbc(aes))"

# SOCK_DIAG_BY_FAMILY AF_INET/TCP -> net-pf-16-proto-4-type-2 (inet_diag)
# -> net-pf-16-proto-4-type-2-6 (tcp_diag).
expect_autoload stock_autoload_sock_diag "inet_diag tcp_diag" probe sockdiag 2 6

# SOCK_DIAG_BY_FAMILY AF_VSOCK -> net-pf-16-proto-4-type-40 (vsock_diag).
expect_autoload stock_autoload_sock_diag_vsock "vsock_diag" probe sockdiag 40
