#!/usr/bin/env bash
# The crash matrix (docs/reliability.md): every failpoint killed (SIGKILL)
# and failed (EIO) in turn, with the table of outcomes printed. Failpoints
# exist only in builds with debug assertions, which this builds.
#   scripts/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
[ "$(id -u)" = 0 ] || { echo "faults.sh: the matrix runs pods and needs root" >&2; exit 1; }
cargo build --workspace --quiet
cargo test -p skiff-tests --test faults -- --nocapture
