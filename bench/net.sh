#!/usr/bin/env bash
# What a network costs at pod start: median wall time of
#   skiff run --net host|none|default IMG --exec /bin/true
# and, when podman is installed (`scripts/deps.sh bench` installs it),
#   podman run --rm --network=none|bridge IMG /bin/true
# in ONE hyperfine run, then each tool's cost of its CNI bridge network over
# its own network-less start, and skiff's cost as a ratio of podman's.
# Run as root:  bench/net.sh   (RUNS=30 WARMUP=3)
#
# podman needs, on this host kind (no systemd as PID 1, no CAP_SYS_RESOURCE,
# hybrid cgroups that crun refuses): cgroupfs, file events, runc, explicit
# rlimits; its storage and runtime state live in the work directory.
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
source "$(dirname "$0")/common.sh"

bench_work skiff-bench-net
podman=(podman --root "$work/podman/root" --runroot "$work/podman/run" --cgroup-manager=cgroupfs
  --events-backend=file --runtime runc)
cleanup() {
  if command -v podman >/dev/null; then
    "${podman[@]}" rm -af >/dev/null 2>&1 || true
    "${podman[@]}" system reset -f >/dev/null 2>&1 || true
    umount -R "$work/podman" >/dev/null 2>&1 || true
  fi
  "$SKIFF_BIN" --dir "$work/store" gc --grace-period 0 >/dev/null 2>&1 || true
  bench_work_cleanup
}
trap cleanup EXIT

bench_image
$skiff run --net default "$id" --exec /bin/true

cmds=(-n skiff-host "$skiff run --net host $id --exec /bin/true"
  -n skiff-none "$skiff run --net none $id --exec /bin/true"
  -n skiff-default "$skiff run --net default $id --exec /bin/true")
if command -v podman >/dev/null; then
  $skiff image export "$id" "oci-archive:$work/bench.tar:bench"
  "${podman[@]}" load -q -i "$work/bench.tar" >/dev/null
  ulimits="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
  "${podman[@]}" run --rm --network=bridge $ulimits localhost/bench /bin/true
  cmds+=(-n podman-none "${podman[*]} run --rm --network=none $ulimits localhost/bench /bin/true"
    -n podman-bridge "${podman[*]} run --rm --network=bridge $ulimits localhost/bench /bin/true")
else
  echo "bench/net.sh: podman is not installed; skiff rows only" >&2
fi
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/result.json" "${cmds[@]}" >&2

echo
printf '%-14s %10s\n' tool "median ms"
jq -r '.results[] | [.command, (.median * 1000 * 100 | round / 100)] | @tsv' "$work/result.json" \
  | while IFS=$'\t' read -r name median; do printf '%-14s %10s\n' "$name" "$median"; done
jq -r '.results as $r | def m(n): ($r[] | select(.command == n) | .median * 1000);
  "skiff: --net default adds \(m("skiff-default") - m("skiff-none") | . * 100 | round / 100) ms over --net none",
  (if any($r[]; .command == "podman-bridge") then
     "podman: --network=bridge adds \(m("podman-bridge") - m("podman-none") | . * 100 | round / 100) ms over --network=none",
     "ratio skiff / podman (cost of the bridge network): \((m("skiff-default") - m("skiff-none")) / (m("podman-bridge") - m("podman-none")) | . * 100 | round / 100)"
   else empty end)' "$work/result.json"
