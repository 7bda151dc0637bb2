#!/usr/bin/env bash
# A store at batch scale: N exited pods (default 1000), each from
#   skiff run --net none IMG --exec /bin/true      (the default log driver)
# then
#   skiff list / skiff list --format json           (median of RUNS runs, hyperfine)
#   skiff gc --grace-period 0                        (once: it removes them all)
# and, when podman is installed, the same with PODMAN_N (default 200)
# exited containers: `podman ps -a` and `podman container prune -f`.
# Prints each time, per pod for gc/prune. Run as root:  bench/scale.sh
# (N=1000 PODMAN_N=200 RUNS=20)
N=${N:-1000}
PODMAN_N=${PODMAN_N:-200}
RUNS=${RUNS:-20}
source "$(dirname "$0")/common.sh"

bench_work skiff-bench-scale
bench_podman
trap bench_cleanup EXIT

bench_image
echo "bench/scale.sh: making $N exited pods" >&2
start=$(date +%s%N)
for _ in $(seq "$N"); do
  $skiff run --net none "$id" --exec /bin/true
done
echo "made $N pods in $(ms_since "$start") ms" >&2
[ "$($skiff list --no-legend | wc -l)" = "$N" ] || { echo "bench/scale.sh: expected $N pods" >&2; exit 1; }

cmds=(-n "skiff list" "$skiff list" -n "skiff list --format json" "$skiff list --format json")
if $have_podman; then
  bench_podman_image
  echo "bench/scale.sh: making $PODMAN_N exited podman containers" >&2
  for _ in $(seq "$PODMAN_N"); do
    # shellcheck disable=SC2086
    "${podman[@]}" run --network=none $ulimits localhost/bench /bin/true
  done
  cmds+=(-n "podman ps -a ($PODMAN_N)" "${podman[*]} ps -a")
else
  echo "bench/scale.sh: podman is not installed; skiff rows only" >&2
fi
hyperfine -N --style basic --warmup 2 --runs "$RUNS" --export-json "$work/result.json" "${cmds[@]}" >&2

start=$(date +%s%N)
$skiff gc --grace-period 0 >/dev/null 2>&1
gc_ms=$(ms_since "$start")
left=$($skiff list --no-legend | wc -l)
if $have_podman; then
  start=$(date +%s%N)
  "${podman[@]}" container prune -f >/dev/null
  prune_ms=$(ms_since "$start")
fi

echo
printf '%-30s %12s\n' what "median ms"
jq -r '.results[] | [.command, (.median * 1000 * 100 | round / 100)] | @tsv' "$work/result.json" \
  | while IFS=$'\t' read -r name median; do printf '%-30s %12s\n' "$name" "$median"; done
printf '%-30s %12s   (%s ms a pod; %s pods left)\n' "skiff gc ($N)" "$gc_ms" \
  "$(echo "scale=2; $gc_ms / $N" | bc)" "$left"
if $have_podman; then
  printf '%-30s %12s   (%s ms a container)\n' "podman container prune ($PODMAN_N)" "$prune_ms" \
    "$(echo "scale=2; $prune_ms / $PODMAN_N" | bc)"
fi
