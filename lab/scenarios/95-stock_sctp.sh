# Stock behaviour for sctp, checked after every enforcement scenario: once
# an SCTP socket has existed, sctp's per-namespace control sockets keep the
# module in use and it cannot be unloaded, so the scenarios that check that
# kgate stops its autoload (50-modprobe_backend, 60-bpf_lsm) must run first.
# results: stock_autoload_sctp

# socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) -> net-pf-2-proto-132 -> sctp.
expect_autoload stock_autoload_sctp "sctp" probe socket 2 1 132
