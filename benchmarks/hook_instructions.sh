#!/bin/sh
# Instructions libvgpu.so adds to each cuLaunchKernel call (DESIGN.md P1),
# counted by callgrind, because the launch wrapper's cost (a few ns) is far
# below what wall-clock timing resolves on simgpu (its own launch costs ~1 µs
# and varies by tens of ns between runs).
#
# tests/programs/hook_launch_loop makes N launches inside one function,
# launch_loop(); callgrind counts only the instructions executed inside it, in
# the launching thread (--toggle-collect, --separate-threads). The program runs
# with and without LD_PRELOAD=libvgpu.so (no daemon configured, a quota set so
# the standalone ledger is live), each at two launch counts; the difference of
# the two counts cancels fixed costs (the final synchronize, first-call work):
#
#   added per launch = ((hooked(N2) - hooked(N1)) - (direct(N2) - direct(N1))) / (N2 - N1)
#
# The launching thread's total also contains simgpu's enqueue, whose
# instruction count varies a little from run to run (its locks and the
# executor thread's wake-ups depend on scheduling), so the script also
# reports the exact figure: instructions executed in libvgpu.so's own code
# per launch (callgrind's self cost of every function of libvgpu.so, summed).
# (libvgpu.so and the core it loads, libvgpu-core.so: both are the hook).
# The two agree when the hook calls nothing outside itself on this path.
#
# The ns figure assumes 1 instruction per cycle at this machine's current
# clock: an order-of-magnitude estimate, not a measurement.
#
# Usage: benchmarks/hook_instructions.sh [BUILD_DIR]   (default: build)
#        N1, N2 environment variables override the launch counts.
set -eu

build=$(cd "${1:-build}" && pwd)
n1=${N1:-10000}
n2=${N2:-30000}
program="$build/tests/programs/hook_launch_loop"
hook="$build/lib/libvgpu.so"
for f in "$program" "$hook" "$build/simgpu/libcuda.so.1"; do
  [ -e "$f" ] || { echo "missing $f: build first" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

work=$(mktemp -d)
state="hookinstr-$$"
trap 'rm -rf "$work"; rm -f "/dev/shm/simgpu-$state"' EXIT

# count MODE N: instructions executed inside launch_loop() by the main thread.
count() {
  out="$work/cg.$1.$2"
  preload=""
  [ "$1" = hooked ] && preload="$hook"
  env SIMGPU_STATE="$state" SIMGPU_MEMORY=1Gi LD_LIBRARY_PATH="$build/simgpu" \
      LD_PRELOAD="$preload" VGPU_MEMORY_LIMIT=1Gi \
      valgrind --tool=callgrind --separate-threads=yes --toggle-collect=launch_loop \
      --callgrind-out-file="$out" "$program" "$2" >"$work/log" 2>&1 ||
    { cat "$work/log" >&2; exit 1; }
  sed -n 's/^totals: //p' "$out-01"
}

# self MODE N: instructions executed in libvgpu.so's own functions (hooked run).
self_in_hook() {
  callgrind_annotate --threshold=100 "$work/cg.hooked.$1-01" |
    awk '/libvgpu(-core)?\.so\]$/ { gsub(",", "", $1); sum += $1 } END { print sum + 0 }'
}

d1=$(count direct "$n1"); d2=$(count direct "$n2")
h1=$(count hooked "$n1"); h2=$(count hooked "$n2")
s1=$(self_in_hook "$n1"); s2=$(self_in_hook "$n2")
mhz=$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

awk -v n1="$n1" -v n2="$n2" -v d1="$d1" -v d2="$d2" -v h1="$h1" -v h2="$h2" -v s1="$s1" -v s2="$s2" -v mhz="$mhz" 'BEGIN {
  direct = (d2 - d1) / (n2 - n1); hooked = (h2 - h1) / (n2 - n1); added = hooked - direct;
  printf "launches: %d and %d\n", n1, n2;
  printf "instructions in launch_loop: direct %d, %d; hooked %d, %d\n", d1, d2, h1, h2;
  printf "per cuLaunchKernel: direct %.1f, hooked %.1f, added by the hook %.1f instructions\n", direct, hooked, added;
  own = (s2 - s1) / (n2 - n1);
  printf "per cuLaunchKernel: executed in libvgpu.so itself %.1f instructions (exact)\n", own;
  if (mhz > 0) printf "estimate at 1 instruction/cycle, %.0f MHz: %.1f ns (totals), %.1f ns (libvgpu.so itself)\n", mhz, added * 1000 / mhz, own * 1000 / mhz;
}'
