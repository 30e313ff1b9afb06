# What the running kernel offers kgate's BPF backends, read from the kernel
# itself: BPF-LSM active (/sys/kernel/security/lsm), BTF
# (/sys/kernel/btf/vmlinux: CO-RE and BPF trampolines need it), and function
# error injection (/sys/kernel/debug/error_injection/list, where every
# syscall is listed through ALLOW_ERROR_INJECTION: what a BPF fmod_ret
# program on a syscall, e.g. fmod_ret/__x64_sys_vmsplice, needs). Debian's
# kernels are built without CONFIG_FUNCTION_ERROR_INJECTION: there that
# result is a SKIP (needs:function_error_injection, declared in their
# manifests); fei-6.12 is built for it and fails without it.
# results: kernel_bpf_lsm_active kernel_btf_vmlinux kernel_error_injection_syscalls

lsm=$(cat /sys/kernel/security/lsm 2>&1)
case ",$lsm," in
*,bpf,*) result kernel_bpf_lsm_active PASS "/sys/kernel/security/lsm: $lsm" ;;
*) result kernel_bpf_lsm_active FAIL "bpf is not an active LSM: /sys/kernel/security/lsm: $lsm; cmdline: $(cat /proc/cmdline)" ;;
esac

B=/sys/kernel/btf/vmlinux
magic=$(head -c 2 $B 2>/dev/null | od -An -tx1 | tr -d ' \n')
if [ "$magic" = 9feb ]; then
	result kernel_btf_vmlinux PASS "$B: $(wc -c <$B) bytes, magic 0xeb9f"
else
	result kernel_btf_vmlinux FAIL "$B: $(ls -l $B 2>&1); magic [$magic]"
fi

L=/sys/kernel/debug/error_injection/list
if [ -e $L ]; then
	# "__x64_sys_vmsplice<TAB>ERRNO": the syscall may be made to fail with an errno.
	n=$(wc -l <$L)
	lines=
	missing=
	for f in __x64_sys_vmsplice __x64_sys_splice __x64_sys_tee; do
		l=$(grep "^$f[[:space:]]" $L | tr '\t' ' ')
		if [ -n "$l" ]; then lines="$lines [$l]"; else missing="$missing $f"; fi
	done
	if [ -z "$missing" ] && echo "$lines" | grep -q '__x64_sys_vmsplice ERRNO'; then
		result kernel_error_injection_syscalls PASS "$L: $n functions, among them$lines"
	else
		result kernel_error_injection_syscalls FAIL "$L: $n functions, missing:$missing; found:$lines; $(head -5 $L | tr '\t\n' ' ;')"
	fi
elif [ "$KGATE_LAB_KERNEL" = fei-6.12 ]; then
	result kernel_error_injection_syscalls FAIL "no $L on fei-6.12, built for it: $(ls /sys/kernel/debug 2>&1 | tr '\n' ' '); config: $(zcat /proc/config.gz 2>/dev/null | grep -E 'FUNCTION_ERROR_INJECTION|CONFIG_DEBUG_FS=')"
else
	result kernel_error_injection_syscalls SKIP "needs:function_error_injection no $L: $KGATE_LAB_KERNEL is built without CONFIG_FUNCTION_ERROR_INJECTION (as every Debian kernel), so no fmod_ret on syscalls"
fi
