# Overhead of kgate's [splice] enforcement (issue 5, item 4). A benchmark,
# not part of the test suite (lab/scenarios): run it with
#   cargo xtask lab --kernel cloud-6.12 --scenarios lab/bench --only splice
# It asserts no timing: every result PASSes with its figures in the detail
# (goal=met|missed against the issue's goal), and FAILs only when the
# benchmark could not run (apply or revert did not take effect, a timed
# call failed).
#
# In one boot, BLOCKS blocks cycle off/floor/on/off/floor/on...: "off"
# with nothing attached; "floor" with only an empty BPF-LSM program on
# file_permission (`probe lsm-floor`: return 0, attached as libbpf
# attaches "lsm/file_permission"), the floor of any program there, i.e.
# the kernel's BPF trampoline; "on" after `kgate apply POLICY --backend bpf-lsm` ([splice]
# enforce with the Default preset's endpoints, so every timed transfer is
# allowlisted and goes through the registry check; [sockets] enforce),
# undone by `kgate revert` before the next "off" block. In each block,
# `probe bench OP ITERS ROUNDS [SIZE]` times each op as nobody
# (65534:65534) and prints the median of ROUNDS rounds in ns/op. Sockets,
# pipe and file are set up outside the timed loop; the file is in $TMPDIR,
# default /tmp (tmpfs in the guest) (lab/probe.c):
#   splice-tcp       64 KiB file:tmpfs -> pipe -> loopback socket:inet/tcp
#                    (splice twice per chunk; a child drains the far end)
#   sendfile-tcp     64 KiB sendfile(socket:inet/tcp, file:tmpfs)
#   pipe-rw:N        write + read N bytes through a pipe
#   file-read:N      pread N bytes of a tmpfs file
#   file-write:N     pwrite N bytes to a tmpfs file
#   readzero         1-byte read of /dev/zero (the cheapest read there is)
# file_permission fires on every read and write, so the plain reads and
# writes pay the program's fast path (not in a splice-family syscall ->
# return); N = 1, 4096 and 65536 show how that fixed cost weighs against
# the size of the transfer.
# A result's detail gives the median over the blocks of each state, the
# on/off ratio of those medians (ns/op: below 1 is faster), throughput=
# its inverse (the issue's goal: >= 0.98, i.e. ratio <= 1/0.98), the spread
# (max/min - 1) of the block figures of each state (the noise level),
# min_ratio: the ratio of the fastest round seen in each state,
# extra_ns: on - off, and the floor's figures: floor (median ns/op),
# floor_throughput (off/floor: the best any file_permission program can
# do), floor_extra_ns (floor - off: the trampoline), on_over_floor
# (floor/on: what kgate's program costs beyond the floor).
#
# Then one more "on" pass with the sysctl kernel.bpf_stats_enabled=1: the
# kernel's own run statistics of the splice program (`kgate status`:
# runs=, run_ns=) around readzero, file-read:4096 and splice-tcp give the
# program's share of the extra cost (bench_splice_prog_*: runs per op and
# ns per run; under -icount shift=0, ns are instructions, including one
# clock read that only statistics add).
# results: bench_splice_splice_tcp_nobody bench_splice_sendfile_tcp_nobody bench_splice_pipe_rw_1_nobody bench_splice_pipe_rw_4096_nobody bench_splice_pipe_rw_65536_nobody bench_splice_file_read_1_nobody bench_splice_file_read_4096_nobody bench_splice_file_read_65536_nobody bench_splice_file_write_1_nobody bench_splice_file_write_4096_nobody bench_splice_file_write_65536_nobody bench_splice_readzero_nobody bench_splice_prog_readzero bench_splice_prog_file_read_4096 bench_splice_prog_splice_tcp

