#!/usr/bin/env bash
# Build kgate (release) and survey this host. Extra arguments go to
# `kgate survey`, e.g. `scripts/survey.sh --format json`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
deps_install build
cargo build --release --quiet --package kgate
exec target/release/kgate survey "$@"
