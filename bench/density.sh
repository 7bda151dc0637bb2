#!/usr/bin/env bash
# How many pods a host holds: starts N pods (default 500) running `sleep`
#   skiff run --net none IMG --exec /bin/sleep -- 3600     (ns, in the background)
# and reports, per pod: the Pss of skiff's own processes (the flavor's
# supervisor and the pod's init; the app's sleep is not counted), the kernel
# memory the pod costs (the growth of Slab + KernelStack + PageTables in
# /proc/meminfo, divided by N), the time to start them all (until `skiff
# list` shows N running) and to stop them all (`skiff stop` of every pod,
# until every `skiff run` has exited); then that nothing is left (processes,
# cgroups). The same, when podman is installed, for PODMAN_N (default 100)
# `podman run -d --init` containers (catatonit as PID 1 passes SIGTERM on,
# as skiff's init does): conmon's Pss per container, catatonit's beside it.
# Run as root:  bench/density.sh   (N=500 PODMAN_N=100)
N=${N:-500}
PODMAN_N=${PODMAN_N:-100}
source "$(dirname "$0")/common.sh"

bench_work skiff-bench-density
bench_podman
runs=()
cleanup() {
  if [ ${#runs[@]} -gt 0 ]; then
    kill "${runs[@]}" 2>/dev/null || true
    wait "${runs[@]}" 2>/dev/null || true
  fi
  bench_cleanup
}
trap cleanup EXIT

# Slab + KernelStack + PageTables, in kB.
kernel_kb() { awk '/^(Slab|KernelStack|PageTables):/ {s += $2} END {print s}' /proc/meminfo; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
running() { $skiff list --format json | jq '[.[] | select(.state == "running")] | length'; }

bench_image
sync
echo 3 >/proc/sys/vm/drop_caches
kernel_before=$(kernel_kb)
echo "bench/density.sh: starting $N pods" >&2
start=$(date +%s%N)
for _ in $(seq "$N"); do
  $skiff run --net none "$id" --exec /bin/sleep -- 3600 </dev/null >/dev/null 2>&1 &
  runs+=($!)
done
until [ "$(running)" = "$N" ]; do sleep 0.1; done
start_ms=$(ms_since "$start")
sleep 1
kernel_after=$(kernel_kb)

# The init is the pod's `pid`; the supervisor is its parent.
sup=0 init=0
for pid_file in "$work"/store/pods/run/*/pid; do
  p=$(cat "$pid_file")
  pp=$(awk '/^PPid:/ {print $2}' "/proc/$p/status")
  init=$((init + $(pss_kb "$p")))
  sup=$((sup + $(pss_kb "$pp")))
done

mapfile -t uuids < <($skiff list --format json | jq -r '.[].uuid')
start=$(date +%s%N)
$skiff stop "${uuids[@]}" >/dev/null
wait "${runs[@]}" 2>/dev/null || true
runs=()
stop_ms=$(ms_since "$start")
left_procs=$(pgrep -c -x skiff-init || true)
left_cgroups=$(find /sys/fs/cgroup -maxdepth 3 -path '*/skiff/*' -type d 2>/dev/null | wc -l)

podman_line=""
if $have_podman; then
  bench_podman_image
  echo "bench/density.sh: starting $PODMAN_N podman containers" >&2
  pk_before=$(kernel_kb)
  start=$(date +%s%N)
  for _ in $(seq "$PODMAN_N"); do
    # shellcheck disable=SC2086
    "${podman[@]}" run -d --init --network=none $ulimits localhost/bench /bin/sleep 3600 >/dev/null
  done
  pstart_ms=$(ms_since "$start")
  sleep 1
  pk_after=$(kernel_kb)
  conmon=0
  for p in $(pgrep -x conmon) $(pgrep -x catatonit); do conmon=$((conmon + $(pss_kb "$p"))); done
  start=$(date +%s%N)
  "${podman[@]}" stop -a -t 10 >/dev/null
  pstop_ms=$(ms_since "$start")
  podman_line=$(printf '%-10s %6s %14s %16s %14s %12s' podman "$PODMAN_N" "$((conmon / PODMAN_N))" \
    "$(((pk_after - pk_before) / PODMAN_N))" "$pstart_ms" "$pstop_ms")
fi

echo
printf '%-10s %6s %14s %16s %14s %12s\n' runtime pods "Pss kB / pod" "kernel kB / pod" "start all ms" "stop all ms"
printf '%-10s %6s %14s %16s %14s %12s\n' skiff "$N" "$(((sup + init) / N))" \
  "$(((kernel_after - kernel_before) / N))" "$start_ms" "$stop_ms"
[ -n "$podman_line" ] && echo "$podman_line"
echo "skiff per pod: supervisor $((sup / N)) kB Pss, init $((init / N)) kB Pss"
echo "left after stop: $left_procs skiff-init processes, $left_cgroups pod cgroups"
