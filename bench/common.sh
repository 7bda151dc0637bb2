# shellcheck shell=bash
# Set-up shared by the benchmarks (source it): the repository root as cwd,
# cargo on PATH, the peers installed, skiff built in release mode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[1]}")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
scripts/deps.sh bench
cargo build --release --workspace --quiet
SKIFF_BIN="$(scripts/release-dir.sh)/skiff"

# bench_work NAME: makes $work, where a benchmark keeps everything, on a
# filesystem of its own, new for each run (BENCH_FS=tmp: a directory in /tmp
# instead). This VM's root is ext4 without a journal, which makes every new
# inode skip, one by one, those deleted in the last minutes: a run after the
# test suite or the previous run's cleanup was up to twice as slow, skiff
# most (a pod creates about twenty inodes), and which runs were hit varied.
bench_work() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  if [ "${BENCH_FS:-fresh}" = fresh ]; then
    # (The caller's cleanup trap is not set yet: leave nothing on failure.)
    truncate -s 4G "$work.img" && mkfs.ext4 -q -O ^has_journal "$work.img" && mount -o loop "$work.img" "$work" ||
      { rm -rf "$work" "$work.img"; echo "bench: cannot make a filesystem for $work (BENCH_FS=tmp avoids it)" >&2; return 1; }
  fi
  # skiff and its flavors run from copies in $work/bin, as installed
  # binaries would: right after cargo relinked them, the binaries in
  # target/ started slower than copies of the same files (stage0 of a fly
  # run 2.06 against 1.66 ms, 200 runs each) until the page cache was
  # dropped, after which both were equal. The peers are installed files.
  mkdir "$work/bin"
  local b
  for b in "$(dirname "$SKIFF_BIN")"/skiff "$(dirname "$SKIFF_BIN")"/skiff-stage1-* "$(dirname "$SKIFF_BIN")"/skiff-bridge; do
    case $b in *.d) ;; *) cp "$b" "$work/bin/" ;; esac
  done
  SKIFF_BIN=$work/bin/skiff
}

# bench_age: makes $work's filesystem as a busy host's store is: 100,000
# files created and deleted in it (ext4 without a journal then hands new
# inodes out slowly, one by one past the freed ones, for minutes).
bench_age() {
  echo "bench: ageing $work (100,000 files created and deleted)" >&2
  mkdir "$work/age"
  local d
  for d in $(seq 100); do
    mkdir "$work/age/$d"
    (cd "$work/age/$d" && seq 1000 | xargs touch)
  done
  rm -rf "$work/age"
}

# bench_image: the benchmarks' busybox image, built into $work/store;
# sets $skiff (the skiff command line on that store) and $id.
bench_image() {
  skiff="$SKIFF_BIN --dir $work/store"
  scripts/busybox-rootfs.sh "$work/rootfs"
  id=$($skiff image build -q --from-dir "$work/rootfs" --tag bench:1)
}

# Ends what bench_work made (the loop device goes with the unmount).
bench_work_cleanup() {
  if mountpoint -q "$work"; then
    umount "$work"
  fi
  rm -rf "$work" "$work.img"
}

# bench_podman: podman with its storage and state in $work, set up for this
# host kind (no systemd as PID 1, no CAP_SYS_RESOURCE, hybrid cgroups that
# crun refuses): cgroupfs, file events, runc, explicit rlimits. Sets
# $podman (an array), $ulimits and $have_podman.
bench_podman() {
  podman=(podman --root "$work/podman/root" --runroot "$work/podman/run" --cgroup-manager=cgroupfs
    --events-backend=file --runtime runc)
  ulimits="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
  have_podman=false
  command -v podman >/dev/null && have_podman=true
  return 0
}

# bench_podman_image: the benchmark's image ($id), exported by skiff and
# loaded into podman as localhost/bench.
bench_podman_image() {
  $skiff image export "$id" "oci-archive:$work/bench.tar:bench"
  "${podman[@]}" load -q -i "$work/bench.tar" >/dev/null
}

# bench_cleanup: everything a benchmark made: podman's containers and
# storage, the store's pods, the work directory.
bench_cleanup() {
  if ${have_podman:-false}; then
    "${podman[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    "${podman[@]}" system reset -f >/dev/null 2>&1 || true
    umount -R "$work/podman" >/dev/null 2>&1 || true
  fi
  "$SKIFF_BIN" --dir "$work/store" gc --grace-period 0 >/dev/null 2>&1 || true
  bench_work_cleanup
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
