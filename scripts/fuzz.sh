#!/usr/bin/env bash
# The fuzz targets in fuzz/, with libFuzzer and AddressSanitizer.
#   scripts/fuzz.sh [SECONDS] [TARGET...]  fuzz each target SECONDS (default 60)
#   scripts/fuzz.sh --replay [TARGET...]   run every kept input once (CI)
#   scripts/fuzz.sh --keep [TARGET...]     merge what runs found into the kept corpus
# fuzz/seeds/TARGET is the corpus kept in git: inputs that together reach
# every edge the fuzzer has seen, so a new run starts where the last one
# ended and CI replays them all. fuzz/corpus/TARGET (ignored by git) is a
# run's working corpus; --keep minimises it into fuzz/seeds with
# libFuzzer's -merge=1. cargo-fuzz needs nightly features; this machine has
# one stable toolchain, so RUSTC_BOOTSTRAP=1 enables them. Run as root:
# unpack_layer chowns. SKIFF_FUZZ_SANITIZER=none builds without ASan.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || . "$HOME/.cargo/env"
mode=run
case "${1:-}" in
  --replay) mode=replay; shift ;;
  --keep) mode=keep; shift ;;
  *) secs=${1:-60}; shift || true ;;
esac
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
cd fuzz
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz run -s "${SKIFF_FUZZ_SANITIZER:-address}" "$@"; }
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  case $mode in
    run)
      echo "fuzz: $t for ${secs}s" >&2
      fuzz "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 ;;
    replay)
      echo "fuzz: replaying $(ls "seeds/$t" | wc -l) kept inputs of $t" >&2
      fuzz "$t" "seeds/$t" -- -runs=0 ;;
    keep)
      rm -rf "seeds/$t.new" && mkdir "seeds/$t.new"
      fuzz "$t" "seeds/$t.new" "seeds/$t" "corpus/$t" -- -merge=1
      rm -rf "seeds/$t" && mv "seeds/$t.new" "seeds/$t"
      echo "fuzz: kept $(ls "seeds/$t" | wc -l) inputs of $t ($(du -sh "seeds/$t" | cut -f1))" >&2 ;;
  esac
done
