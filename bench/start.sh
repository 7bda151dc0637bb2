#!/usr/bin/env bash
# Start latency of a one-shot pod, like with like: median wall time of
#   skiff run --net none IMG --exec /bin/true   (image already fetched; pid,
#   mount, uts, ipc and network namespaces, as crun's `runc spec` bundle has;
#   the default log driver; bench/net.sh measures the default network)
#   skiff run --net host IMG --exec /bin/true   (an extra row: no network namespace)
#   skiff run --net none --private-users IMG …  (an extra row: a user namespace of the
#   pod's own, its range claimed from a pool in $work, as `auto` does)
#   skiff run --stage1 fly IMG --exec /bin/true
#   skiff run --stage1 nspawn --net none IMG --exec /bin/true (nspawn --private-network)
# (fly is compared with `unshare --mount chroot`, its floor: a private mount
# namespace and a chroot, nothing else; and with fly-model, the same files
# and mounts as fly makes, in bare syscalls: bench/fly-model.c; ns-model is
# the same for the ns flavor: bench/ns-model.c)
# against crun, runc, bwrap and a bare unshare+chroot floor running /bin/true
# in the same busybox root, all in ONE hyperfine run. Prints each median and
# skiff's ratio to each peer. Run as root:  bench/start.sh   (RUNS=50 WARMUP=5
# ROUNDS=5; BENCH_AGED=1 first creates and deletes 100,000 files in the
# benchmark's filesystem, as on the store of a busy host)
#
# Its files live on a filesystem made for the run (bench_work in common.sh).
# With BENCH_FS=tmp (in /tmp) do not run it right after the test suite or a
# big `rm -rf`: on ext4 without a journal (this VM's root) new inodes skip
# those deleted in the last minutes, one by one, and a pod creates about
# twenty; every command gets slower, skiff most (fly 3.6 ms quiet, 6-10 after).
#
# This host has hybrid cgroups (v1 + a cgroup2 mount with one controller),
# which crun 1.8 refuses; so everything runs inside a private mount namespace
# where /sys/fs/cgroup/unified is unmounted (skiff, which handles both
# layouts, then sees a pure v1 host like the others).
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
# The runs of each tool are spread over ROUNDS hyperfine runs (of all the
# tools, one after the other) and their median taken over all of them: on
# this shared VM the machine's speed drifts by 20-30% within a minute,
# which one long block per tool turned into differences between tools.
ROUNDS=${ROUNDS:-5}
per_round=$(((RUNS + ROUNDS - 1) / ROUNDS))
source "$(dirname "$0")/common.sh"

bench_work skiff-bench
if [ "${BENCH_AGED:-0}" = 1 ]; then
  bench_age
fi
cleanup() {
  # ns-model's parent cgroups (its pods' own are gone with each run).
  rmdir /sys/fs/cgroup/*/skiff-model 2>/dev/null || true
  runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1 || true
  crun --root "$work/crun" delete -f bench-crun >/dev/null 2>&1 || true
  bench_work_cleanup
}
trap cleanup EXIT

bench_image
$skiff run --net none "$id" --exec /bin/true
# --private-users takes its range from subuid files of the run's own (a
# pool of 2048 pods, held until the gc at the end: RUNS up to ~1900).
printf 'subuid-file = "%s/subuid"\nsubgid-file = "%s/subgid"\n' "$work" "$work" >"$work/config.toml"
$skiff --config "$work/config.toml" run --net none --private-users "$id" --exec /bin/true
# The very tree skiff uses as the pod's (only) lower layer is every peer's root.
diff_id=$(jq -r '.layers[0].diff_id' "$work/store/images/${id#sha256:}.json")
root="$work/store/layers/sha256/${diff_id#sha256:}"

# fly's and ns's own syscalls without skiff's code (bench/fly-model.c,
# bench/ns-model.c). (Copied, like skiff's binaries: see bench_work.)
for m in fly-model ns-model; do
  gcc -O2 -static -o "$work/$m.linked" "bench/$m.c"
  cp "$work/$m.linked" "$work/$m"
done
mkdir -p "$work/model/pods/prepare" "$work/model/pods/run" "$work/nsmodel/pods/prepare" "$work/nsmodel/pods/run"

# nspawn writes into its root (mount points): give it a copy, never a layer.
cp -a "$root" "$work/nspawn-root"

bundle="$work/bundle"
mkdir -p "$bundle"
(cd "$bundle" && runc spec)
jq --arg root "$root" '.process.terminal = false | .process.args = ["/bin/true"] | .root = {path: $root, readonly: true}
  | .hostname = "bench"' \
  "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

cat >"$work/inner.sh" <<INNER
set -e
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
for round in \$(seq $ROUNDS); do
hyperfine -N --style basic --warmup $WARMUP --runs $per_round --export-json $work/result-\$round.json \
  -n skiff "$skiff run --net none $id --exec /bin/true" \
  -n skiff-net-host "$skiff run --net host $id --exec /bin/true" \
  -n skiff-userns "$skiff --config $work/config.toml run --net none --private-users $id --exec /bin/true" \
  -n skiff-fly "$skiff run --stage1 fly $id --exec /bin/true" \
  -n skiff-nspawn "$skiff run --stage1 nspawn --net none $id --exec /bin/true" \
  -n crun "crun --root $work/crun run --bundle $bundle bench-crun" \
  -n runc "runc --root $work/runc run --bundle $bundle bench-runc" \
  -n bwrap "bwrap --unshare-pid --unshare-ipc --unshare-uts --unshare-net --bind $root / --proc /proc --dev /dev /bin/true" \
  -n systemd-nspawn "systemd-nspawn -q --register=no --keep-unit --console=pipe --private-network -D $work/nspawn-root /bin/true" \
  -n unshare-chroot "unshare --fork --pid --mount --uts --ipc --net chroot $root /bin/true" \
  -n ns-model "$work/ns-model $work/nsmodel $root" \
  -n fly-model "$work/fly-model $work/model $root" \
  -n unshare-m-chroot "unshare --mount chroot $root /bin/true" >&2
done
INNER
unshare -m --propagation private bash "$work/inner.sh"

echo
printf '%-16s %10s %14s %12s\n' tool "median ms" "skiff / tool" "fly / tool"
# Every round's times of a tool, and their median.
jq -s 'def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  (.[0].results | map(.command)) as $order | [.[].results[]] | group_by(.command)
  | map({command: .[0].command, median: ([.[].times[]] | median)}) | sort_by(.command as $c | $order | index($c))' \
  "$work"/result-*.json >"$work/result.json"
jq -r '. as $r | ($r[] | select(.command == "skiff") | .median) as $s
  | ($r[] | select(.command == "skiff-fly") | .median) as $f
  | $r[] | [.command, (.median * 1000 * 100 | round / 100), ($s / .median * 100 | round / 100),
            ($f / .median * 100 | round / 100)] | @tsv' \
  "$work/result.json" | while IFS=$'\t' read -r name median ratio fly; do
  printf '%-16s %10s %14s %12s\n' "$name" "$median" "$ratio" "$fly"
done
$skiff gc --grace-period 0 >/dev/null
