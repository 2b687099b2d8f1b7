#!/bin/sh
# What libvgpu.so costs a program that never uses CUDA (issue 11 item 5): in
# Kubernetes it is preloaded into every process of a container through
# /etc/ld.so.preload (shells, Python start-up, health checks). Target: an exec
# of such a program under the preload takes <= 1.05x the exec without it.
#
# Times ROUNDS execs of PROGRAM (default /bin/true) without LD_PRELOAD, with
# build/lib/libvgpu.so, and with an empty library (the floor of any preload:
# mapping one more file), alternating in one run; prints medians of wall and
# CPU time and the ratios (benchmarks/preload_exec_bench.c). Extra libraries
# to compare (e.g. an older libvgpu.so) can be given as arguments.
# The verdict uses the CPU-time ratio (the child's own runtime: on a busy
# machine wall time mostly measures waiting for a CPU); both are printed.
#
# Usage: benchmarks/preload_exec_bench.sh [BUILD_DIR] [LIBRARY...]
#        ROUNDS (default 500), PROGRAM (default /bin/true), CC.
# Exit status 1 when libvgpu.so's CPU-time ratio exceeds 1.05.
set -eu

src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
[ $# -gt 0 ] && shift
hook="$build/lib/libvgpu.so"
[ -e "$hook" ] || { echo "missing $hook: build first (cmake --build $build --target vgpu)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc=${CC:-cc}
"$cc" -O2 -o "$work/preload_exec_bench" "$src/preload_exec_bench.c"
echo 'int vgpu_bench_empty(void) { return 0; }' >"$work/empty.c"
"$cc" -O2 -shared -fPIC -o "$work/libempty.so" "$work/empty.c"

"$work/preload_exec_bench" "${ROUNDS:-500}" "${PROGRAM:-/bin/true}" "$hook" "$work/libempty.so" "$@" | tee "$work/out"
awk -v hook="$hook" '$1 == hook { ratio = $8; wall = $7 }
  END {
    if (ratio == "") { print "no result for " hook; exit 1 }
    verdict = ratio <= 1.05 ? "meets" : "MISSES";
    printf "libvgpu.so: %.3fx the CPU time of an exec without it (%.3fx wall, paired); %s the 1.05x target\n", ratio, wall, verdict;
    exit ratio <= 1.05 ? 0 : 1
  }' "$work/out"
