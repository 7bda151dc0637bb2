# shellcheck shell=bash
# Set-up shared by the benchmarks (source it): the repository root as cwd,
# cargo on PATH, the peers installed, skiff built in release mode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[1]}")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
scripts/deps.sh bench
cargo build --release --workspace --quiet
SKIFF_BIN="$(scripts/release-dir.sh)/skiff"
