#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests and the
# end-to-end tests (real pods, so run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
scripts/deps.sh
[ "$(id -u)" = 0 ] || { echo "test.sh: the end-to-end tests run pods and need root" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --quiet
cargo test --workspace
# Every input the fuzz runs kept (fuzz/seeds) once more, with ASan: what a
# long run found and was fixed stays fixed, and the targets still build.
scripts/fuzz.sh --replay
