#!/usr/bin/env bash
# The crash matrices (docs/reliability.md): every failpoint of the CLI, the
# flavors, the app API and the CRI server killed (SIGKILL) and failed (EIO)
# in turn, with the tables of outcomes printed. Failpoints
# exist only in builds with debug assertions, which this builds.
#   scripts/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
[ "$(id -u)" = 0 ] || { echo "faults.sh: the matrix runs pods and needs root" >&2; exit 1; }
cargo build --workspace --quiet
cargo test -p skiff-tests --test faults -- --nocapture
cargo test -p skiff-tests --test cri a_server_killed -- --nocapture
