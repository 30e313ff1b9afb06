# The [splice] endpoint registry (issue 5) on a real kernel, enforced by the
# BPF-LSM backend at file_permission and driven through the kgate CLI. Every
# claim is checked through syscall results of `probe` run as nobody (lab/probe.c:
# splice-alg, sendfile-alg, splice-tcp, sendfile-tcp, splice-dev, copy-fallback,
# copy-range, uring-splice, uring-tee, vmsplice, tee, splice-pipe), and
# through `kgate events`.
#
# Policies (all with [sockets] enforce allowing unix, inet/tcp, inet/udp,
# netlink/route and alg, so the AF_ALG socket itself is allowed and only the
# splice into it can be refused):
#   default  [splice] enforce, the Default preset's endpoints, no pairs
#   strict   the same endpoints with the Strict preset's pairs (no file -> pipe)
#   nopipe   [splice] enforce allowing only file:tmpfs and socket:inet/tcp
#            (no pipe at all): what still works reaches no LSM hook
#   audit    the strict policy in audit mode
# The data file lives on /tmp (tmpfs in the guest: endpoint file:tmpfs).
# results: splice_stock_works splice_alg_denied splice_tcp_bytes sendfile_tcp_bytes splice_outside_registry_denied splice_fallback_identical splice_strict_sendfile_works splice_uring_denied splice_ungated_paths splice_audit_logs splice_revert splice_hook_on_demand

# The generic 6.12 kernel runs the same fs/splice.c and BPF programs as
# cloud-6.12 and boots slowest: it runs the module scenarios only (CI time).
if [ "$KGATE_LAB_KERNEL" = generic-6.12 ]; then
	for r in $(sed -n 's/^# results: //p' /lab/scenarios/65-splice.sh); do
		result "$r" SKIP "needs:run:splice splice is tested on cloud-6.12 and cloud-6.1 (same fs/splice.c as generic-6.12)"
	done
	exit 0
fi

PIN=/sys/fs/bpf/kgate
D=/tmp/splice
SIZE=200000
F=$D/data
rm -rf $D
mkdir -p $D
chmod 1777 $D
head -c $SIZE /dev/urandom >$F
chmod 644 $F
SHA=$(sha256sum $F | cut -d' ' -f1)
URING_CHUNK=65536 # probe uring-splice moves one 64 KiB SQE

# Leave no policy of an earlier scenario in place.
kgate revert --backend bpf-lsm >/dev/null 2>&1

# io_uring may be disabled by default (kernel.io_uring_disabled, 6.6+).
URING_NOTE=
URING_OLD=
if as_nobody probe uring-tee 2>&1 | grep -q 'step=setup errno=EPERM' && [ -w /proc/sys/kernel/io_uring_disabled ]; then
	URING_OLD=$(cat /proc/sys/kernel/io_uring_disabled)
	sysctl -w kernel.io_uring_disabled=0 >/dev/null 2>&1 || echo 0 >/proc/sys/kernel/io_uring_disabled
	URING_NOTE="io_uring was disabled (kernel.io_uring_disabled=$URING_OLD), set to 0 for this scenario; "
fi

# /dev/zero has no splice_read on older kernels (6.1: EINVAL with no policy
# at all); there its expected answer is that EINVAL, whatever the policy.
ZERO_OK="ok bytes=4096"
ZERO_NOTE=
r=$(probe splice-dev /dev/zero 2>&1)
if [ "$r" = "step=splice errno=EINVAL" ]; then
	ZERO_OK=$r
	ZERO_NOTE="/dev/zero cannot splice on this kernel (root, no policy: $r); "
fi

# field LINE NAME: the value of NAME=... in a probe output line.
field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# tcp_good LINE: splice-tcp/sendfile-tcp moved the whole file, intact.
tcp_good() {
	case $1 in ok\ *) ;; *) return 1 ;; esac
	_s=$(field "$1" sum)
	[ "$(field "$1" bytes)" = $SIZE ] && [ "$(field "$1" file_bytes)" = $SIZE ] &&
		[ -n "$_s" ] && [ "$_s" = "$(field "$1" file_sum)" ]
}

NAMES="alg salg tcp sendfile urandom zero copy range uring utee vmsplice tee spipe"

