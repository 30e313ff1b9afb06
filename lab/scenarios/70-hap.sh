# kgate hap on a real kernel: the horizontal attack profile of a small
# fixed workload (busybox httpd serving a 64 KiB file to busybox wget over
# loopback), without and with a kgate policy applied (freeze + apply, the
# BPF-LSM backend where active); the global ftrace state is untouched and the
# tracefs instance goes away on normal exit, on SIGINT, and (at the next
# run) after SIGKILL.
#
# TCG note: enabling the function tracer rewrites ~50,000 call sites with
# int3-based live patching; under qemu TCG with two vCPUs that occasionally
# oopses ("Oops: int3") because the other vCPU runs stale translated code.
# Each kgate hap run therefore has CPU 1 offline. Real hardware and KVM do
# not need this.
# results: hap_workload hap_irq_noise_filtered hap_ftrace_state_restored hap_sigint_restores hap_sigkill_instance_reaped hap_stale_instance_impostor hap_with_policy

ALL="hap_workload hap_irq_noise_filtered hap_ftrace_state_restored hap_sigint_restores hap_sigkill_instance_reaped hap_stale_instance_impostor hap_with_policy"
T=/sys/kernel/tracing
CPU1=/sys/devices/system/cpu/cpu1/online

# generic-6.12 is the same 6.12 source as cloud-6.12 (ftrace is identical):
# the scenario is slow under TCG, so it runs on cloud-6.12 and cloud-6.1.
if [ "$KGATE_LAB_KERNEL" = generic-6.12 ]; then
	for r in $ALL; do result "$r" SKIP "needs:run:hap tested on cloud-6.12 (same kernel source) and cloud-6.1, to keep the lab fast"; done
	exit 0
fi
if ! grep -qw function $T/available_tracers 2>/dev/null; then
	for r in $ALL; do result "$r" FAIL "no function tracer in $T/available_tracers on $KGATE_LAB_KERNEL"; done
	exit 0
fi

