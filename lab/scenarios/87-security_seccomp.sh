# Issue 13, item 6: the per-workload seccomp filter (`kgate run`, the
# exports) holds against what it claims to restrict.
#
# security_seccomp_socketpair: socketpair(2) creates the family's sockets,
# and so autoloads the family's module, before the family refuses a pair
# (vsock has no socketpair: EOPNOTSUPP, after vsock is loaded). On the
# stock kernel, nobody's socketpair(AF_VSOCK) loads vsock. Under `kgate
# run` with a policy whose [seccomp] sockets are unix and inet only,
# socketpair(AF_VSOCK) must fail with EAFNOSUPPORT (what socket(2) of a
# denied family gets) and leave vsock unloaded, while socketpair(AF_UNIX)
# works, under that hand-written policy and under one generated from a
# recording of socketpair(AF_UNIX) (the recorder must see its family).
#
# security_seccomp_io_uring: io_uring's IORING_OP_SOCKET, IORING_OP_SPLICE
# and IORING_OP_TEE run in the kernel without any syscall seccomp sees.
# `kgate policy generate` from a recording of a workload that does not use
# io_uring must deny io_uring_setup (and io_uring_setup fails under `kgate
# run` of that policy); from a recording of one that does (probe
# uring-tee), it must warn that those operations bypass the filter, in
# text and in JSON. `kgate run` and `kgate export` of a hand-written
# policy that allows io_uring_setup while restricting socket families must
# warn the same way.
# results: security_seccomp_socketpair security_seccomp_io_uring

D=/tmp/security-seccomp
rm -rf $D
mkdir -p $D
chmod 755 $D
# Earlier scenarios revert their host-wide policies; make sure no BPF-LSM
# policy decides vsock here, so only the seccomp filter is measured.
kgate revert --backend bpf-lsm >/dev/null 2>&1


# What static glibc's start-up, probe and kgate run's exec need, plus
# socket and socketpair; families unix (1) and inet (2) only.
cat >$D/p.toml <<'EOP'
version = 1