# run_all TAG: every probe as nobody; outputs in r_NAME, copies in $D/*-TAG.
run_all() {
	rm -f "$D/copy-$1" "$D/range-$1"
	r_alg=$(as_nobody probe splice-alg $F 2>&1)
	r_salg=$(as_nobody probe sendfile-alg $F 2>&1)
	r_tcp=$(as_nobody probe splice-tcp $F 2>&1)
	r_sendfile=$(as_nobody probe sendfile-tcp $F 2>&1)
	r_urandom=$(as_nobody probe splice-dev /dev/urandom 2>&1)
	r_zero=$(as_nobody probe splice-dev /dev/zero 2>&1)
	r_copy=$(as_nobody probe copy-fallback $F "$D/copy-$1" 2>&1)
	r_range=$(as_nobody probe copy-range $F "$D/range-$1" 2>&1)
	r_uring=$(as_nobody probe uring-splice $F 2>&1)
	r_utee=$(as_nobody probe uring-tee 2>&1)
	r_vmsplice=$(as_nobody probe vmsplice 2>&1)
	r_tee=$(as_nobody probe tee 2>&1)
	r_spipe=$(as_nobody probe splice-pipe 2>&1)
}

# show: every r_NAME, for result details.
show() {
	for _n in $NAMES; do
		eval "_v=\$r_$_n"
		printf '%s=[%s] ' "$_n" "$_v"
	done
}

# all_good TAG: every probe of run_all TAG succeeded (/dev/zero: $ZERO_OK)
# and moved the right bytes (TCP sums, copies equal to the file, AF_ALG
# digest = sha256sum).
# Prints what was wrong.
all_good() {
	_bad=
	for _n in $NAMES; do
		eval "_v=\$r_$_n"
		[ $_n = zero ] && continue
		case $_v in ok*) ;; *) _bad="$_bad $_n" ;; esac
	done
	[ "$r_zero" = "$ZERO_OK" ] || _bad="$_bad zero"
	tcp_good "$r_tcp" || _bad="$_bad tcp-bytes"
	tcp_good "$r_sendfile" || _bad="$_bad sendfile-bytes"
	cmp -s $F "$D/copy-$1" || _bad="$_bad copy-differs"
	cmp -s $F "$D/range-$1" || _bad="$_bad range-differs"
	[ "$(field "$r_alg" sha256)" = "$SHA" ] || _bad="$_bad alg-digest"
	[ "$(field "$r_salg" sha256)" = "$SHA" ] || _bad="$_bad salg-digest"
	[ "$(field "$r_uring" bytes)" = $URING_CHUNK ] || _bad="$_bad uring-bytes"
	echo "$_bad"
	[ -z "$_bad" ]
}

DEFAULT_ALLOW='"pipe", "file:ext4", "file:xfs", "file:btrfs", "file:tmpfs", "file:vfat", "file:nfs", "file:overlay", "file:fuse", "socket:inet/tcp", "socket:inet6/tcp", "socket:inet/udp", "socket:inet6/udp", "socket:unix", "chardev:null", "chardev:zero"'
STRICT_PAIRS='"chardev:* -> file:*", "chardev:* -> pipe", "chardev:* -> socket:*", "file:* -> chardev:*", "file:* -> file:*", "file:* -> socket:*", "pipe -> chardev:*", "pipe -> file:*", "pipe -> pipe", "pipe -> socket:*", "socket:* -> file:*", "socket:* -> pipe"'

policy() { # policy FILE MODE "ALLOW" ["PAIRS"]
	{
		cat <<EOP
version = 1

[sockets]
mode = "enforce"
allow = ["unix", "inet/tcp", "inet/udp", "netlink/route", "alg"]

[splice]
mode = "$2"
allow = [$3]
EOP
		[ -z "$4" ] || echo "pairs = [$4]"
	} >"$1"
}
policy $D/default.toml enforce "$DEFAULT_ALLOW"
policy $D/strict.toml enforce "$DEFAULT_ALLOW" "$STRICT_PAIRS"
policy $D/nopipe.toml enforce '"file:tmpfs", "socket:inet/tcp"'
policy $D/audit.toml audit "$DEFAULT_ALLOW" "$STRICT_PAIRS"