one_cpu() { [ -w $CPU1 ] && echo 0 >$CPU1; }
all_cpus() { [ -w $CPU1 ] && echo 1 >$CPU1; }
# The global ftrace state kgate must not change. The buffer size is the
# effective one: "7 (expanded: 1408)" (not allocated until first use) is
# 1408; on 6.1 any instance's use marks the global buffer expanded, and
# kgate then gives it the 1408 KiB its first use would have (the kernel
# rounds to whole 4080-byte pages, so it reads 1410: compare in 16 KiB units).
ftrace_state() {
	echo "tracer=$(cat $T/current_tracer) pid=[$(tr '\n' ' ' <$T/set_ftrace_pid)] fork=$(cat $T/options/function-fork)" \
		"on=$(cat $T/tracing_on) buffer=$(($(sed 's/.*(expanded: \([0-9]*\)).*/\1/' $T/buffer_size_kb) / 16 * 16)) filter=[$(head -3 $T/set_ftrace_filter | tr '\n' ' ')]" \
		"instances=[$(ls $T/instances | tr '\n' ' ')]"
}
mark() { echo "HAP-STEP $1 uptime=$(cut -d' ' -f1 /proc/uptime)"; }
json_num() { tr -d ' \n' <"$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }

mkdir -p /tmp/www
i=0
while [ $i -lt 1024 ]; do
	echo "kgate hap lab workload line $i: 0123456789abcdefghijklmnopqrstuvwxyz"
	i=$((i + 1))
done | head -c 65536 >/tmp/www/file.txt
# The workload: httpd binds, daemonizes and serves one request to wget.
cat >/tmp/hap-workload.sh <<'EOW'
httpd -p 127.0.0.1:8080 -h /tmp/www || exit 10
wget -q -O /tmp/got.txt http://127.0.0.1:8080/file.txt || exit 11
EOW
WORKLOAD="sh /tmp/hap-workload.sh"

# --- without a policy ---------------------------------------------------------------
# One untraced run first, so neither profile pays for first-use work
# (loopback neighbour entry, page cache of busybox).
sh /tmp/hap-workload.sh
killall httpd 2>/dev/null
before=$(ftrace_state)
mark stock
rm -f /tmp/got.txt
one_cpu
# shellcheck disable=SC2086
kgate hap -o /tmp/hap-stock.json --top 8 -- $WORKLOAD >/tmp/hap-stock.txt 2>/tmp/hap-stock.err
rc=$?
all_cpus
killall httpd 2>/dev/null
after=$(ftrace_state)
hap=$(json_num /tmp/hap-stock.json hap)
if [ $rc = 0 ] && cmp -s /tmp/got.txt /tmp/www/file.txt && [ "${hap:-0}" -gt 100 ] &&
	grep -q '"schema": "kgate.hap/1"' /tmp/hap-stock.json; then
	result hap_workload PASS "kgate hap -- $WORKLOAD: $(head -12 /tmp/hap-stock.txt)"
else
	result hap_workload FAIL "rc=$rc hap=$hap got=$(wc -c </tmp/got.txt 2>&1); stderr: $(head -c 1500 /tmp/hap-stock.err); stdout: $(head -c 1500 /tmp/hap-stock.txt)"
fi

irq=$(json_num /tmp/hap-stock.json irq_context)
irq_only=$(json_num /tmp/hap-stock.json irq_only_functions)
leaked=$(grep -oE '"name": "(hrtimer_interrupt|__sysvec_apic_timer_interrupt|irq_enter_rcu|handle_softirqs|run_timer_softirq)"' /tmp/hap-stock.json | tr '\n' ' ')
if [ "${irq:-0}" -gt 0 ] && [ "${irq_only:-0}" -gt 0 ] && [ -z "$leaked" ]; then
	result hap_irq_noise_filtered PASS "$irq interrupt-context events and $irq_only irq-only functions left out; no interrupt handler in the HAP"
else
	result hap_irq_noise_filtered FAIL "irq_context=$irq irq_only_functions=$irq_only leaked: $leaked"
fi

if [ "$before" = "$after" ] && [ -z "$(ls $T/instances)" ]; then
	result hap_ftrace_state_restored PASS "global ftrace state unchanged: $after"
else
	result hap_ftrace_state_restored FAIL "before: $before; after: $after"
fi

mark signals
# --- SIGKILL leaves the instance behind; the next run removes it, and Ctrl-C
# (SIGINT to kgate) ends that run's workload, prints the profile, cleans up.
wait_tracing() { # wait_tracing PID: until kgate PID's instance is tracing
	i=0
	while [ $i -lt 300 ] && ! cat $T/instances/kgate-hap-$1*/tracing_on 2>/dev/null | grep -q 1; do
		sleep 0.1
		i=$((i + 1))
	done
}
one_cpu
kgate hap -- sleep 60 >/dev/null 2>&1 &
killed=$!
wait_tracing $killed
kill -KILL $killed
wait $killed 2>/dev/null
killall sleep 2>/dev/null
left=$(ls $T/instances | tr '\n' ' ')
# An impostor: any user can start a process called "kgate" on the killed
# kgate's pid (recycled here through ns_last_pid). It must not keep the
# stale instance alive (kgate before issue 19 went by /proc/PID/comm only).
mkdir -p /tmp/imp
printf '#!/bin/sh\nwhile :; do sleep 1; done\n' >/tmp/imp/kgate
chmod +x /tmp/imp/kgate
imp=
for _ in 1 2 3 4 5; do
	echo $((killed - 1)) >/proc/sys/kernel/ns_last_pid 2>/dev/null || break
	/tmp/imp/kgate &
	imp=$!
	[ "$imp" = "$killed" ] && break
	kill $imp 2>/dev/null
	wait $imp 2>/dev/null
	imp=
done
imp_comm=$(cat /proc/$killed/comm 2>/dev/null)
kgate hap -o /tmp/hap-int.json -- sleep 60 >/tmp/hap-int.txt 2>/tmp/hap-int.err &
kpid=$!
wait_tracing $kpid
sleep 1
kill -INT $kpid
wait $kpid
rc=$?
all_cpus
after=$(ftrace_state)
[ -n "$imp" ] && kill $imp 2>/dev/null && wait $imp 2>/dev/null
killall sleep 2>/dev/null
case "$left" in "kgate-hap-$killed "* | "kgate-hap-$killed-"*) left_ok=1 ;; *) left_ok= ;; esac
reaped=
grep -q "removed the tracefs instance kgate-hap-$killed[-se0-9]* left by a kgate that was killed" /tmp/hap-int.err && reaped=1
if [ -n "$left_ok" ] && [ "$(echo $left | wc -w)" = 1 ] && [ -n "$reaped" ]; then
	result hap_sigkill_instance_reaped PASS "left after SIGKILL: $left; next run: $(cat /tmp/hap-int.err)"