[seccomp]
mode = "enforce"
allow = ["arch_prctl", "brk", "close", "execve", "exit", "exit_group", "fstat", "getrandom", "ioctl", "mmap", "mprotect", "munmap", "newfstatat", "prlimit64", "readlink", "readlinkat", "rseq", "rt_sigreturn", "set_robust_list", "set_tid_address", "socket", "socketpair", "uname", "write"]
sockets = ["unix", "inet"]
EOP
# The same with io_uring allowed: run and export must warn.
sed 's/"write"\]/"write", "io_uring_setup", "io_uring_enter"]/' $D/p.toml >$D/uring-hand.toml
chmod 644 $D/*.toml

# --- socketpair ---------------------------------------------------------------------------
socketpair_check() {
	if ! has_modules; then
		result security_seccomp_socketpair SKIP "$NO_MODULES"
		return
	fi
	if builtin vsock; then
		result security_seccomp_socketpair SKIP "needs:module:vsock vsock is built into $KGATE_LAB_KERNEL"
		return
	fi
	unload_tree vsock
	if loaded vsock; then
		result security_seccomp_socketpair FAIL "vsock is loaded and cannot be unloaded: $(grep vsock /proc/modules)"
		return
	fi
	# The attack on the stock kernel: nobody, no kgate.
	stock=$(as_nobody probe socketpair 40 1 0 2>&1)
	if ! loaded vsock; then
		result security_seccomp_socketpair FAIL "stock: socketpair(AF_VSOCK) as nobody -> $stock but vsock did not load: nothing to prove"
		return
	fi
	stock_mods=$(grep vsock /proc/modules | cut -d' ' -f1 | tr '\n' ' ')
	unload_tree vsock
	if loaded vsock; then
		result security_seccomp_socketpair FAIL "stock loaded vsock ($stock) and it cannot be unloaded: $(grep vsock /proc/modules)"
		return
	fi
	denied=$(as_nobody kgate run --policy $D/p.toml -- probe socketpair 40 1 0 2>&1)
	denied_loaded=no
	loaded vsock && denied_loaded="yes ($(grep vsock /proc/modules | cut -d' ' -f1 | tr '\n' ' '))"
	sock=$(as_nobody kgate run --policy $D/p.toml -- probe socket 40 1 0 2>&1)
	unix=$(as_nobody kgate run --policy $D/p.toml -- probe socketpair 1 1 0 2>&1)
	# A policy generated from a recording of socketpair(AF_UNIX) alone.
	kgate record -o $D/pair.json -- probe as-user 65534 65534 -- probe socketpair 1 1 0 >$D/pair.rec 2>&1
	kgate policy generate --from $D/pair.json -o $D/pair.toml >/dev/null 2>$D/pair.gen
	chmod 644 $D/pair.toml 2>/dev/null
	gen=$(as_nobody kgate run --policy $D/pair.toml -- probe socketpair 1 1 0 2>&1)
	gen_vsock=$(as_nobody kgate run --policy $D/pair.toml -- probe socketpair 40 1 0 2>&1)
	loaded vsock && denied_loaded="$denied_loaded; after the generated policy: yes"
	detail="stock: socketpair(AF_VSOCK) as nobody -> $stock, loaded $stock_mods (unloaded again); kgate run (sockets unix, inet): socketpair(AF_VSOCK) -> $denied, vsock loaded: $denied_loaded; socket(AF_VSOCK) -> $sock; socketpair(AF_UNIX) -> $unix; generated from a recording of socketpair(AF_UNIX): $(sed -n '/^sockets/,/]/p' $D/pair.toml | tr -d '\n'), socketpair(AF_UNIX) -> $gen, socketpair(AF_VSOCK) -> $gen_vsock"
	if [ "$denied" = "errno=EAFNOSUPPORT" ] && [ "$denied_loaded" = no ] &&
		[ "$sock" = "errno=EAFNOSUPPORT" ] && [ "$unix" = ok ] &&
		[ "$gen" = ok ] && [ "$gen_vsock" = "errno=EAFNOSUPPORT" ]; then
		result security_seccomp_socketpair PASS "$detail"
	else
		result security_seccomp_socketpair FAIL "$detail; record: $(cat $D/pair.rec); generate: $(cat $D/pair.gen)"
	fi
}
socketpair_check

# --- io_uring -----------------------------------------------------------------------------
io_uring_check() {
	# A workload without io_uring, and one with it (IORING_OP_TEE). The
	# recorder counts syscall entries, so io_uring_setup is recorded even
	# where kernel.io_uring_disabled makes it fail.
	kgate record -o $D/plain.json -- probe socketpair 1 1 0 >$D/plain.rec 2>&1
	kgate policy generate --from $D/plain.json -o $D/plain.toml >/dev/null 2>$D/plain.gen
	chmod 644 $D/plain.toml 2>/dev/null
	kgate record -o $D/uring.json -- probe uring-tee >$D/uring.rec 2>&1
	kgate policy generate --from $D/uring.json -o $D/uring.toml >/dev/null 2>$D/uring.gen
	kgate policy generate --from $D/uring.json --format json >$D/uring-gen.json 2>&1
	plain_denies=no
	[ -s $D/plain.toml ] && ! grep -q io_uring $D/plain.toml && plain_denies=yes
	plain_run=$(as_nobody kgate run --policy $D/plain.toml -- probe uring-tee 2>&1)
	plain_warn=$(grep -c IORING_OP $D/plain.gen)
	uring_allows=no
	grep -q '"io_uring_setup"' $D/uring.toml && uring_allows=yes
	# Every bypassing op named in the text report and in the JSON warnings.
	text_warn=yes
	json_warn=yes
	json=$(tr -d '\n' <$D/uring-gen.json | sed -n 's/.*"warnings": *\[\([^]]*\)\].*/\1/p')
	for op in IORING_OP_SOCKET IORING_OP_SPLICE IORING_OP_TEE; do
		grep '^kgate: warning: ' $D/uring.gen | grep -q $op || text_warn=no
		echo "$json" | grep -q $op || json_warn=no
	done
	# Hand-written: io_uring allowed, families restricted.
	run_warn=$(kgate run --dry-run --policy $D/uring-hand.toml -- probe uring-tee 2>&1 >/dev/null)
	export_warn=$(kgate export --format docker --policy $D/uring-hand.toml 2>&1 >/dev/null)
	hand=yes
	echo "$run_warn" | grep -q IORING_OP_SOCKET || hand=no
	echo "$export_warn" | grep -q IORING_OP_SOCKET || hand=no
	detail="io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null); without io_uring: policy denies io_uring_setup: $plain_denies, io_uring warnings: $plain_warn, uring-tee under kgate run -> $plain_run; with io_uring: policy allows io_uring_setup: $uring_allows, text warning names SOCKET/SPLICE/TEE: $text_warn, JSON: $json_warn ($(grep '^kgate: warning: .*IORING_OP' $D/uring.gen | head -1)); hand-written policy: run and export warn: $hand"
	if [ $plain_denies = yes ] && [ "$plain_warn" = 0 ] &&
		[ "$plain_run" = "step=setup errno=EPERM" ] && [ $uring_allows = yes ] &&
		[ $text_warn = yes ] && [ $json_warn = yes ] && [ $hand = yes ]; then
		result security_seccomp_io_uring PASS "$detail"
	else
		result security_seccomp_io_uring FAIL "$detail; run: $run_warn; export: $export_warn; plain record: $(cat $D/plain.rec); uring record: $(cat $D/uring.rec); plain generate: $(cat $D/plain.gen); uring generate: $(cat $D/uring.gen)"
	fi
}
io_uring_check
