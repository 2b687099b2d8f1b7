#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build directory and
# runs each for a bounded time on a copy of its seed corpus.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 20 s each, all targets
#
# Environment:
#   VGPU_FUZZ_BUILD_DIR  build directory (default: <repo>/build/fuzz)
#   VGPU_FUZZ_JOBS       parallel compile jobs (default: 2)
#   VGPU_FUZZ_CORPUS_OUT keep each run's grown corpus in this directory
#                        (default: a temp dir, removed; the tree's corpus is
#                        never modified)
#   VGPU_FUZZ_ARGS       extra libFuzzer flags (e.g. "-jobs=4 -workers=4")
#
# Exits 125 (skipped) without clang, 1 on any finding (crash, sanitizer report, timeout, leak);
# libFuzzer leaves the reproducer as crash-*/timeout-*/leak-* in the
# artifacts directory it prints. Prints each target's executions.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_protocol fuzz_config fuzz_state)
build="${VGPU_FUZZ_BUILD_DIR:-$repo/build/fuzz}"
jobs="${VGPU_FUZZ_JOBS:-2}"

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz/run.sh: SKIPPED: $tool not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
    exit 125
  fi
done

t0=$(date +%s)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVGPU_FUZZ=ON -DVGPU_TESTS=OFF >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log" >&2; exit 1; }
echo "fuzz/run.sh: built ${targets[*]} in $(( $(date +%s) - t0 ))s ($build)"

work="$(mktemp -d /tmp/vgpu-fuzz-run-XXXXXX)"
trap 'rm -rf "$work"' EXIT
status=0
for t in "${targets[@]}"; do
  corpus="$work/$t/corpus"
  artifacts="${VGPU_FUZZ_ARTIFACTS:-$work/$t/artifacts}"
  mkdir -p "$corpus" "$artifacts"
  cp "$here/corpus/$t/"* "$corpus/"
  # Earlier findings are replayed first, so a fixed bug stays fixed.
  regress=()
  if [ -d "$here/regressions/$t" ] && [ -n "$(ls -A "$here/regressions/$t")" ]; then
    regress=("$here/regressions/$t")
  fi
  dict=()
  case "$t" in
    fuzz_protocol) dict=(-dict="$here/protocol.dict") ;;
    fuzz_config | fuzz_state) dict=(-dict="$here/yaml.dict") ;;
  esac
  log="$work/$t.log"
  set +e
  # shellcheck disable=SC2086
  "$build/fuzz/$t" "$corpus" "${regress[@]}" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    ${VGPU_FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    echo "fuzz/run.sh: $t FAILED (exit $rc) after ${execs:-?} executions; log tail:" >&2
    tail -60 "$log" >&2
    ls "$artifacts" >&2 || true
    if [ -z "${VGPU_FUZZ_ARTIFACTS:-}" ]; then
      # Keep the reproducers out of the temp dir that is removed.
      keep="$build/findings/$t"
      mkdir -p "$keep"
      cp "$artifacts"/* "$keep/" 2>/dev/null || true
      echo "fuzz/run.sh: reproducers copied to $keep" >&2
    fi
    status=1
  else
    echo "fuzz/run.sh: $t ok: ${execs:-?} executions in ${seconds}s (${rate:-?}/s), ${cov:-cov: ?}"
  fi
  if [ -n "${VGPU_FUZZ_CORPUS_OUT:-}" ]; then
    mkdir -p "$VGPU_FUZZ_CORPUS_OUT/$t"
    cp "$corpus"/* "$VGPU_FUZZ_CORPUS_OUT/$t/"
  fi
done
echo "fuzz/run.sh: total $(( $(date +%s) - t0 ))s"
exit $status
