#!/usr/bin/env bash
# Runs the scheduler benchmarks (P3-P6, R1, R2 of DESIGN.md) from an existing
# build/ and prints their figures. Builds nothing: build first with
#   cmake -S . -B build && make -C build -j2
# Each benchmark exits non-zero when it misses its target; this script runs
# them all and exits non-zero if any did. Takes about 2 minutes.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bin"
status=0
for b in sched_share_bench sched_priority_wait_bench sched_scale_bench sched_kill_bench; do
  if [ ! -x "$bin/$b" ]; then
    echo "missing $bin/$b: build the tree first (cmake -S . -B build && make -C build -j2)" >&2
    exit 2
  fi
done
run() {
  echo "==== $* ===="
  "$@" || { echo "==== $1: a target was missed (exit $?) ===="; status=1; }
  echo
}
run "$bin/sched_share_bench" --duration 10
run "$bin/sched_priority_wait_bench" --period-ms 20 --kernel-us 500 --count 300
run "$bin/sched_scale_bench" --clients 512 --seconds 5
run "$bin/sched_kill_bench" --kills 30 --seed 1 --down-ms 500
exit $status
