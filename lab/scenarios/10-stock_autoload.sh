# Stock behaviour: an unprivileged user gets kernel modules loaded just by
# asking for a socket or an algorithm. Enforcement scenarios flip these.
# results: stock_autoload_vsock stock_autoload_af_alg_aead stock_autoload_sock_diag stock_autoload_sock_diag_vsock stock_autoload_kcm stock_autoload_l2tp stock_autoload_smc stock_autoload_appletalk stock_autoload_bluetooth stock_autoload_can_bcm

# socket(AF_VSOCK, SOCK_STREAM, 0) -> net-pf-40 -> vsock.
expect_autoload stock_autoload_vsock "vsock" probe socket 40 1 0

# (sctp's stock autoload is checked last, by 95-stock_sctp.sh: once used,
# sctp cannot be unloaded, and the enforcement scenarios need it unloaded.)

# AF_ALG aead bind -> af_alg, algif-aead, crypto-authencesn(...).
expect_autoload stock_autoload_af_alg_aead "af_alg algif_aead authencesn" \
	probe alg-bind aead "authencesn(hmac(sha256),cbc(aes))"

# SOCK_DIAG_BY_FAMILY AF_INET/TCP -> net-pf-16-proto-4-type-2 (inet_diag)
# -> net-pf-16-proto-4-type-2-6 (tcp_diag).
expect_autoload stock_autoload_sock_diag "inet_diag tcp_diag" probe sockdiag 2 6

# SOCK_DIAG_BY_FAMILY AF_VSOCK -> net-pf-16-proto-4-type-40 (vsock_diag).
expect_autoload stock_autoload_sock_diag_vsock "vsock_diag" probe sockdiag 40

# socket(AF_KCM, SOCK_SEQPACKET, 0) -> net-pf-41 -> kcm.
expect_autoload stock_autoload_kcm "kcm" probe socket 41 5 0

# socket(AF_INET, SOCK_DGRAM, IPPROTO_L2TP) -> net-pf-2-proto-115-type-2 -> l2tp_ip.
expect_autoload stock_autoload_l2tp "l2tp_ip l2tp_core" probe socket 2 2 115

# socket(AF_SMC, SOCK_STREAM, 0) -> net-pf-43 -> smc (and ib_core).
expect_autoload stock_autoload_smc "smc ib_core" probe socket 43 1 0

# socket(AF_APPLETALK, SOCK_DGRAM, 0) -> net-pf-5 -> appletalk (generic kernel).
expect_autoload stock_autoload_appletalk "appletalk" probe socket 5 2 0

# socket(AF_BLUETOOTH, SOCK_RAW, BTPROTO_HCI) -> net-pf-31 -> bluetooth (generic kernel).
expect_autoload stock_autoload_bluetooth "bluetooth" probe socket 31 3 1

# socket(AF_CAN, SOCK_DGRAM, CAN_BCM) -> net-pf-29 -> can, then can-proto-2 -> can_bcm (generic kernel).
expect_autoload stock_autoload_can_bcm "can can_bcm" probe socket 29 2 2