# apply NAME: apply $D/NAME.toml and empty the event log; prints kgate's
# output, returns its status.
apply() {
	_out=$(kgate apply $D/$1.toml --backend bpf-lsm 2>&1)
	_rc=$?
	echo "$_out" | head -3 | tr '\n' ' '
	kgate events >/dev/null 2>&1
	return $_rc
}

# deny_events WORD: the splice deny events of nobody that mention WORD.
deny_events() {
	echo "$EV" | grep 'event deny splice' | grep 'uid=65534' | grep -- "$1"
}

# --- stock: nothing applied ------------------------------------------------------
run_all stock
if bad=$(all_good stock); then
	result splice_stock_works PASS "${URING_NOTE}${ZERO_NOTE}as nobody, no policy: $(show)"
else
	result splice_stock_works FAIL "${URING_NOTE}${ZERO_NOTE}wrong:$bad; $(show)"
fi
STOCK_ALG=$r_alg
STOCK_SALG=$r_salg

# --- the splice programs only when [splice] is on -------------------------------------
# file_permission runs on every read and write: a policy with [splice]
# off attaches no splice program; re-applying one with [splice] on adds
# them to the running enforcement (and the default results below run on
# programs attached that way).
policy $D/off.toml off '"pipe"'
o1=$(apply off)
off_pins=$(ls $PIN | tr '\n' ' ')
o2=$(apply default)
on_pins=$(ls $PIN | tr '\n' ' ')
case "$off_pins" in *link_splice*) off_has=1 ;; *) off_has= ;; esac
case "$on_pins" in *link_splice*) on_has=1 ;; *) on_has= ;; esac
if [ -z "$off_has" ] && [ -n "$on_has" ] && echo "$o2" | grep -q 'attached_now=false'; then
	result splice_hook_on_demand PASS "[splice] off: no splice program ($off_pins); re-apply with [splice] enforce: $on_pins"
else
	result splice_hook_on_demand FAIL "off: $o1 pins: $off_pins; default: $o2 pins: $on_pins"
fi

# --- default endpoints, enforce ------------------------------------------------------
if out=$(apply default); then
	run_all default
	EV=$(kgate events 2>&1)
	if [ "$(field "$STOCK_ALG" sha256)" != "$SHA" ]; then
		result splice_alg_denied SKIP "needs:af_alg_sha256 AF_ALG sha256 does not work here even without a policy: $STOCK_ALG"
	elif [ "$r_alg" = "step=pipe-to-alg errno=EINVAL" ] && [ -n "$(deny_events 'splice pipe -> socket:alg')" ] &&
		[ "$r_salg" = "step=sendfile errno=EINVAL" ] && [ -n "$(deny_events 'sendfile file:tmpfs -> socket:alg')" ]; then
		result splice_alg_denied PASS "as nobody: socket/bind/accept AF_ALG and splice(file -> pipe) ok, splice(pipe -> alg) -> $r_alg (stock: $STOCK_ALG); $(deny_events 'splice pipe -> socket:alg' | head -1); sendfile(alg, file) -> $r_salg (stock: $STOCK_SALG); $(deny_events 'sendfile file:tmpfs -> socket:alg' | head -1)"
	else
		result splice_alg_denied FAIL "as nobody: splice-alg -> $r_alg (want step=pipe-to-alg errno=EINVAL and a deny event); sendfile-alg -> $r_salg (want step=sendfile errno=EINVAL and a deny event); events: $EV"
	fi

	if tcp_good "$r_tcp"; then
		result splice_tcp_bytes PASS "as nobody, default endpoints enforced: splice file:tmpfs -> pipe -> socket:inet/tcp: $r_tcp"
	else
		result splice_tcp_bytes FAIL "as nobody: splice-tcp -> $r_tcp (want ok bytes=$SIZE, sum = file_sum)"
	fi
	if tcp_good "$r_sendfile"; then
		result sendfile_tcp_bytes PASS "as nobody, default endpoints enforced: sendfile file:tmpfs -> socket:inet/tcp: $r_sendfile"
	else
		result sendfile_tcp_bytes FAIL "as nobody: sendfile-tcp -> $r_sendfile (want ok bytes=$SIZE, sum = file_sum)"
	fi

	# Controls: /dev/zero (allowed) answers as without a policy, and
	# splice(file:tmpfs -> pipe) of the same probe works.
	r_file=$(as_nobody probe splice-dev $F 2>&1)
	if [ "$r_urandom" = "step=splice errno=EINVAL" ] && [ "$r_zero" = "$ZERO_OK" ] && [ "$r_file" = "ok bytes=4096" ] &&
		[ -n "$(deny_events urandom)" ]; then
		result splice_outside_registry_denied PASS "${ZERO_NOTE}as nobody: splice(/dev/urandom -> pipe) -> $r_urandom (chardev:urandom not allowed), splice(/dev/zero -> pipe) -> $r_zero (chardev:zero allowed), splice(file:tmpfs -> pipe) -> $r_file; $(deny_events urandom | head -1)"
	else
		result splice_outside_registry_denied FAIL "${ZERO_NOTE}as nobody: urandom -> $r_urandom (want step=splice errno=EINVAL and a deny event), zero -> $r_zero (want $ZERO_OK), file -> $r_file (want ok bytes=4096); events: $EV"
	fi
	R_URING_DEFAULT=$r_uring
