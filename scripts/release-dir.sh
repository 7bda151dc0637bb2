#!/usr/bin/env bash
# Where `cargo build --release` puts skiff's binaries: .cargo/config.toml
# names the target (static musl binaries), and cargo then builds into
# target/<target>/release.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(sed -n 's/^target = "\(.*\)"$/\1/p' .cargo/config.toml)
echo "$PWD/target/$target/release"
