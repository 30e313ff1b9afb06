#!/usr/bin/env bash
# Benchmark: cost of kgate's [splice] registry (issue 5, item 4), in the
# kernel lab. Boots each kernel once under qemu and runs
# lab/bench/20-splice.sh: splice file->pipe->loopback TCP, sendfile to
# loopback TCP, and plain pipe and tmpfs file read()/write() (file_permission
# fires on every read and write: the program's fast path), as nobody, in
# blocks alternating without and with `kgate apply --backend bpf-lsm`
# (Default preset endpoints, enforce), all in the same boot, and with only
# an empty BPF-LSM program on file_permission (the floor of any program
# there: the kernel's BPF trampoline).
#
#   bench/splice-overhead.sh [KERNELS]     (default cloud-6.12,cloud-6.1)
#
# Prints Markdown table rows for bench/RESULTS.md. qemu runs with
# `-icount shift=0` (see bench/bpf-overhead.sh): guest ns are executed
# instructions, so the ratios are instruction-count ratios that the host's
# load cannot disturb.
set -euo pipefail
cd "$(dirname "$0")/.."
kernels=${1:-cloud-6.12,cloud-6.1}
cargo build --quiet -p kgate
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# One boot per kernel, each with one vCPU: with two, loopback TCP figures
# swing by up to 2x between blocks as softirq work lands on either vCPU
# (and cloud-6.1 under -icount hangs bringing up the second).
for k in ${kernels//,/ }; do
    smp=1
    cargo xtask lab --kernel "$k" --smp $smp --kgate target/debug/kgate --scenarios lab/bench --only splice --icount 0 | tee -a "$out" >&2 || status=$?
done

get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
size() { case $1 in 1) echo '1 B' ;; 4096) echo '4 KiB' ;; 65536) echo '64 KiB' ;; *) echo "$1 B" ;; esac; }
echo '| date | kernel | operation | off ns/op | on ns/op | extra ns/op | throughput on/off | spread off / on | goal (≥ 0.98×) | floor: empty program, extra ns/op | floor throughput / off | kgate / floor |'
echo '|---|---|---|---|---|---|---|---|---|---|---|---|'
grep -E '^[a-z0-9.-]+ +bench_splice_[a-z0-9_]+_nobody ' "$out" | while read -r kernel name outcome detail; do
    op=${name#bench_splice_}
    op=${op%_nobody}
    case $op in
    splice_tcp) op='splice 64 KiB file→pipe→TCP' ;;
    sendfile_tcp) op='sendfile 64 KiB file→TCP' ;;
    pipe_rw_*) op="pipe write+read $(size ${op#pipe_rw_})" ;;
    file_read_*) op="pread $(size ${op#file_read_}) (tmpfs)" ;;
    file_write_*) op="pwrite $(size ${op#file_write_}) (tmpfs)" ;;
    readzero) op='read 1 B of /dev/zero' ;;
    esac
    d=" $detail"
    printf '| %s | %s | %s | %s | %s | %s | **%s×** | %s / %s | %s | %s | %s× | %s× |\n' \
        "$(date -u +%Y-%m-%d)" "$kernel" "$op" "$(get off "$d" | tr -d ns)" "$(get on "$d" | tr -d ns)" \
        "$(get extra_ns "$d")" "$(get throughput "$d")" "$(get off_spread "$d")" "$(get on_spread "$d")" "$(get goal "$d")" \
        "$(get floor_extra_ns "$d")" "$(get floor_throughput "$d")" "$(get on_over_floor "$d")"
    [ "$outcome" = PASS ] || echo "splice-overhead: $kernel $name $outcome: $detail" >&2
done
echo
echo '| date | kernel | during | program runs per op | ns (instructions) per run |'
echo '|---|---|---|---|---|'
grep -E '^[a-z0-9.-]+ +bench_splice_prog_' "$out" | while read -r kernel name outcome detail; do
    d=" $detail"
    printf '| %s | %s | %s | %s | %s |\n' "$(date -u +%Y-%m-%d)" "$kernel" "${name#bench_splice_prog_}" \
        "$(get runs_per_op "$d")" "$(get ns_per_run "$d")"
    [ "$outcome" = PASS ] || echo "splice-overhead: $kernel $name $outcome: $detail" >&2
done
exit $status
