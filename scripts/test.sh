#!/usr/bin/env bash
# Every check kgate has: formatting, lints, docs, unit tests, CLI tests on
# fixtures and on real Debian kernel packages, the kernel lab, and a short
# run of every fuzz target. Installs
# what it needs through apt-get and fetches the kernel packages into the lab
# cache (~/.cache/kgate-lab, or $KGATE_LAB_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
deps_install test

step() { printf '\n==> %s\n' "$*" >&2; }

step "fetching Debian kernel packages (cached)"
cargo xtask fetch >&2

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
# Tests that need a Debian kernel, the shared CVE data set (../shared/data,
# always there for CI) or a tool deps_install put there fail instead of
# skipping.
export KGATE_REQUIRE_KERNELS=1
export KGATE_REQUIRE_SHARED_DATA=1
export KGATE_REQUIRE_TOOLS=1
cargo test --workspace 2>&1

step "fuzz: the committed corpus and every past crash input, replayed (stable)"
cargo test --manifest-path fuzz/Cargo.toml --quiet 2>&1

step "fuzz: every target for ${KGATE_FUZZ_SECONDS:-10} s"
# Stable (no sanitizer) unless told otherwise: what a fresh machine has.
KGATE_FUZZ_TOOLCHAIN=${KGATE_FUZZ_TOOLCHAIN:-stable} scripts/fuzz.sh "${KGATE_FUZZ_SECONDS:-10}"
