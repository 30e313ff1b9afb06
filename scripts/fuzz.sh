#!/usr/bin/env bash
# Run every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60).
# Each target reads the committed corpus fuzz/corpus/TARGET (small,
# minimized) and its working corpus fuzz/work/TARGET (not committed),
# which gets what it finds; the working corpus is seeded once from real
# inputs where this machine has them: the lab's Debian kernel packages
# (~/.cache/kgate-lab, `cargo xtask fetch`), a freeze policy and the policy
# examples in docs/, this host's /proc and /sys, and CVE records when
# KGATE_FUZZ_CVE_DIR names a directory of CVE JSON 5 files.
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`). With the nightly
# toolchain the targets run under AddressSanitizer; with stable only (as in
# CI) they run without a sanitizer (`--sanitizer none`: coverage-guided,
# debug assertions on, which is what safe Rust needs). KGATE_FUZZ_TOOLCHAIN
# overrides the choice.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   scripts/fuzz.sh --minimize [TARGET...]
#
# --minimize merges the working corpus into the committed one, keeping only
# inputs of at most KGATE_FUZZ_MAX_LEN bytes (default 64 KiB) that add
# coverage (libFuzzer -merge=1).
#
# KGATE_FUZZ_JOBS (default 1) runs that many targets at once, each on one
# core (scripts/test.sh: the number of CPUs).
#
# Exit 1 on the first target that crashes; the input is in
# fuzz/artifacts/TARGET/. Copy it to fuzz/regressions/TARGET/ so that the
# stable replay test (`cargo test --manifest-path fuzz/Cargo.toml`) keeps
# it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
minimize=
if [ "${1:-}" = --minimize ]; then
    minimize=1
    shift
fi
secs=60
if [ -z "$minimize" ] && [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
targets=("$@")
todo=()

tc=${KGATE_FUZZ_TOOLCHAIN:-}
if [ -z "$tc" ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then tc=nightly; else tc=stable; fi
fi
san=()
[ "$tc" = nightly ] || san=(--sanitizer none)
# `cargo +TOOLCHAIN` needs rustup; a distribution's cargo is the stable one.
tcarg=()
if command -v rustup >/dev/null; then tcarg=("+$tc"); fi
fuzz() { (cd fuzz && cargo "${tcarg[@]}" fuzz "$@"); }
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(fuzz list)

lab=${KGATE_LAB_DIR:-$HOME/.cache/kgate-lab}
tree=$(find "$lab/kernels" -maxdepth 4 -path '*/lib/modules/*' -type d -name '[0-9]*' 2>/dev/null | head -1 || true)
seed() { # seed TARGET: fill fuzz/work/TARGET once
    local d=fuzz/work/$1
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
    decompress) # first byte: 0 xz, 1 zstd, 2 gzip, 3 none
        local kos
        mapfile -t kos < <(find "$lab/kernels" -name '*.ko.xz' -size -48k 2>/dev/null | sort | head -4)
        for f in "${kos[@]}"; do
            local b
            b=$(basename "$f" .ko.xz)
            { printf '\0' && cat "$f"; } >"$d/$b.xz"
            if command -v zstd >/dev/null; then { printf '\1' && xz -dc "$f" | zstd -q -c; } >"$d/$b.zst"; fi
            { printf '\2' && xz -dc "$f" | gzip -c; } >"$d/$b.gz"
        done
        ;;
    builtin_modinfo)
        [ -n "$tree" ] || return 0
        if [ -f "$tree/modules.builtin.modinfo" ]; then head -c 262144 "$tree/modules.builtin.modinfo" >"$d/modules.builtin.modinfo"; fi
        if [ -f "$tree/modules.builtin" ]; then head -c 65536 "$tree/modules.builtin" >"$d/modules.builtin"; fi
        ;;
    host_facts)
        local f
        for f in /sys/kernel/security/lsm /sys/kernel/security/lockdown /proc/cmdline \
            /proc/sys/kernel/osrelease /proc/sys/kernel/yama/ptrace_scope \
            /proc/sys/kernel/unprivileged_bpf_disabled /proc/sys/user/max_user_namespaces; do
            if [ -r "$f" ]; then head -c 4096 "$f" >"$d/$(echo "${f#/}" | tr / _)" 2>/dev/null || true; fi
        done
        printf 'lockdown,capability,landlock,yama,apparmor,bpf\n' >"$d/lsm"
        printf 'none [integrity] confidentiality\n' >"$d/lockdown"
        printf 'BOOT_IMAGE=/vmlinuz root=UUID=x ro lsm=landlock,yama,bpf security=apparmor -- lsm=x\n' >"$d/cmdline"
        printf 'CRYPT-LUKS2-0123456789abcdef-sda2_crypt\n' >"$d/dm-uuid"
        printf 'raid5\n' >"$d/md-level"
        ;;
    mountinfo)
        if [ -r /proc/self/mountinfo ]; then head -c 262144 /proc/self/mountinfo >"$d/mountinfo"; fi
        if [ -r /proc/mounts ]; then head -c 262144 /proc/mounts >"$d/mounts"; fi
        printf '36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw\n' >"$d/escaped"
        ;;
    kallsyms)
        if [ -r /proc/kallsyms ]; then head -c 262144 /proc/kallsyms >"$d/proc-kallsyms"; fi
        local k
        for k in crates/kgate-hap/tests/data/*.kallsyms.gz; do
            if [ -f "$k" ]; then { gzip -dc "$k" | head -c 262144 >"$d/$(basename "$k" .gz)"; } || true; fi
        done
        ;;
    initramfs)
        local t
        t=$(mktemp -d)
        mkdir -p "$t/lib/modules/6.12.0/kernel/fs/ext4" "$t/kernel/x86/microcode"
        printf 'x' >"$t/lib/modules/6.12.0/kernel/fs/ext4/ext4.ko.xz"
        printf 'x' >"$t/lib/modules/6.12.0/kernel/fs/ext4/crc16.ko"
        printf 'ucode' >"$t/kernel/x86/microcode/GenuineIntel.bin"
        (cd "$t" && find kernel | cpio -o -H newc --quiet) >"$t/early.cpio"
        (cd "$t" && find lib | cpio -o -H newc --quiet) >"$t/main.cpio"
        cp "$t/main.cpio" "$d/plain"
        cat "$t/early.cpio" >"$d/early-gzip" && gzip -c "$t/main.cpio" >>"$d/early-gzip"
        xz -c --check=crc32 "$t/main.cpio" >"$d/xz"
        if command -v zstd >/dev/null; then zstd -q -c "$t/main.cpio" >"$d/zstd"; fi
        rm -rf "$t"
        ;;
    hap)
        local tr
        for tr in crates/kgate-hap/tests/data/*.trace.gz; do
            if [ -f "$tr" ]; then { gzip -dc "$tr" | head -c 131072 >"$d/$(basename "$tr" .gz)"; } || true; fi
        done
        printf '%s' '{"schema":"kgate.hap/1","kernel":"6.12.0","command":["true"],"exit_status":0,"exit_signal":null,"duration_seconds":0.5,"method":{"tracer":"function","follow_fork":true,"irq_filter":"irq-info","buffer_kb_per_cpu":4096},"hap":1,"irq_only_functions":0,"events":{"total":3,"process_context":3,"irq_context":0,"unknown_context":0,"lost":0,"unparsed_lines":0},"tasks":{"7":"true"},"mapping":{"module":1,"prefix":0,"neighbour":0,"unknown":0},"subsystems":[{"subsystem":"net/sctp","functions":1,"cves":{"all":3,"high_or_critical":1,"last_12_months":0}}],"modules":[{"module":"sctp","functions":1}],"functions":[{"name":"sctp_sendmsg","module":"sctp","subsystem":"net/sctp","how":"module","calls":3,"irq_calls":0}]}' >"$d/profile.json"
        ;;
    cat_file_batch)
        local rec='{"cveMetadata":{"cveId":"CVE-2024-1","state":"PUBLISHED","assignerShortName":"Linux"},"containers":{"cna":{"affected":[{"programFiles":["net/sctp/a.c"]}]}}}'
        printf '%s blob %d\n%s\n%s blob 2000000\n' 0123456789abcdef0123456789abcdef01234567 ${#rec} "$rec" 89abcdef0123456789abcdef0123456789abcdef >"$d/batch"
        printf 'HEAD:cve/published/2024/CVE-2024-1.json missing\n' >"$d/missing"
        printf '0123 blob 18446744073709551615\nx' >"$d/usize-max" # overflowed size + 1
        ;;
    cve_db)
        printf '%s' '{"meta":{"schema":"kgate.cve-db/1","source_kind":"csv","source":"min.csv","source_commit":null,"imported_at":"2026-01-01T00:00:00Z","records":1,"newest_published":"2024-05-01","oldest_published":"2024-05-01","skipped":[["other_cna",2]],"terms_of_use":{"text":"CVE(R) records","from":null}},"cves":[{"id":"CVE-2024-1","published":"2024-05-01","severity":"HIGH","score":7.5,"vector":null,"files":["net/sctp/a.c"],"title":"sctp: fix it","fix_commit":null}]}' >"$d/min.json"
        ;;
    bpf_event)
        # 16 bytes of clock offset, then a struct kg_event (200 bytes) of
        # zeros: a module request with hook 0, verdict allow.
        head -c 216 /dev/zero >"$d/zero"
        ;;
    caches)
        local c
        for c in "${XDG_CACHE_HOME:-$HOME/.cache}"/kgate/facts-*.bin "${XDG_CACHE_HOME:-$HOME/.cache}"/kgate/score-objects-*.json; do
            if [ -f "$c" ] && [ "$(stat -c %s "$c")" -le 1048576 ]; then cp "$c" "$d/"; fi
        done
        printf '{"version":1,"entries":{"kernel/net/sctp/sctp.ko.xz":{"size":1,"mtime_ns":2,"files":["net/sctp/socket.c"]}}}' >"$d/objects.json"
        ;;
    esac
}

for t in "${targets[@]}"; do
    seed "$t" || { echo "fuzz: cannot seed $t" >&2; exit 1; }
    mkdir -p "fuzz/corpus/$t"
    if [ -n "$minimize" ]; then
        printf '\n==> minimize the corpus of %s\n' "$t" >&2
        rm -rf "fuzz/work/.merge-$t"
        mkdir -p "fuzz/work/.merge-$t"
        fuzz run "${san[@]}" "$t" "work/.merge-$t" "corpus/$t" "work/$t" -- -merge=1 -max_len="${KGATE_FUZZ_MAX_LEN:-65536}" -rss_limit_mb=2048 2>&1 |
            grep -E 'MERGE-OUTER: [0-9]+ new files|ERROR|panicked' >&2
        rm -rf "fuzz/corpus/$t"
        mv "fuzz/work/.merge-$t" "fuzz/corpus/$t"
        printf '%s: %s files, %s\n' "$t" "$(find "fuzz/corpus/$t" -type f | wc -l)" "$(du -sh "fuzz/corpus/$t" | cut -f1)" >&2
        continue
    fi
    todo+=("$t")
done
[ -n "$minimize" ] && exit 0

# Build every target once, then run them KGATE_FUZZ_JOBS at a time
# (default 1), each with its own log; a target's summary lines are printed
# when it ends, and the first failure fails the script.
fuzz build "${san[@]}" >&2
logs=fuzz/work/.logs
mkdir -p "$logs"
run_target() {
    local t=$1 rc=0
    fuzz run "${san[@]}" "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 >"$logs/$t" 2>&1 || rc=$?
    {
        printf '\n==> fuzz %s for %ss (%s): %s\n' "$t" "$secs" "$tc" "$([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")"
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|Done|ERROR|panicked|SUMMARY' "$logs/$t" || true
        [ $rc = 0 ] || tail -30 "$logs/$t"
    } >&2
    return $rc
}
jobs=${KGATE_FUZZ_JOBS:-1}
failed=0
running=0
for t in "${todo[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    [ $failed = 0 ] || break
    run_target "$t" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
