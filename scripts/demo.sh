#!/usr/bin/env bash
# Builds skiff and runs one real pod end to end, without network: the image is
# made here from Debian's busybox-static. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
scripts/deps.sh
cargo build --release --workspace --quiet
skiff="$(scripts/release-dir.sh)/skiff"
export SKIFF_DIR=${SKIFF_DIR:-/var/lib/skiff}
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/busybox-rootfs.sh "$work/rootfs"
echo "+ skiff image build --from-dir $work/rootfs --tag busybox:demo --cmd /bin/sh"
$skiff image build --from-dir "$work/rootfs" --tag busybox:demo --cmd /bin/sh
echo "+ skiff run busybox:demo --exec /bin/sh -- -c 'echo hello from \$(hostname); exit 3'"
set +e
$skiff run busybox:demo --exec /bin/sh -- -c 'echo hello from $(hostname), I am pid $$ under $(cat /proc/1/comm); exit 3'
echo "exit code: $?"
set -e
echo "+ skiff list"
$skiff list
echo "+ skiff image list"
$skiff image list
echo "+ skiff gc --grace-period 0"
$skiff gc --grace-period 0 >/dev/null
$skiff list --no-legend | wc -l | xargs echo "pods left:"
