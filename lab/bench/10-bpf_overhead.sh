# Overhead of kgate's BPF-LSM enforcement (issue 4, item 9). A benchmark,
# not part of the test suite (lab/scenarios): run it with
#   cargo xtask lab --kernel cloud-6.12 --scenarios lab/bench
# or bench/bpf-overhead.sh. It asserts no timing: every result PASSes with
# its figures in the detail, and FAILs only when the benchmark could not
# run (apply or revert did not take effect, a timed call failed).
#
# In one boot, BLOCKS blocks cycle off/floor/on/off/floor/on...: "off" with
# nothing attached; "floor" with only empty BPF-LSM programs (return 0,
# `probe lsm-floor`) on the hooks these ops reach (socket_create, capable,
# mmap_file): the least any BPF-LSM program there can cost; "on" after `kgate apply POLICY --backend bpf-lsm` (modules
# enforce with a small allowlist; sockets enforce allowing unix, inet/tcp,
# inet/udp, netlink/route; userns deny), undone by `kgate revert` before the
# next "off" block. In each block, `probe bench OP ITERS ROUNDS` times each
# op as nobody (65534:65534) and as root and prints the median of ROUNDS
# rounds in ns/op. A result's detail gives the median over the blocks of
# each state, the on/off ratio of those medians, the spread (max/min - 1)
# of the block figures of each state (the noise level), and min_ratio: the
# ratio of the fastest round seen in each state, the figure least disturbed
# by other load on the host (qemu's vCPU threads share its cores), and the
# floor: floor (median ns/op), floor_ratio (floor/off) and on_over_floor
# (on/floor: what kgate's programs cost beyond the empty ones).
#   socket    socket(AF_INET, SOCK_STREAM, 0) + close: gated (socket_create),
#             allowed by the policy
#   getpid    not gated
#   readzero  1-byte read of /dev/zero: not gated
#   setuid    setuid(getuid()): a CAP_SETUID check, so kgate's lsm/capable
#             program runs (its first branch: not CAP_SYS_ADMIN)
#   mmap      mmap+munmap of 4 KiB of a file, PROT_READ (lsm/mmap_file,
#             first branch: not executable)
#   mmapx     the same with PROT_EXEC, of a file the user owns in /tmp:
#             mmap_file's longest path (config, inode and allow_exe lookups)
# results: bench_bpf_socket_nobody bench_bpf_getpid_nobody bench_bpf_readzero_nobody bench_bpf_setuid_nobody bench_bpf_mmap_nobody bench_bpf_mmapx_nobody bench_bpf_socket_root bench_bpf_getpid_root bench_bpf_readzero_root bench_bpf_setuid_root bench_bpf_mmap_root bench_bpf_mmapx_root

BLOCKS=3          # blocks of each state (run under -icount: the spread is ~0)
ROUNDS=5          # timed rounds per probe run (probe prints median and min)
ITERS_socket=3500 # ops per round, ~0.15 s per round under TCG
ITERS_getpid=180000
ITERS_readzero=75000
ITERS_setuid=100000
ITERS_mmap=12000
ITERS_mmapx=12000
OPS="socket getpid readzero setuid mmap mmapx"
FLOOR_HOOKS="socket_create capable mmap_file"
FLOOR_PIN=/sys/fs/bpf/kgate-bench-floor
# The probe's name of an op.
probe_op() { if [ "$1" = mmapx ]; then echo mmap-exec; else echo "$1"; fi; }
USERS="nobody root"
ALL=
for op in $OPS; do for u in $USERS; do ALL="$ALL bench_bpf_${op}_$u"; done; done

D=/tmp/bench
rm -rf $D
mkdir -p $D

cat >$D/policy.toml <<'EOP'
version = 1

[modules]
mode = "enforce"
root = "allow"
allow = ["xfs", "ext4"]

[sockets]
mode = "enforce"
allow = ["unix", "inet/tcp", "inet/udp", "netlink/route"]

[userns]
unprivileged = "deny"
EOP

fail_all() {
	for r in $ALL; do result "$r" FAIL "$*"; done
	kgate revert --backend bpf-lsm >/dev/null 2>&1
	rm -f $FLOOR_PIN-*
	exit 0
}

