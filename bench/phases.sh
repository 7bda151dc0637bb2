#!/usr/bin/env bash
# Where the start of a pod goes (ns with --net none, and fly), phase by phase: the median time from
# bash's fork to skiff's exec, to the flavor's exec, to its fork of the app,
# to the app's exec and exit, and to the flavor's exit; beside the same for
# fly-model (bench/fly-model.c) and the `unshare --mount chroot` floor. The
# phases come from the kernel's sched_process_{fork,exec,exit} events
# (perf), so the tools run unchanged and untraced. Run as root:
#   bench/phases.sh        (RUNS=200)
# bench/start.sh gives the ratios; this says which stage a change moved.
RUNS=${RUNS:-200}
source "$(dirname "$0")/common.sh"

bench_work skiff-phases
trap bench_work_cleanup EXIT
bench_image
diff_id=$(jq -r '.layers[0].diff_id' "$work/store/images/${id#sha256:}.json")
root="$work/store/layers/sha256/${diff_id#sha256:}"
gcc -O2 -static -o "$work/fly-model.linked" bench/fly-model.c
cp "$work/fly-model.linked" "$work/fly-model"
mkdir -p "$work/model/pods/prepare" "$work/model/pods/run"
for _ in 1 2 3 4 5; do
  $skiff run --stage1 fly "$id" --exec /bin/true
  "$work/fly-model" "$work/model" "$root"
done

record() {
  perf record -q -o "$work/$1.data" -a \
    -e sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit \
    -- bash -c "for i in \$(seq $RUNS); do $2; done" >/dev/null
  perf script -i "$work/$1.data" >"$work/$1.txt" 2>/dev/null
  echo "$1:"
  python3 bench/phases.py "$work/$1.txt"
}
# As in start.sh, inside a private mount namespace.
export -f record
export work RUNS
unshare -m --propagation private bash -c "
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
record skiff-ns '$skiff run --net none $id --exec /bin/true'
record unshare-chroot 'unshare --fork --pid --mount --uts --ipc --net chroot $root /bin/true'
record skiff-fly '$skiff run --stage1 fly $id --exec /bin/true'
record fly-model '$work/fly-model $work/model $root'
record unshare-m-chroot 'unshare --mount chroot $root /bin/true'"
$skiff gc --grace-period 0 >/dev/null
