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
# The fuzz targets (fuzz/, run by scripts/fuzz.sh) must keep compiling, for
# the host's own target as cargo-fuzz builds them (libFuzzer is C++, which
# musl-tools cannot compile).
cargo check --manifest-path fuzz/Cargo.toml --quiet --target "$(rustc -vV | sed -n 's/^host: //p')"
cargo test --workspace
