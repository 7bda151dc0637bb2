#!/usr/bin/env bash
# Pull + unpack of a ~100 MB, 4-layer image (with a whiteout and an opaque
# directory) from a local registry: skiff fetch against skopeo copy + umoci
# unpack, and podman pull when podman is installed, in ONE hyperfine run;
# prints medians, skiff's ratio to each, and skiff's peak RSS while pulling.
# Run as root:  bench/pull.sh   (RUNS=10 WARMUP=2)
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
source "$(dirname "$0")/common.sh"
skiff="$SKIFF_BIN"

work=$(mktemp -d /tmp/skiff-pull-bench.XXXXXX)
reg_pid=
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the image: busybox, 80 MiB data, a whiteout, an opaque directory
EPOCH=1700000000
mklayer() { # SRC OUT
  (cd "$1" && find . -mindepth 1 | sed 's#^\./##' | LC_ALL=C sort) >"$2.list"
  tar -C "$1" --create --file "$2" --format=posix --numeric-owner --owner=0 --group=0 --mtime="@$EPOCH" \
    --pax-option=delete=atime,delete=ctime --no-recursion --verbatim-files-from -T "$2.list"
}
scripts/busybox-rootfs.sh "$work/l1"
mkdir -p "$work/l2/data/blobs" "$work/l2/data/small"
# Incompressible, deterministic bytes; openssl dies of SIGPIPE when head has enough.
{ openssl enc -aes-256-ctr -nosalt -pass pass:skiff-bench -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c $((80 << 20)) |
  (cd "$work/l2/data/blobs" && split -b 1M -d -a 2 - blob-)
for d in $(seq -w 0 19); do
  mkdir -p "$work/l2/data/small/d$d"
  for f in $(seq -w 0 99); do printf 'small file %s/%s\n' "$d" "$f" >"$work/l2/data/small/d$d/f$f"; done
done
mkdir -p "$work/l3/data/blobs" && : >"$work/l3/data/blobs/.wh.blob-79"
mkdir -p "$work/l4/data/small/d00" && : >"$work/l4/data/small/d00/.wh..wh..opq" && echo replaced >"$work/l4/data/small/d00/NEW"
umoci init --layout "$work/layout"
umoci new --image "$work/layout:big"
for l in l1 l2 l3 l4; do
  mklayer "$work/$l" "$work/$l.tar"
  umoci raw add-layer --image "$work/layout:big" "$work/$l.tar"
done
umoci config --image "$work/layout:big" --config.cmd /bin/sh

# ---- a local registry
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
ref="127.0.0.1:$port/bench/big:1"
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" "docker://$ref"
size=$(du -sm "$work/registry" | cut -f1)
echo "image: 4 layers, ${size} MiB in the registry, $ref" >&2

# ---- one hyperfine run
names=(skiff skopeo+umoci)
cmds=("$skiff --dir $work/s fetch -q docker://$ref"
  "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/o:1 && umoci unpack --image $work/o:1 $work/b")
preps=("rm -rf $work/s; sync" "rm -rf $work/o $work/b; sync")
if command -v podman >/dev/null; then
  names+=(podman-pull)
  cmds+=("podman --cgroup-manager=cgroupfs --events-backend=file --root $work/p/root --runroot $work/p/run pull -q --tls-verify=false $ref")
  preps+=("rm -rf $work/p; sync")
fi
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" --prepare "${preps[$i]}" "${cmds[$i]}"); done
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/result.json" "${args[@]}" >&2

rm -rf "$work/s"
rss=$( { /usr/bin/time -f '%M' "$skiff" --dir "$work/s" fetch -q "docker://$ref" >/dev/null; } 2>&1 | tail -1)

echo
printf '%-14s %10s %14s\n' tool "median ms" "skiff / tool"
jq -r '.results as $r | ($r[] | select(.command == "skiff") | .median) as $s
  | $r[] | [.command, (.median * 1000 | round), ($s / .median * 100 | round / 100)] | @tsv' "$work/result.json" |
  while IFS=$'\t' read -r name median ratio; do printf '%-14s %10s %14s\n' "$name" "$median" "$ratio"; done
echo "skiff peak RSS while pulling: ${rss} kB"
