#!/usr/bin/env bash
# Issue 6 benchmarks, on this host (root needed for the recorder):
#  1. per-syscall cost of getpid and a 1-byte read of /dev/zero with no
#     filter, podman's default profile compiled by libseccomp, and kgate's
#     filter allowing the same syscalls (interleaved rounds, medians);
#  2. `kgate record` overhead on a syscall-heavy workload (dd with 1-byte
#     blocks: 2 syscalls per byte), interleaved plain/recorded runs, medians.
# Usage: bench/seccomp.sh [ROUNDS] [CALLS] [DD_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
calls=${2:-1000000}
bytes=${3:-2000000}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release --quiet -p kgate-seccomp --example seccomp_bench
cargo build --release --quiet -p kgate
./target/release/examples/seccomp_bench "$rounds" "$calls"

echo
work=(dd if=/dev/zero of=/dev/null bs=1 count="$bytes" status=none)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Wall time and CPU time (user+sys of the command and everything it
# waited for: dd, and for kgate record its own work too). CPU time is the
# fairer figure on a loaded machine: waiting for a core is not overhead.
plain_w=() plain_c=() rec_w=() rec_c=()
t() { /usr/bin/time -f '%e %U %S' -o "$out/t" "$@" 2>/dev/null; read -r w u s <"$out/t"; echo "$w $(echo "$u + $s" | bc)"; }
for ((i = 0; i < rounds; i++)); do
    read -r w c < <(t "${work[@]}"); plain_w+=("$w"); plain_c+=("$c")
    read -r w c < <(t ./target/release/kgate record -o "$out/p.json" -- "${work[@]}"); rec_w+=("$w"); rec_c+=("$c")
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pw=$(med "${plain_w[@]}") pc=$(med "${plain_c[@]}") rw=$(med "${rec_w[@]}") rc=$(med "${rec_c[@]}")
calls_rec=$(python3 -c "import json;print(sum(s['count'] for s in json.load(open('$out/p.json'))['syscalls']))")
echo "kgate record overhead: ${work[*]} ($rounds interleaved runs, medians)"
echo "| run | wall time | ratio | CPU time (user+sys) | ratio |"
echo "|---|---|---|---|---|"
echo "| plain | ${pw} s | 1.000× | ${pc} s | 1.000× |"
echo "| kgate record (load, attach, run, read maps, write profile) | ${rw} s | $(echo "scale=3; $rw / $pw" | bc)× | ${rc} s | $(echo "scale=3; $rc / $pc" | bc)× |"
echo "syscalls counted in the last profile: $calls_rec"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