else
	for r in splice_alg_denied splice_tcp_bytes sendfile_tcp_bytes splice_outside_registry_denied; do
		result $r FAIL "kgate apply (default endpoints) failed: $out"
	done
	R_URING_DEFAULT="(apply failed)"
fi

# --- strict pairs: no file -> pipe ------------------------------------------------------
if out=$(apply strict); then
	rm -f $D/copy-strict $D/range-strict
	r_copy=$(as_nobody probe copy-fallback $F $D/copy-strict 2>&1)
	r_sendfile=$(as_nobody probe sendfile-tcp $F 2>&1)
	r_range=$(as_nobody probe copy-range $F $D/range-strict 2>&1)
	r_tcp=$(as_nobody probe splice-tcp $F 2>&1)
	r_uring=$(as_nobody probe uring-splice $F 2>&1)
	EV=$(kgate events 2>&1)
	if echo "$r_copy" | grep -q "^ok bytes=$SIZE method=fallback fallback_at=file-to-pipe:EINVAL" && cmp -s $F $D/copy-strict; then
		result splice_fallback_identical PASS "as nobody, strict pairs: copy-fallback -> $r_copy; output identical to the input (cmp, $SIZE bytes); $(deny_events pipe | head -1)"
	else
		result splice_fallback_identical FAIL "as nobody, strict pairs: copy-fallback -> $r_copy (want method=fallback fallback_at=file-to-pipe:EINVAL); cmp: $(cmp $F $D/copy-strict 2>&1); events: $EV"
	fi
	# Strict keeps sendfile(file -> socket) and copy_file_range(file -> file),
	# and really refuses file -> pipe (splice-tcp's first step).
	if tcp_good "$r_sendfile" && [ "$r_range" = "ok bytes=$SIZE" ] && cmp -s $F $D/range-strict &&
		[ "$r_tcp" = "step=file-to-pipe errno=EINVAL" ]; then
		result splice_strict_sendfile_works PASS "as nobody, strict pairs: sendfile-tcp -> $r_sendfile; copy-range -> $r_range (identical); splice-tcp -> $r_tcp"
	else
		result splice_strict_sendfile_works FAIL "as nobody, strict pairs: sendfile-tcp -> $r_sendfile (want ok, sum = file_sum); copy-range -> $r_range (want ok bytes=$SIZE, identical); splice-tcp -> $r_tcp (want step=file-to-pipe errno=EINVAL)"
	fi
	if [ "$r_uring" = "step=uring-splice errno=EINVAL" ] && [ "$R_URING_DEFAULT" = "ok bytes=$URING_CHUNK res=$URING_CHUNK" ]; then
		result splice_uring_denied PASS "${URING_NOTE}as nobody, IORING_OP_SPLICE file:tmpfs -> pipe: strict pairs -> $r_uring; default endpoints -> $R_URING_DEFAULT"
	else
		result splice_uring_denied FAIL "${URING_NOTE}as nobody, IORING_OP_SPLICE: strict -> $r_uring (want step=uring-splice errno=EINVAL); default -> $R_URING_DEFAULT (want ok bytes=$URING_CHUNK); events: $EV"
	fi
