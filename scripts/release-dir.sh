#!/usr/bin/env bash
# Where `cargo build --release` puts skiff's binaries: .cargo/config.toml
# names the target (so that they link statically), and cargo then builds into
# target/<host tuple>/release.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release"
