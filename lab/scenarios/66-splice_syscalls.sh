# tee(2) and vmsplice(2) reach no LSM hook (issue 5, item 3). Where the
# kernel lets BPF fail a syscall (CONFIG_FUNCTION_ERROR_INJECTION: the
# fei-6.12 lab kernel), `kgate apply` with [splice] on attaches fmod_ret
# programs on their 64-bit and ia32 entries, judged by the registry: tee
# is pipe -> pipe, vmsplice memory -> pipe and pipe -> memory (both must
# be allowed). Where it does not (Debian's kernels), apply must leave them
# out, work all the same, and `kgate status` must say these paths are not
# gated and why. Probes as nobody (lab/probe.c): vmsplice (memory -> pipe),
# vmsplice-read (pipe -> memory), tee, and vmsplice32/tee32 (the ia32
# entries, by int 0x80 from a 64-bit process).
#
# Policies ([splice] enforce unless noted):
#   default  the Default preset (memory and pipe allowed, no pairs): all pass
#   strict   the Strict preset: pipe -> pipe allowed, nothing with memory
#   nopipe   only file:tmpfs and socket:inet/tcp: tee and vmsplice denied
#   audit    strict in audit mode: nothing denied, vmsplice reported
# results: splice_syscall_gates splice_syscall_default_allows splice_syscall_vmsplice_denied splice_syscall_tee_denied splice_syscall_audit splice_syscall_revert

D=/tmp/splice-syscalls
rm -rf $D
mkdir -p $D
PIN=/sys/fs/bpf/kgate
kgate revert --backend bpf-lsm >/dev/null 2>&1

policy() { # policy NAME MODE BODY
	cat >$D/$1.toml <<EOP
version = 1

[splice]
mode = "$2"
$3
EOP
}
policy default enforce 'preset = "default"'
policy strict enforce 'preset = "strict"'
policy nopipe enforce 'allow = ["file:tmpfs", "socket:inet/tcp"]'
policy audit audit 'preset = "strict"'

CALLS="vmsplice vmsplice-read vmsplice32 tee tee32"
# run_calls: every probe as nobody, "name=[output] ..."
run_calls() {
	for c in $CALLS; do
		printf '%s=[%s] ' "$c" "$(as_nobody probe $c 2>&1)"
	done
}
# outcome OUTPUT CALL: the probe's line for CALL in run_calls output.
outcome() {
	echo "$1" | sed -n "s/.*$2=\[\([^]]*\)\].*/\1/p"
}
stock=$(run_calls)

apply() {
	_out=$(kgate apply $D/$1.toml --backend bpf-lsm 2>&1)
	_rc=$?
	kgate events >/dev/null 2>&1
	echo "$_out" | head -2 | tr '\n' ' '
	return $_rc
}

GATES="link_vmsplice link_tee link_vmsplice32 link_tee32"
out=$(apply default)
rc=$?
pins=$(ls $PIN 2>/dev/null | tr '\n' ' ')
status=$(kgate status 2>&1)
have=
for g in $GATES; do
	case " $pins " in *" $g "*) have="$have $g" ;; esac
done
if [ -r /sys/kernel/debug/error_injection/list ] && grep -q '^__x64_sys_vmsplice' /sys/kernel/debug/error_injection/list; then
	FEI=1
else
	FEI=
fi
tee_line=$(echo "$status" | grep -A3 '^  tee(2) ' | tr '\n' ' ')
vms_line=$(echo "$status" | grep -A3 '^  vmsplice(2) ' | tr '\n' ' ')
if [ $rc -ne 0 ]; then
	result splice_syscall_gates FAIL "kgate apply default failed: $out"
elif [ -n "$FEI" ]; then
	if [ "$have" = " $GATES" ] && echo "$tee_line" | grep -q 'GATED' && echo "$vms_line" | grep -q 'GATED'; then
		result splice_syscall_gates PASS "error injection on: apply attached$have; status: $tee_line | $vms_line"
	else
		result splice_syscall_gates FAIL "error injection on (debugfs list has __x64_sys_vmsplice), but pins: $pins; status: $tee_line | $vms_line"
	fi
else
	if [ -z "$have" ] && echo "$pins" | grep -q link_splice &&
		echo "$tee_line" | grep -q 'not gated' && echo "$tee_line" | grep -q 'fmod_ret *unavailable' &&
		echo "$vms_line" | grep -q 'not gated' && echo "$vms_line" | grep -q 'fmod_ret *unavailable'; then
		result splice_syscall_gates PASS "no error injection here: apply attached the registry (link_splice) and no syscall gate; status: $tee_line | $vms_line"
	else
		result splice_syscall_gates FAIL "no error injection: want link_splice and no syscall gate, status 'not gated' with fmod_ret unavailable; pins: $pins; status: $tee_line | $vms_line"
	fi
fi

