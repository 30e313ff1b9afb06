#!/usr/bin/env bash
# Benchmark: `kgate survey --root` of the generic Debian 6.12 package
# (4,230 .ko.xz modules), cold (empty fact cache) and warm, against the floor:
# decompressing every module with `xz -dc`, spread over the same cores.
#
#   bench/survey.sh [RUNS]        (default 5 runs of each, interleaved)
#
# Prints a Markdown table for bench/RESULTS.md. The page cache is warmed
# first so that both sides measure CPU work, not the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
pkg=linux-image-6.12.113+deb12-amd64-unsigned
cargo xtask fetch "$pkg" >/dev/null
root=$(cargo xtask dir)/kernels/$pkg
modules=$(echo "$root"/lib/modules/*)
cargo build --release --quiet --package kgate
kgate=$PWD/target/release/kgate
cores=$(nproc)
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

now() { date +%s.%N; }
floor() { find "$modules" -name '*.ko.xz' -print0 | xargs -0 -P"$cores" -n32 xz -dc >/dev/null; }
cold() { rm -rf "$cache"/*; "$kgate" survey --root "$root" --cache-dir "$cache" --format json >/dev/null; }
warm() { "$kgate" survey --root "$root" --cache-dir "$cache" --format json >/dev/null; }
timeit() { local t0; t0=$(now); "$@"; awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

floor # warm the page cache
f=(); c=(); w=()
for ((i = 0; i < runs; i++)); do
    f+=("$(timeit floor)")
    c+=("$(timeit cold)")
    w+=("$(timeit warm)")
done
fm=$(printf '%s\n' "${f[@]}" | median)
cm=$(printf '%s\n' "${c[@]}" | median)
wm=$(printf '%s\n' "${w[@]}" | median)
n=$(find "$modules" -name '*.ko.xz' | wc -l)
mb=$(du -sm --apparent-size "$modules/kernel" | cut -f1)
printf '| %s | %s modules, %s MB | %s cores | floor `xz -dc` %.2f s | cold %.2f s (%.2fx floor, goal <= 1.3x) | warm %.3f s (goal <= 0.2 s) |\n' \
    "$(date -u +%Y-%m-%d)" "$n" "$mb" "$cores" "$fm" "$cm" "$(awk -v c="$cm" -v f="$fm" 'BEGIN { print c / f }')" "$wm"
