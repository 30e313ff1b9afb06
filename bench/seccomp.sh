#!/usr/bin/env bash
# Issue 6 benchmarks, on this host (root needed for the recorder):
#  1. per-syscall cost of getpid and a 1-byte read of /dev/zero with no
#     filter, podman's default profile compiled by libseccomp, and kgate's
#     filter allowing the same syscalls (interleaved rounds, medians);
#  2. `kgate record` overhead on four workloads, from dd with 1-byte blocks
#     (2 syscalls per byte) to a compile, against the floor of any
#     raw_syscalls recorder and against strace, interleaved, medians.
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
# 2. Recorder overhead. Variants, interleaved in each round (order rotated):
#   plain   the workload alone;
#   floor   with an empty raw_tp/sys_enter BPF program attached
#           (bench/floor.bpf.c, loaded by the raw_tp_floor example): the
#           price every raw_syscalls recorder pays before doing anything,
#           because attaching sys_enter puts every task on the syscall
#           slow path;
#   kgate   `kgate record -o FILE -- WORKLOAD` (load, attach, run, read the
#           maps, write the profile);
#   strace  `strace -f -c -o FILE WORKLOAD`, the classic alternative
#           (ptrace: two context switches per syscall).
# Workloads, from the most syscall-dense there is to a compile:
#   dd      dd bs=1 of DD_BYTES bytes from /dev/zero to /dev/null (2
#           syscalls per byte, each doing almost nothing);
#   find    find /usr -xdev -printf '%s\n' (getdents64 + newfstatat per
#           file: a metadata scan like `git status`, `du`, backup tools);
#   tar     tar -c of /usr/share/doc piped to cat (read/write of files);
#   cc      cc -O2 -c lab/probe.c (a compile: few syscalls).
# Time: wall, and CPU (user+sys of the command and everything it waited
# for, so the recorder's own work is counted). CPU time is the fairer
# figure on a loaded machine: waiting for a core is not overhead.
cargo build --release --quiet -p kgate-bpf --example raw_tp_floor
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang -target bpf -O2 -c bench/floor.bpf.c -o "$out/floor.bpf.o"
kgate=./target/release/kgate
floor=./target/release/examples/raw_tp_floor
declare -A work=(
    [dd]="dd if=/dev/zero of=/dev/null bs=1 count=$bytes status=none"
    [find]="find /usr -xdev -printf %s\\n"
    [tar]="tar -cf - -C /usr share/doc"
    [cc]="cc -O2 -c lab/probe.c -o $out/probe.o"
)
workloads=(dd find tar cc)
variants=(plain floor kgate strace)
run() { # run VARIANT WORKLOAD: prints "wall cpu"
    local cmd=(sh -c "${work[$2]} >/dev/null 2>&1")
    [ "$2" = tar ] && cmd=(sh -c "${work[$2]} 2>/dev/null | cat >/dev/null")
    case $1 in
    plain) ;;
    floor) cmd=("$floor" "$out/floor.bpf.o" -- "${cmd[@]}") ;;
    kgate) cmd=("$kgate" record -o "$out/$2.json" -- "${cmd[@]}") ;;
    strace) cmd=(strace -f -c -o "$out/$2.strace" "${cmd[@]}") ;;
    esac
    /usr/bin/time -f '%e %U %S' -o "$out/t" "${cmd[@]}" >/dev/null 2>&1
    read -r w u s <"$out/t"
    awk -v w="$w" -v u="$u" -v s="$s" 'BEGIN { printf "%s %.2f\n", w, u + s }'
}
declare -A wall cpu
for ((i = 0; i < rounds; i++)); do
    for wl in "${workloads[@]}"; do
        for ((j = 0; j < ${#variants[@]}; j++)); do
            v=${variants[$(((i + j) % ${#variants[@]}))]}
            read -r w c < <(run "$v" "$wl")
            wall[$wl.$v]+="$w " cpu[$wl.$v]+="$c "
        done
    done
done
med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "Recorder overhead ($rounds interleaved rounds, medians; ratios to plain)"
echo
echo '| workload | syscalls (kgate profile) | plain CPU | floor: empty sys_enter program | kgate record | strace -f -c | kgate / floor | plain wall | kgate record wall |'
echo '|---|---|---|---|---|---|---|---|---|'
for wl in "${workloads[@]}"; do
    p=$(med "${cpu[$wl.plain]}") f=$(med "${cpu[$wl.floor]}") k=$(med "${cpu[$wl.kgate]}") s=$(med "${cpu[$wl.strace]}")
    n=$(python3 -c "import json;print(sum(s['count'] for s in json.load(open('$out/$wl.json'))['syscalls']))")
    printf '| %s | %s | %s s | %s s (**%s×**) | %s s (**%s×**) | %s s (%s×) | %s× | %s s | %s s |\n' "$wl" "$n" "$p" \
        "$f" "$(r "$f" "$p")" "$k" "$(r "$k" "$p")" "$s" "$(r "$s" "$p")" "$(r "$k" "$f")" \
        "$(med "${wall[$wl.plain]}")" "$(med "${wall[$wl.kgate]}")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