if [ -z "$FEI" ]; then
	for r in splice_syscall_default_allows splice_syscall_vmsplice_denied splice_syscall_tee_denied splice_syscall_audit splice_syscall_revert; do
		result $r SKIP "needs:function_error_injection no CONFIG_FUNCTION_ERROR_INJECTION on $KGATE_LAB_KERNEL: tee and vmsplice cannot be gated host-wide (the fei-6.12 lab kernel tests it)"
	done
	kgate revert --backend bpf-lsm >/dev/null 2>&1
	exit 0
fi

# counter VERDICT HOOK: a hook's counter from `kgate status`.
counter() {
	kgate status 2>/dev/null | awk -v h="$2" -v v="$1=" '$1 == "hook" && $2 == h {
		for (i = 3; i <= NF; i++) if (index($i, v) == 1) print substr($i, length(v) + 1) }'
}

all_ok() { # all_ok RUN: every call of RUN succeeded
	for c in $CALLS; do
		case $(outcome "$1" $c) in ok*) ;; *) return 1 ;; esac
	done
}

# --- default: everything passes, counted as allowed ---------------------------
r=$(run_calls)
allows=$(counter allow fmod_ret/__x64_sys_vmsplice)
if all_ok "$r" && [ "${allows:-0}" -ge 2 ]; then
	result splice_syscall_default_allows PASS "as nobody, default preset (memory, pipe allowed): $r; fmod_ret/__x64_sys_vmsplice allow=$allows"
else
	result splice_syscall_default_allows FAIL "as nobody, default preset: $r (want all ok); fmod_ret/__x64_sys_vmsplice allow=$allows (want >= 2); stock: $stock"
fi

# --- strict: vmsplice denied both ways and from ia32; tee passes -----------------
if out=$(apply strict); then
	r=$(run_calls)
	EV=$(kgate events 2>&1)
	want="step=vmsplice errno=EINVAL"
	if [ "$(outcome "$r" vmsplice)" = "$want" ] && [ "$(outcome "$r" vmsplice-read)" = "step=vmsplice-read errno=EINVAL" ] &&
		[ "$(outcome "$r" vmsplice32)" = "step=vmsplice32 errno=EINVAL" ] &&
		[ "$(outcome "$r" tee)" = "ok bytes=4096" ] && [ "$(outcome "$r" tee32)" = "ok bytes=1" ] &&
		echo "$EV" | grep 'event deny' | grep -q 'vmsplice memory -> pipe' &&
		echo "$EV" | grep 'event deny' | grep -q 'vmsplice pipe -> memory'; then
		result splice_syscall_vmsplice_denied PASS "as nobody, strict: $r; $(echo "$EV" | grep 'event deny' | grep vmsplice | head -2 | tr '\n' ' ')"
	else
		result splice_syscall_vmsplice_denied FAIL "as nobody, strict: $r (want the three vmsplice EINVAL, tee/tee32 ok, deny events both ways); events: $EV"
	fi
else
	result splice_syscall_vmsplice_denied FAIL "kgate apply strict: $out"
fi

# --- nopipe: tee denied too --------------------------------------------------------
if out=$(apply nopipe); then
	r=$(run_calls)
	EV=$(kgate events 2>&1)
	if [ "$(outcome "$r" tee)" = "step=tee errno=EINVAL" ] && [ "$(outcome "$r" tee32)" = "step=tee32 errno=EINVAL" ] &&
		echo "$EV" | grep 'event deny' | grep -q 'tee pipe -> pipe'; then
		result splice_syscall_tee_denied PASS "as nobody, pipe not allowed: $r; $(echo "$EV" | grep 'event deny' | grep tee | head -1)"
	else
		result splice_syscall_tee_denied FAIL "as nobody, pipe not allowed: $r (want tee and tee32 EINVAL, a deny event); events: $EV"
	fi
else
	result splice_syscall_tee_denied FAIL "kgate apply nopipe: $out"
fi

# --- audit: nothing denied, reported ------------------------------------------------
if out=$(apply audit); then
	r=$(run_calls)
	EV=$(kgate events 2>&1)
	if all_ok "$r" && echo "$EV" | grep 'event audit' | grep -q 'vmsplice' && ! echo "$EV" | grep -q 'event deny'; then
		result splice_syscall_audit PASS "as nobody, strict in audit mode: $r; $(echo "$EV" | grep 'event audit' | grep vmsplice | head -1)"
	else
		result splice_syscall_audit FAIL "as nobody, audit: $r (want all ok, audit events, no deny); events: $EV"
	fi
else
	result splice_syscall_audit FAIL "kgate apply audit: $out"
fi

# --- revert --------------------------------------------------------------------------
out=$(kgate revert --backend bpf-lsm 2>&1)
r=$(run_calls)
left=$(ls $PIN 2>/dev/null | tr '\n' ' ')
if all_ok "$r" && [ -z "$left" ]; then
	result splice_syscall_revert PASS "reverted, nothing pinned; as nobody: $r"
else
	result splice_syscall_revert FAIL "revert: $out; pinned: $left; as nobody: $r (want all ok)"
fi