# wait_userns ok|denied: poll until unprivileged unshare(CLONE_NEWUSER)
# gives the expected answer (the policy denies it, so it shows whether the
# programs are attached; detaching lags `revert` a little). Up to 15 s.
wait_userns() {
	_t=0
	while :; do
		_u=$(as_nobody probe unshare-user 2>&1)
		if [ "$1" = ok ]; then [ "$_u" = ok ] && return 0; else [ "$_u" != ok ] && return 0; fi
		[ $_t -ge 30 ] && return 1
		sleep 0.5
		_t=$((_t + 1))
	done
}

measure() { # measure STATE BLOCK
	for op in $OPS; do
		eval "iters=\$ITERS_$op"
		for u in $USERS; do
			if [ $u = root ]; then
				out=$(probe bench "$(probe_op $op)" "$iters" $ROUNDS 2>&1)
			else
				out=$(as_nobody probe bench "$(probe_op $op)" "$iters" $ROUNDS 2>&1)
			fi
			ns=$(echo "$out" | sed -n 's/^ns_per_op=\([0-9.]*\) min=\([0-9.]*\) .*/\1 \2/p')
			[ -n "$ns" ] || fail_all "$1 block $2: $u probe bench $op -> $out"
			echo "${ns% *}" >>"$D/$op-$u-$1"
			echo "${ns#* }" >>"$D/$op-$u-$1.min"
			echo "bench: $1 block $2 $op $u $out"
		done
	done
}

if ! wait_userns ok; then
	fail_all "unprivileged unshare(CLONE_NEWUSER) fails before any apply: $(as_nobody probe unshare-user 2>&1)"
fi
t_start=$(cut -d' ' -f1 /proc/uptime)
b=1
while [ $b -le $BLOCKS ]; do
	measure off $b
	for h in $FLOOR_HOOKS; do
		out=$(probe lsm-floor $h $FLOOR_PIN-$h 2>&1)
		[ "${out%% *}" = ok ] || fail_all "block $b: cannot attach the empty $h program: $out"
	done
	measure floor $b
	rm -f $FLOOR_PIN-*
	out=$(kgate apply $D/policy.toml --backend bpf-lsm 2>&1) || fail_all "block $b: kgate apply failed: $out"
	wait_userns denied || fail_all "block $b: applied, but unprivileged userns still allowed: $out"
	measure on $b
	out=$(kgate revert --backend bpf-lsm 2>&1) || fail_all "block $b: kgate revert failed: $out"
	wait_userns ok || fail_all "block $b: reverted, but unprivileged userns still denied after 15 s: $out"
	b=$((b + 1))
done
t_end=$(cut -d' ' -f1 /proc/uptime)

# stats FILE: "median min max" of the numbers in FILE.
stats() {
	sort -n "$1" | awk '{ a[NR] = $1 } END {
		m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.1f %.1f %.1f\n", m, a[1], a[NR] }'
}
for op in $OPS; do
	eval "iters=\$ITERS_$op"
	for u in $USERS; do
		# shellcheck disable=SC2046
		set -- $(stats "$D/$op-$u-off") $(stats "$D/$op-$u-on") $(stats "$D/$op-$u-off.min") $(stats "$D/$op-$u-on.min")
		detail=$(awk -v om="$1" -v omin="$2" -v omax="$3" -v nm="$4" -v nmin="$5" -v nmax="$6" -v ob="$8" -v nb="${11}" 'BEGIN {
			printf "ratio=%.3f off=%.1fns on=%.1fns off_spread=%.1f%% on_spread=%.1f%% min_ratio=%.3f off_min=%.1fns on_min=%.1fns",
				nm / om, om, nm, (omax / omin - 1) * 100, (nmax / nmin - 1) * 100, nb / ob, ob, nb }')
		fl=$(stats "$D/$op-$u-floor")
		detail="$detail $(awk -v om="$1" -v nm="$4" -v fm="${fl%% *}" 'BEGIN {
			printf "floor=%.1fns floor_ratio=%.3f on_over_floor=%.3f", fm, fm / om, nm / fm }')"
		result "bench_bpf_${op}_$u" PASS "$detail blocks=$BLOCKS rounds=$ROUNDS iters=$iters off_blocks=$(tr '\n' ',' <"$D/$op-$u-off") on_blocks=$(tr '\n' ',' <"$D/$op-$u-on") seconds=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { print int(b - a) }')"
	done
done
