#!/usr/bin/env bash
# Runs the scheduler benchmarks (P3-P6, R1, R2 of DESIGN.md; the targets of
# issue 11) from an existing build/ and prints their figures. Builds nothing:
# build first with
#   cmake -S . -B build && make -C build -j2
# sched_share_bench and sched_priority_wait_bench run every workload twice in
# the same run: natively on simgpu (its own time slicing, no LD_PRELOAD, no
# vgpud) and under vgpu, and print native, vgpu and the ratio side by side.
# sched_scale_bench and sched_kill_bench measure vgpud itself (registrations,
# grants, crash recovery): they have no native counterpart.
#
# usage: benchmarks/run_sched_benchmarks.sh [--repeat N] [--duration SECONDS] [--scenarios a,b,...]
#   --repeat N      runs of each share scenario (default 3; the issue-11 figure is --repeat 10)
#   --duration S    seconds per run (default 5)
#   --scenarios     a subset of sat2,sat4,sat8,batch8,sync2ms,sync200us,small20us,mixed
#   --only-shares   run sched_share_bench only
# Each benchmark exits non-zero when it misses a target; this script runs them
# all, prints a summary of every SUMMARY line, and exits non-zero if any
# missed. With the defaults it takes about 10 minutes.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bin"
repeat=3
duration=5
scenarios=""
only_shares=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --scenarios) scenarios="$2"; shift 2 ;;
    --only-shares) only_shares=1; shift ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
  esac
done
status=0
for b in sched_share_bench sched_priority_wait_bench sched_scale_bench sched_kill_bench vgpu-workload; do
  if [ ! -x "$bin/$b" ]; then
    echo "missing $bin/$b: build the tree first (cmake -S . -B build && make -C build -j2)" >&2
    exit 2
  fi
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
  echo "==== $* ===="
  "$@" | tee -a "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "==== $1: a target was missed (exit $rc) ===="; status=1; }
  echo
}
share_args=(--duration "$duration" --repeat "$repeat")
[ -n "$scenarios" ] && share_args+=(--scenarios "$scenarios")
run "$bin/sched_share_bench" "${share_args[@]}"
if [ "$only_shares" = 0 ]; then
  run "$bin/sched_priority_wait_bench" --period-ms 20 --kernel-us 500 --count 300
  run "$bin/sched_scale_bench" --clients 512 --seconds 5
  run "$bin/sched_kill_bench" --kills 30 --seed 1 --down-ms 500
fi
echo "==== summary: native vs vgpu (one run of this script) ===="
grep -E '^(SUMMARY|P5 side by side|P5 high-priority wait)' "$log"
exit $status
