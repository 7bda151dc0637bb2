#!/usr/bin/env bash
# Installs what building and testing skiff needs on a fresh Debian machine of
# this kind (run as root). Cheap when everything is already there.
#   scripts/deps.sh            # run + test dependencies
#   scripts/deps.sh bench      # plus the peer runtimes bench/start.sh compares with
set -euo pipefail
pkgs=(busybox-static skopeo docker-registry apache2-utils umoci buildah jq util-linux systemd-container containernetworking-plugins iptables systemd gcc g++ libc6-dev musl-tools gnupg protobuf-compiler)
[ "${1:-}" = bench ] && pkgs+=(hyperfine crun runc bubblewrap util-linux jq time openssl podman catatonit bc linux-perf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || { echo "deps: cargo not found (this machine kind ships a Rust toolchain)" >&2; exit 1; }
# skiff builds for the musl target named in .cargo/config.toml (musl-tools
# above gives the C parts, zstd and ring, their compiler).
target=$(sed -n 's/^target = "\(.*\)"$/\1/p' "$(dirname "$0")/../.cargo/config.toml")
rustup=$(command -v rustup || echo "$HOME/.cargo/bin/rustup")
if ! "$rustup" target list --installed | grep -qx "$target"; then
  echo "deps: adding the Rust target $target" >&2
  "$rustup" target add "$target" >/dev/null
fi