BLOCKS=3  # blocks of each state (run under -icount: the spread is ~0)
ROUNDS=5  # timed rounds per probe run (probe prints median and min)
# ops per round: ~15-50 ms of guest time per round (under -icount
# shift=0, guest ns = instructions: splice-tcp ~100k per op, sendfile-tcp
# ~100k, pipe-rw:4096 ~10k, file-read:4096 ~5.4k, readzero ~670).
ITERS_splice_tcp=200
ITERS_sendfile_tcp=300
ITERS_pipe_rw_1=10000
ITERS_pipe_rw_4096=3000
ITERS_pipe_rw_65536=300
ITERS_file_read_1=15000
ITERS_file_read_4096=5000
ITERS_file_read_65536=400
ITERS_file_write_1=15000
ITERS_file_write_4096=5000
ITERS_file_write_65536=400
ITERS_readzero=30000
OPS="splice-tcp sendfile-tcp pipe-rw:1 pipe-rw:4096 pipe-rw:65536 file-read:1 file-read:4096 file-read:65536 file-write:1 file-write:4096 file-write:65536 readzero"
PROG_OPS="readzero file-read:4096 splice-tcp"
GOAL=0.98
# name OP: the result-name part of an op (file-read:4096 -> file_read_4096).
name() { echo "$1" | tr -- '-:' '__'; }
ALL=
for op in $OPS; do ALL="$ALL bench_splice_$(name $op)_nobody"; done
for op in $PROG_OPS; do ALL="$ALL bench_splice_prog_$(name $op)"; done

D=/tmp/bench-splice
FLOOR_PIN=/sys/fs/bpf/kgate-bench-floor
rm -f $FLOOR_PIN
rm -rf $D
mkdir -p $D

cat >$D/policy.toml <<'EOP'
version = 1

[sockets]
mode = "enforce"
allow = ["unix", "inet/tcp", "inet/udp", "netlink/route"]

[splice]
mode = "enforce"
allow = ["pipe", "file:ext4", "file:xfs", "file:btrfs", "file:tmpfs", "file:vfat", "file:nfs", "file:overlay", "file:fuse", "socket:inet/tcp", "socket:inet6/tcp", "socket:inet/udp", "socket:inet6/udp", "socket:unix", "chardev:null", "chardev:zero"]
EOP

fail_all() {
	for r in $ALL; do result "$r" FAIL "$*"; done
	kgate revert --backend bpf-lsm >/dev/null 2>&1
	exit 0
}

# wait_splice ok|denied: poll until an unprivileged splice(/dev/urandom ->
# pipe) gives the expected answer (chardev:urandom is outside the policy's
# registry, so it shows whether the programs are attached). Up to 15 s.
wait_splice() {
	_t=0
	while :; do
		_u=$(as_nobody probe splice-dev /dev/urandom 2>&1)
		if [ "$1" = ok ]; then [ "$_u" = "ok bytes=4096" ] && return 0; else [ "$_u" = "step=splice errno=EINVAL" ] && return 0; fi
		[ $_t -ge 30 ] && return 1
		sleep 0.5
		_t=$((_t + 1))
	done
}

# probe_op OP: run the timed probe for OP as nobody; prints probe's output.
probe_op() {
	_o=$(name "$1")
	eval "_iters=\$ITERS_$_o"
	case $1 in
	*:*) as_nobody probe bench "${1%%:*}" "$_iters" $ROUNDS "${1#*:}" 2>&1 ;;
	*) as_nobody probe bench "$1" "$_iters" $ROUNDS 2>&1 ;;
	esac
}

measure() { # measure STATE BLOCK
	for op in $OPS; do
		o=$(name $op)
		out=$(probe_op $op)
		ns=$(echo "$out" | sed -n 's/^ns_per_op=\([0-9.]*\) min=\([0-9.]*\) .*/\1 \2/p')
		[ -n "$ns" ] || fail_all "$1 block $2: nobody probe bench $op -> $out"
		echo "${ns% *}" >>"$D/$o-$1"
		echo "${ns#* }" >>"$D/$o-$1.min"
		echo "bench: $1 block $2 $op nobody $out"
	done
}

# prog_stats: "RUNS RUN_NS" of the splice program (file_permission) from
# `kgate status`, 0 0 before any counted run.
prog_stats() {
	kgate status 2>/dev/null | awk '/^hook file_permission / {
		r = 0; t = 0
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^runs=/) r = substr($i, 6)
			if ($i ~ /^run_ns=/) t = substr($i, 8)
		}
		print r, t; found = 1 }
		END { if (!found) print "none" }'
}

kgate revert --backend bpf-lsm >/dev/null 2>&1
if ! wait_splice ok; then
	fail_all "unprivileged splice(/dev/urandom -> pipe) fails before any apply: $(as_nobody probe splice-dev /dev/urandom 2>&1)"