else
	result hap_sigkill_instance_reaped FAIL "left: [$left]; next run: $(head -c 1500 /tmp/hap-int.err)"
fi
if [ -z "$imp" ] && [ ! -e /proc/sys/kernel/ns_last_pid ]; then
	result hap_stale_instance_impostor SKIP "needs:ns_last_pid no /proc/sys/kernel/ns_last_pid on $KGATE_LAB_KERNEL (CONFIG_CHECKPOINT_RESTORE unset): no way to put a process on a chosen pid"
elif [ -z "$imp" ]; then
	result hap_stale_instance_impostor FAIL "could not start a process on the recycled pid $killed (ns_last_pid: $(cat /proc/sys/kernel/ns_last_pid 2>&1))"
elif [ "$imp_comm" = kgate ] && [ -n "$reaped" ]; then
	result hap_stale_instance_impostor PASS "a process called kgate ran on the killed kgate's pid $killed; its instance was still removed"
else
	result hap_stale_instance_impostor FAIL "impostor pid $imp comm [$imp_comm]; reaped=[$reaped]; next run: $(head -c 1500 /tmp/hap-int.err)"
fi
sig=$(json_num /tmp/hap-int.json exit_signal)
if [ $rc = 0 ] && [ "$sig" = 2 ] && [ "$before" = "$after" ] && ! pidof sleep >/dev/null; then
	result hap_sigint_restores PASS "SIGINT: exit 0, workload ended by signal $sig, $(head -1 /tmp/hap-int.txt); state: $after"
else
	result hap_sigint_restores FAIL "rc=$rc exit_signal=$sig; before: $before; after: $after; out: $(head -c 1500 /tmp/hap-int.txt) $(head -c 500 /tmp/hap-int.err)"
fi

mark policy
# --- with a kgate policy: freeze what is loaded now, apply, profile again ----------------
out=$(kgate freeze -o /tmp/hap-policy.toml 2>&1 && kgate apply /tmp/hap-policy.toml 2>&1)
rc=$?
if [ $rc != 0 ]; then
	result hap_with_policy FAIL "freeze/apply failed: $out"
else
	rm -f /tmp/got.txt
	one_cpu
	# shellcheck disable=SC2086
	kgate hap --baseline /tmp/hap-stock.json -o /tmp/hap-policy.json --top 8 -- $WORKLOAD >/tmp/hap-policy.txt 2>/tmp/hap-policy.err
	rc=$?
	all_cpus
	killall httpd 2>/dev/null
	st=$(kgate status 2>&1 | head -3)
	kgate revert >/dev/null 2>&1
	hap2=$(json_num /tmp/hap-policy.json hap)
	if [ $rc = 0 ] && cmp -s /tmp/got.txt /tmp/www/file.txt && [ "${hap2:-0}" -gt 100 ] &&
		grep -q 'Compared with the baseline' /tmp/hap-policy.txt; then
		result hap_with_policy PASS "applied: $(echo "$out" | grep -i -m1 'applied\|backend'); status: $st; $(grep -A 30 'Compared with' /tmp/hap-policy.txt)"
	else
		result hap_with_policy FAIL "rc=$rc hap=$hap2; stderr: $(head -c 1500 /tmp/hap-policy.err); stdout: $(head -c 1500 /tmp/hap-policy.txt)"
	fi
fi
mark done
