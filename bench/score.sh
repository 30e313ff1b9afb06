#!/usr/bin/env bash
# Benchmark: `kgate cve import` of the kernel CNA data set (14,626 records)
# and `kgate score --policy` of the generic Debian 6.12 package (4,230
# modules), each against the real alternative in the same run:
#   - import vs `gzip -dc` of the same CSV (reading the data at all);
#   - score vs `kgate survey` of the same kernel, cold (empty caches: both
#     decompress every module; score also scans each for source-file
#     strings and attributes every CVE) and warm (caches filled).
#
#   bench/score.sh [RUNS]          (default 5 runs of each, interleaved)
#
# Needs the data set: $KGATE_SHARED_DATA or ../shared/data (never committed).
# Prints Markdown table rows for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
data=${KGATE_SHARED_DATA:-$PWD/../shared/data}
csv=$data/kernel-cve-files.csv.gz
[[ -f $csv ]] || { echo "no $csv: set KGATE_SHARED_DATA" >&2; exit 1; }
pkg=linux-image-6.12.113+deb12-amd64-unsigned
cargo xtask fetch "$pkg" >/dev/null
root=$(cargo xtask dir)/kernels/$pkg
cargo build --release --quiet --package kgate
kgate=$PWD/target/release/kgate
cores=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME=$tmp/data
cache=$tmp/cache
policy=$tmp/server.toml

now() { date +%s.%N; }
timeit() { local t0; t0=$(now); "$@" >/dev/null; awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

gunzip_csv() { gzip -dc "$csv"; }
import() { "$kgate" cve import "$csv"; }
survey_cold() { rm -rf "$cache"; "$kgate" survey --root "$root" --cache-dir "$cache" --format json; }
score_cold() { rm -rf "$cache"; "$kgate" score --root "$root" --cache-dir "$cache" --policy "$policy" --format json; }
survey_warm() { "$kgate" survey --root "$root" --cache-dir "$cache" --format json; }
score_warm() { "$kgate" score --root "$root" --cache-dir "$cache" --policy "$policy" --format json; }

import >/dev/null
"$kgate" freeze --root "$root" --cache-dir "$cache" --loaded bench/server-lsmod.txt -o "$policy" >/dev/null
g=(); i=(); sc=(); kc=(); sw=(); kw=()
for ((n = 0; n < runs; n++)); do
    g+=("$(timeit gunzip_csv)"); i+=("$(timeit import)")
    sc+=("$(timeit survey_cold)"); kc+=("$(timeit score_cold)")
    score_warm >/dev/null # fill both caches
    sw+=("$(timeit survey_warm)"); kw+=("$(timeit score_warm)")
done
m() { printf '%s\n' "$@" | median; }
gm=$(m "${g[@]}"); im=$(m "${i[@]}"); scm=$(m "${sc[@]}"); kcm=$(m "${kc[@]}"); swm=$(m "${sw[@]}"); kwm=$(m "${kw[@]}")
load=$(cut -d' ' -f1-3 /proc/loadavg)
printf '| %s | %s cores, load %s | import %.3f s (gzip -dc %.3f s, %sx) | score cold %.2f s (survey cold %.2f s, %sx) | score warm %.3f s (survey warm %.3f s, %sx) |\n' \
    "$(date -u +%Y-%m-%d)" "$cores" "$load" "$im" "$gm" "$(ratio "$im" "$gm")" "$kcm" "$scm" "$(ratio "$kcm" "$scm")" "$kwm" "$swm" "$(ratio "$kwm" "$swm")"
