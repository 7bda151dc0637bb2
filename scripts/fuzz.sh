#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for SECONDS (default 60) with libFuzzer.
# cargo-fuzz needs nightly features; this machine has one stable toolchain,
# so RUSTC_BOOTSTRAP=1 enables them, and no sanitizer is used (-s none).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (as root: unpack_layer chowns)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(unpack_layer image_reference pod_manifest pod_spec oci_layout registry_challenge network_config log_records kube_yaml signature_policy signature_inputs cri_requests)
cd fuzz
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${secs}s" >&2
  RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" -- -max_total_time="$secs"
done
