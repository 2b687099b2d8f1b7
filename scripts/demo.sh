#!/usr/bin/env bash
# The demo: builds everything, then runs two vgpu-workload processes on one
# simulated GPU and shows what each got. Both saturate the GPU with spin_ns
# kernels for a few seconds while holding device memory; the simulated GPU
# time-slices its one execution engine between them, as a real GPU without
# MPS does, and their allocations share its memory.
#
# Settings (environment): DEMO_SECONDS (default 5), DEMO_MEMORY (16Gi),
# DEMO_SKIP_BUILD=1 to reuse an existing build/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
SECONDS_EACH="${DEMO_SECONDS:-5}"

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
  "$ROOT/scripts/build.sh"
fi

# One private simulated node for this run: a 16 GiB GPU, removed at exit.
export LD_LIBRARY_PATH="$BUILD/simgpu"
export SIMGPU_STATE="demo-$$"
export SIMGPU_MEMORY="${DEMO_MEMORY:-16Gi}"
OUT="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$OUT" "/dev/shm/simgpu-$SIMGPU_STATE"
}
trap cleanup EXIT

# start_workload NAME [vgpu-workload options...]: runs one workload in the
# background; its JSON summary goes to $OUT/NAME.json.
start_workload() {
  local name="$1"
  shift
  "$BUILD/bin/vgpu-workload" --label "$name" --json --duration "$SECONDS_EACH" "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.err" &
  PIDS+=($!)
}

echo
echo "== Two processes share one simulated GPU ($SIMGPU_MEMORY) for ${SECONDS_EACH}s =="
start_workload training  --alloc-size 6Gi --hold --kernel-us 1000
start_workload inference --alloc-size 4Gi --hold --kernel-us 1000
status=0
for pid in "${PIDS[@]}"; do wait "$pid" || status=1; done
PIDS=()

python3 - "$OUT"/training.json "$OUT"/inference.json <<'PY'
import json, sys

rows = [json.load(open(path)) for path in sys.argv[1:]]
gib = 1024 ** 3
print(f"{'process':<10} {'kernels':>8} {'kernel':>8} {'GPU ms':>8} {'GPU share':>10} {'memory':>9}  errors")
for r in rows:
    a = r["allocations"]
    memory = f"{a['peak_bytes'] / gib:.1f}Gi" if a["ok"] else "failed"
    errors = ", ".join(f"{e['call']}: {e['error']}" for e in r["errors"]) or "-"
    print(f"{r['label']:<10} {r['kernels_completed']:>8} {r['kernel_ns'] / 1000:>6.0f}us "
          f"{r['work_ms']:>8.0f} {100 * r['work_share']:>9.1f}% {memory:>9}  {errors}")
total = sum(r["work_share"] for r in rows)
print(f"\nGPU ms = kernels x kernel time: engine time received. GPU share = GPU ms / wall time;")
print(f"together {100 * total:.1f}% of the engine. (busy_ms in the JSON is what CUDA events measured,")
print("which includes the time a kernel waited while the other process held the engine.)")
PY
if [ "$status" -ne 0 ]; then
  echo "a workload failed; its stderr:" >&2
  cat "$OUT"/*.err >&2
fi
exit "$status"
