#!/usr/bin/env bash
# Run every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60),
# seeded from real inputs where this machine has them: the lab's Debian
# kernel packages (~/.cache/kgate-lab, `cargo xtask fetch`), a freeze
# policy and the policy examples in docs/, and CVE records when
# KGATE_FUZZ_CVE_DIR names a directory of CVE JSON 5 files. Needs the
# nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Exit 1 on the first target that crashes; the input is in
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)

lab=${KGATE_LAB_DIR:-$HOME/.cache/kgate-lab}
tree=$(find "$lab/kernels" -maxdepth 4 -path '*/lib/modules/*' -type d -name '[0-9]*' 2>/dev/null | head -1 || true)
seed() { # seed TARGET: fill fuzz/corpus/TARGET once
    local d=fuzz/corpus/$1
    [ -d "$d" ] && return 0
    mkdir -p "$d"
    case $1 in
    ko_elf | modinfo)
        [ -n "$tree" ] || return 0
        local kos
        mapfile -t kos < <(find "$tree" \( -name '*.ko' -o -name '*.ko.xz' \) | sort | head -8)
        for f in "${kos[@]}"; do
            local out
            out="$d/$(basename "$f" .xz)"
            case $f in
            *.xz) xz -dc "$f" >"$out" ;;
            *) cp "$f" "$out" ;;
            esac
            if [ "$1" = modinfo ]; then
                objcopy -O binary --only-section=.modinfo "$out" "$out.modinfo" && mv "$out.modinfo" "$out"
            fi
        done
        if [ "$1" = modinfo ] && [ -f "$tree/modules.builtin.modinfo" ]; then
            head -c 65536 "$tree/modules.builtin.modinfo" >"$d/builtin"
        fi
        ;;
    depmod)
        [ -n "$tree" ] || return 0
        for f in modules.dep modules.alias modules.softdep modules.builtin; do
            if [ -f "$tree/$f" ]; then head -c 65536 "$tree/$f" >"$d/$f"; fi
        done
        if [ -r /proc/modules ]; then head -c 65536 /proc/modules >"$d/proc-modules"; fi
        ;;
    kernel_config)
        local c
        c=$(find "$lab/kernels" -path '*/boot/config-*' 2>/dev/null | head -1 || true)
        if [ -n "$c" ]; then head -c 200000 "$c" >"$d/config"; fi
        ;;
    modprobe_conf)
        cat /etc/modprobe.d/*.conf >"$d/host.conf" 2>/dev/null || true
        printf 'install sctp /bin/false\nblacklist vsock\nalias net-pf-40 off\nsoftdep a pre: b post: c\n' >"$d/sample.conf"
        ;;
    policy)
        awk '/^```toml/{f=1; n++; next} /^```/{f=0} f{print > "'"$d"'/doc-" n ".toml"}' docs/policy.md
        cargo run --quiet -p kgate -- freeze -o "$d/freeze.toml" >/dev/null 2>&1 || true
        ;;
    profile)
        printf '{"schema":"kgate.profile/1","syscalls":{"read":3},"socket_families":[1,2]}' >"$d/min.json"
        ;;
    cve_json)
        if [ -n "${KGATE_FUZZ_CVE_DIR:-}" ]; then
            find "$KGATE_FUZZ_CVE_DIR" -name 'CVE-*.json' -exec cp -t "$d" {} +
        fi
        ;;
    cve_csv)
        printf 'cve_id,files\nCVE-2024-0001,net/sctp/socket.c\n' >"$d/min.csv"
        ;;
    esac
}

for t in "${targets[@]}"; do
    seed "$t" || { echo "fuzz: cannot seed $t" >&2; exit 1; }
    printf '\n==> fuzz %s for %ss\n' "$t" "$secs" >&2
    (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 2>&1) |
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|Done|ERROR|panicked|SUMMARY' >&2
done
