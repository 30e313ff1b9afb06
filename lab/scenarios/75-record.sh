# kgate record on a real kernel with loadable modules (the development VM
# has none, so module requests are tested here): an unprivileged
# socket(AF_VSOCK) autoloads vsock, and the profile of that process tree
# must hold the module request ("net-pf-40"), the socket shape and the
# exec'd binaries, with nothing lost. The command changes user (root ->
# nobody) before the request: the recorder follows the tree, not a uid.
# results: record_module_request record_socket_shape record_nothing_lost

ALL="record_module_request record_socket_shape record_nothing_lost"
P=/tmp/record-profile.json

has_modules || skip_scenario "$NO_MODULES: no module request to record"

fail_all() {
	for r in $ALL; do result "$r" FAIL "$*"; done
	exit 0
}

# vsock must be absent so that socket() asks for it. Earlier scenarios
# load it, and with it whichever transport modprobe's dependencies or the
# first socket pulled in (vmw_vsock_vmci_transport, virtio, loopback,
# vsock_diag): unload every module that uses it first, recursively
# (unload_tree, lib.sh).
unload_tree vsock
loaded vsock && fail_all "vsock is loaded and cannot be unloaded: $(grep vsock /proc/modules)"
builtin vsock && fail_all "vsock is built into $KGATE_LAB_KERNEL: no module request to record"

out=$(kgate record -o $P -- probe as-user 65534 65534 -- probe socket 40 1 0 2>&1)
rc=$?
[ -f $P ] || fail_all "kgate record wrote no profile (exit $rc): $out"
prof=$(tr -d ' \n' <$P)

if echo "$prof" | grep -q '"module_requests":{"observable":true,"requests":\[[^]]*{"name":"net-pf-40","count":[1-9]' && loaded vsock; then
	result record_module_request PASS "net-pf-40 recorded, vsock loaded; $(echo "$prof" | grep -o '"module_requests":{[^}]*}[^]]*]')"
else
	result record_module_request FAIL "exit $rc, vsock loaded: $(loaded vsock && echo yes || echo no); $out; profile: $prof"
fi

if echo "$prof" | grep -q '{"family":"vsock","family_nr":40,"sock_type":1,"protocol":0,"count":1}'; then
	result record_socket_shape PASS "socket(vsock, SOCK_STREAM, 0) once, by nobody after as-user's exec; execs: $(echo "$prof" | grep -o '"execs":\[[^]]*]')"
else
	result record_socket_shape FAIL "exit $rc; $out; profile: $prof"
fi

if echo "$prof" | grep -q '"lost":{"tasks":0,"sockets":0,"execs":0,"module_requests":0}' &&
	echo "$prof" | grep -q '"execs":\[[^]]*probe'; then
	result record_nothing_lost PASS "$(echo "$prof" | grep -o '"lost":{[^}]*}')"
else
	result record_nothing_lost FAIL "profile: $prof"
fi