fi
t_start=$(cut -d' ' -f1 /proc/uptime)
b=1
while [ $b -le $BLOCKS ]; do
	measure off $b
	out=$(probe lsm-floor file_permission $FLOOR_PIN 2>&1)
	[ "${out%% *}" = ok ] || fail_all "block $b: cannot attach the empty file_permission program: $out"
	measure floor $b
	rm -f $FLOOR_PIN
	out=$(kgate apply $D/policy.toml --backend bpf-lsm 2>&1) || fail_all "block $b: kgate apply failed: $out"
	wait_splice denied || fail_all "block $b: applied, but splice(/dev/urandom -> pipe) still allowed: $out"
	measure on $b
	out=$(kgate revert --backend bpf-lsm 2>&1) || fail_all "block $b: kgate revert failed: $out"
	wait_splice ok || fail_all "block $b: reverted, but splice(/dev/urandom -> pipe) still denied after 15 s: $out"
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
	o=$(name $op)
	eval "iters=\$ITERS_$o"
	# shellcheck disable=SC2046
	set -- $(stats "$D/$o-off") $(stats "$D/$o-on") $(stats "$D/$o-off.min") $(stats "$D/$o-on.min") $(stats "$D/$o-floor")
	detail=$(awk -v om="$1" -v omin="$2" -v omax="$3" -v nm="$4" -v nmin="$5" -v nmax="$6" -v ob="$8" -v nb="${11}" -v fm="${13}" -v fmin="${14}" -v fmax="${15}" -v goal=$GOAL 'BEGIN {
		printf "ratio=%.3f throughput=%.3f goal=%s off=%.1fns on=%.1fns extra_ns=%.1f off_spread=%.1f%% on_spread=%.1f%% min_ratio=%.3f off_min=%.1fns on_min=%.1fns floor=%.1fns floor_throughput=%.3f floor_extra_ns=%.1f floor_spread=%.1f%% on_over_floor=%.3f",
			nm / om, om / nm, (om / nm >= goal ? "met" : "missed"), om, nm, nm - om, (omax / omin - 1) * 100, (nmax / nmin - 1) * 100, nb / ob, ob, nb,
			fm, om / fm, fm - om, (fmax / fmin - 1) * 100, fm / nm }')
	result "bench_splice_${o}_nobody" PASS "$detail blocks=$BLOCKS rounds=$ROUNDS iters=$iters off_blocks=$(tr '\n' ',' <"$D/$o-off") on_blocks=$(tr '\n' ',' <"$D/$o-on") floor_blocks=$(tr '\n' ',' <"$D/$o-floor") seconds=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { print int(b - a) }')"
done

# The program's own share, from the kernel's run statistics.
prog_fail() {
	for op in $PROG_OPS; do result "bench_splice_prog_$(name $op)" FAIL "$*"; done
	echo 0 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
	kgate revert --backend bpf-lsm >/dev/null 2>&1
	exit 0
}
out=$(kgate apply $D/policy.toml --backend bpf-lsm 2>&1) || prog_fail "stats pass: kgate apply failed: $out"
wait_splice denied || prog_fail "stats pass: applied, but splice(/dev/urandom -> pipe) still allowed: $out"
echo 1 >/proc/sys/kernel/bpf_stats_enabled || prog_fail "cannot set kernel.bpf_stats_enabled"
for op in $PROG_OPS; do
	o=$(name $op)
	eval "iters=\$ITERS_$o"
	before=$(prog_stats)
	out=$(probe_op $op)
	after=$(prog_stats)
	case "$before $after" in *none*) prog_fail "kgate status shows no file_permission hook: $(kgate status 2>&1)" ;; esac
	ns=$(echo "$out" | sed -n 's/^ns_per_op=\([0-9.]*\) .*/\1/p')
	[ -n "$ns" ] || prog_fail "stats pass: nobody probe bench $op -> $out"
	# ops run: a warm-up of iters/4+1, then ROUNDS rounds of iters.
	detail=$(echo "$before $after" | awk -v ops=$((iters / 4 + 1 + ROUNDS * iters)) -v ns="$ns" '{
		r = $3 - $1; t = $4 - $2
		if (r <= 0) { print "no runs counted"; exit }
		printf "runs_per_op=%.2f ns_per_run=%.1f prog_ns_per_op=%.1f op_ns_with_stats=%.1f runs=%d", r / ops, t / r, t / ops, ns, r }')
	case $detail in
	runs_per_op=*) result "bench_splice_prog_$o" PASS "$detail" ;;
	*) result "bench_splice_prog_$o" FAIL "$detail (before: $before, after: $after)" ;;
	esac
done
echo 0 >/proc/sys/kernel/bpf_stats_enabled
kgate revert --backend bpf-lsm >/dev/null 2>&1
