#!/usr/bin/env bash
# Installs, through apt-get, the Debian packages kgate's build and tests need,
# but only those missing. Sourced by scripts/survey.sh and scripts/test.sh.
#   deps_install build   # to build kgate
#   deps_install test    # to build and run every test, the kernel lab included
#   deps_install kernel  # to build the lab's own kernel (cargo xtask build-kernel)
set -euo pipefail

deps_install() {
    # clang, llvm, libelf-dev, zlib1g-dev: kgate-bpf's BPF programs and libbpf.
    local want=(gcc pkg-config make xz-utils zstd clang llvm libelf-dev zlib1g-dev)
    if [[ ${1:-build} == test ]]; then
        # crun, golang-github-containers-common (podman's seccomp.json),
        # systemd (systemd-analyze): kgate record/run/export tests (issue 6).
        # chromium + a font: kgate report's page is rendered headless in tests.
        # git: `kgate cve` reads bare vulns repositories with it (tests build some).
        # libseccomp-dev: kgate-seccomp's tests and benchmark compare with
        # libseccomp (a dev-dependency that links -lseccomp).
        # g++: libfuzzer-sys builds libFuzzer (C++) for the fuzz targets.
        want+=(g++ kmod cpio busybox-static qemu-system-x86 util-linux crun golang-github-containers-common systemd chromium fonts-dejavu-core git libseccomp-dev)
        # dpkg-dev (dpkg-shlibdeps), lintian: cargo xtask deb and its check.
        # mmdebstrap, e2fsprogs (mke2fs -d, debugfs), openssh-client, curl,
        # postgresql-client: the real-system lab's image and its clients.
        want+=(dpkg-dev lintian mmdebstrap e2fsprogs openssh-client curl postgresql-client)
    fi
    if [[ ${1:-build} == kernel ]]; then
        # The fei-6.12 lab kernel (cargo xtask build-kernel): Debian's
        # linux-source-6.12 (a .tar.xz) built with make; flex, bison, bc for
        # Kconfig and the build, libelf-dev for objtool, libssl-dev for the
        # certificate tools, dwarves (pahole) for CONFIG_DEBUG_INFO_BTF.
        want+=(flex bison bc libssl-dev dwarves)
    fi
    local missing=()
    for pkg in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "kgate: installing missing packages: ${missing[*]}" >&2
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        # Once per shell: scripts/test.sh installs in two steps.
        if [[ -z ${KGATE_APT_UPDATED:-} ]]; then
            "${sudo[@]}" apt-get update -qq
            KGATE_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    if ! command -v cargo >/dev/null; then
        echo "kgate: cargo not found: install a Rust toolchain (https://rustup.rs), then rerun" >&2
        exit 1
    fi
    if [[ ${1:-build} == test ]] && ! cargo fuzz --version >/dev/null 2>&1; then
        # The fuzz targets' short CI run (scripts/fuzz.sh), from crates.io.
        echo "kgate: installing cargo-fuzz (cargo install --locked cargo-fuzz)" >&2
        cargo install --locked --quiet cargo-fuzz >&2
    fi
}