else
	for r in splice_fallback_identical splice_strict_sendfile_works splice_uring_denied; do
		result $r FAIL "kgate apply (strict pairs) failed: $out"
	done
fi

# --- no pipe endpoint at all: what still works reaches no hook -------------------------
if out=$(apply nopipe); then
	r_file=$(as_nobody probe splice-dev $F 2>&1)
	r_vmsplice=$(as_nobody probe vmsplice 2>&1)
	r_tee=$(as_nobody probe tee 2>&1)
	r_spipe=$(as_nobody probe splice-pipe 2>&1)
	r_utee=$(as_nobody probe uring-tee 2>&1)
	# Where the kernel has error injection, kgate's fmod_ret gates
	# (66-splice_syscalls) deny tee and vmsplice here; pipe -> pipe splice
	# and IORING_OP_TEE stay ungated everywhere.
	if [ -e $PIN/link_tee ] && [ -e $PIN/link_vmsplice ]; then
		want_vms="step=vmsplice errno=EINVAL"
		want_tee="step=tee errno=EINVAL"
		how="tee and vmsplice denied by kgate's fmod_ret gates (error injection here)"
	else
		want_vms="ok bytes=4096"
		want_tee="ok bytes=4096"
		how="vmsplice and tee not gated either (no error injection here)"
	fi
	if [ "$r_file" = "step=splice errno=EINVAL" ] && [ "$r_vmsplice" = "$want_vms" ] && [ "$r_tee" = "$want_tee" ] &&
		[ "$r_spipe" = "ok bytes=4096" ] && [ "$r_utee" = "ok bytes=5 res=5" ]; then
		result splice_ungated_paths PASS "NOT GATED by BPF-LSM: with pipe absent from splice.allow (enforce), splice(file -> pipe) -> $r_file, yet splice(pipe -> pipe) -> $r_spipe, IORING_OP_TEE -> $r_utee: pipe-only transfers call no file_permission (no LSM hook); $how: vmsplice -> $r_vmsplice, tee -> $r_tee; kgate's answer for the rest is seccomp (kgate run, exported profiles)"
	else
		result splice_ungated_paths FAIL "pipe not allowed (enforce): file -> pipe -> $r_file (want step=splice errno=EINVAL: enforcement live); vmsplice -> $r_vmsplice (want $want_vms), tee -> $r_tee (want $want_tee), pipe -> pipe -> $r_spipe, io_uring tee -> $r_utee (both expected ok: no LSM hook)"
	fi
else
	result splice_ungated_paths FAIL "kgate apply (no pipe endpoint) failed: $out"
fi

# --- audit: strict pairs, nothing denied, everything logged -------------------------------
if out=$(apply audit); then
	run_all audit
	EV=$(kgate events 2>&1)
	n=$(echo "$EV" | grep -c 'event audit splice')
	if bad=$(all_good audit) && ! echo "$EV" | grep -q 'event deny' &&
		echo "$EV" | grep 'event audit splice' | grep -q alg &&
		echo "$EV" | grep 'event audit splice' | grep -q chardev &&
		echo "$EV" | grep 'event audit splice' | grep -q pipe; then
		result splice_audit_logs PASS "as nobody, strict pairs in audit mode: every probe ok; $n audit events, e.g. $(echo "$EV" | grep 'event audit splice' | grep alg | head -1); $(echo "$EV" | grep 'event audit splice' | grep chardev | head -1)"
	else
		result splice_audit_logs FAIL "audit mode: wrong:$bad; $(show); events: $EV"
	fi
else
	result splice_audit_logs FAIL "kgate apply (audit) failed: $out"
fi

# --- revert --------------------------------------------------------------------------------
out=$(kgate revert --backend bpf-lsm 2>&1)
rc=$?
run_all revert
if bad=$(all_good revert) && [ $rc = 0 ] && [ ! -e $PIN ]; then
	result splice_revert PASS "$(echo "$out" | head -1); as nobody: every probe ok again: $(show)"
else
	result splice_revert FAIL "rc=$rc; $out; pins: $(ls $PIN 2>&1); wrong:$bad; $(show)"
fi

if [ -n "$URING_OLD" ]; then
	echo "$URING_OLD" >/proc/sys/kernel/io_uring_disabled
fi
