#!/usr/bin/env bash
# What a network costs at pod start: median wall time of
#   skiff run --net host|none|default IMG --exec /bin/true
# and, when podman is installed (`scripts/deps.sh bench` installs it),
#   podman run --rm --network=none|bridge IMG /bin/true
# in ONE hyperfine run, then each tool's cost of its CNI bridge network over
# its own network-less start, and skiff's cost as a ratio of podman's.
# Run as root:  bench/net.sh   (RUNS=30 WARMUP=3)
# (podman is set up for this host kind by bench_podman in common.sh.)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
source "$(dirname "$0")/common.sh"

bench_work skiff-bench-net
bench_podman
trap bench_cleanup EXIT

bench_image
$skiff run --net default "$id" --exec /bin/true

cmds=(-n skiff-host "$skiff run --net host $id --exec /bin/true"
  -n skiff-none "$skiff run --net none $id --exec /bin/true"
  -n skiff-default "$skiff run --net default $id --exec /bin/true")
if $have_podman; then
  bench_podman_image
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
