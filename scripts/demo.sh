#!/usr/bin/env bash
# The product demo: vgpud on a simulated GPU with three tenants — a
# high-priority inference service and two training jobs that share the rest
# 30/70 — each running under libvgpu.so. A process is refused past its
# tenant's memory quota while everyone else keeps running; the operator raises
# the quota live with vgpuctl and the same request succeeds; `vgpuctl top`
# shows the node mid-run; a table of configured vs achieved memory and GPU
# share ends it.
#
# Settings (environment): DEMO_SECONDS (default 8), DEMO_SKIP_BUILD=1 to reuse
# an existing build/, DEMO_PREFIX=DIR to run vgpud, vgpuctl and libvgpu.so from
# an installed tree (DIR/usr/bin, DIR/usr/lib/vgpu: `DESTDIR=DIR cmake --install
# build --prefix /usr`, or the .deb packages unpacked into DIR); simgpu and the
# workload program always come from build/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
RUN_SECONDS="${DEMO_SECONDS:-8}"
if [ -n "${DEMO_PREFIX:-}" ]; then
  VGPUD_BIN="$DEMO_PREFIX/usr/bin/vgpud"
  VGPUCTL_BIN="$DEMO_PREFIX/usr/bin/vgpuctl"
  HOOK_LIB="$DEMO_PREFIX/usr/lib/vgpu/libvgpu.so"
else
  VGPUD_BIN="$BUILD/bin/vgpud"
  VGPUCTL_BIN="$BUILD/bin/vgpuctl"
  HOOK_LIB="$BUILD/lib/libvgpu.so"
fi

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
  "$ROOT/scripts/build.sh"
fi

# One private simulated node (a 24 GiB GPU) and a private vgpud, removed at exit.
OUT="$(mktemp -d /tmp/vgpu-demo-XXXXXX)"
export LD_LIBRARY_PATH="$BUILD/simgpu"
export SIMGPU_STATE="demo-$$"
export SIMGPU_MEMORY=24Gi
export SIMGPU_CONTEXT_OVERHEAD=0
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${VGPUD:-}" ] && kill "$VGPUD" 2>/dev/null && wait "$VGPUD" 2>/dev/null
  rm -rf "$OUT" "/dev/shm/simgpu-$SIMGPU_STATE"
}
trap cleanup EXIT

cat >"$OUT/vgpud.yaml" <<YAML
socket: $OUT/vgpud.sock
admin_socket: $OUT/admin.sock
state_dir: $OUT/state
scheduler: {quantum: 10ms}
tenants:
  - name: inference
    token: demo-inference-token
    priority: high
    memory: 8Gi
    compute: {request: 20%}
  - name: train-a
    token: demo-train-a-token
    memory: 6Gi
    compute: {request: 24%}
  - name: train-b
    token: demo-train-b-token
    memory: 6Gi
    compute: {request: 56%}
YAML

echo "== vgpud: three tenants on one simulated 24 GiB GPU =="
sed -n '/^tenants:/,$p' "$OUT/vgpud.yaml"
"$VGPUD_BIN" --config "$OUT/vgpud.yaml" 2>"$OUT/vgpud.log" &
VGPUD=$!
for _ in $(seq 200); do [ -S "$OUT/vgpud.sock" ] && break; sleep 0.05; done
[ -S "$OUT/vgpud.sock" ] || { echo "vgpud did not start:" >&2; cat "$OUT/vgpud.log" >&2; exit 1; }

# start_tenant NAME TOKEN [vgpu-workload options...]: a workload of that
# tenant under libvgpu.so, in the background; JSON summary in $OUT/NAME.json.
start_tenant() {
  local name="$1" token="$2"
  shift 2
  LD_PRELOAD="$HOOK_LIB" VGPU_SOCKET="$OUT/vgpud.sock" VGPU_TOKEN="$token" \
    "$BUILD/bin/vgpu-workload" --label "$name" --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" &
  PIDS+=($!)
}

echo
echo "== ${RUN_SECONDS}s: inference serves 200 requests/s (1 ms kernels); both training jobs saturate =="
start_tenant inference demo-inference-token --duration "$RUN_SECONDS" --rate 200 --kernel-us 1000 \
  --alloc-size 6Gi --hold
start_tenant train-a demo-train-a-token --duration "$RUN_SECONDS" --kernel-us 2000 --alloc-size 4Gi --hold
start_tenant train-b demo-train-b-token --duration "$RUN_SECONDS" --kernel-us 2000 --alloc-size 5Gi --hold
sleep 1
echo "-- meanwhile a second train-a process asks for 4Gi more (train-a's quota is 6Gi, 4Gi held):"
start_tenant train-a-extra demo-train-a-token --count 20 --kernel-us 1000 --alloc-size 4Gi --hold
echo "-- and a process without a valid token tries too:"
start_tenant intruder not-a-token --count 20 --kernel-us 1000 --alloc-size 1Gi
sleep 1
VGPUCTL=("$VGPUCTL_BIN" --socket "$OUT/admin.sock")
echo "-- the operator raises train-a's quota to 10Gi while everything runs:"
echo "   \$ vgpuctl tenant update train-a --memory 10Gi"
"${VGPUCTL[@]}" tenant update train-a --memory 10Gi | sed 's/^/   /'
echo "-- and the same 4Gi request of train-a now succeeds:"
start_tenant train-a-more demo-train-a-token --count 20 --kernel-us 1000 --alloc-size 4Gi --hold
sleep 1
echo
echo "== vgpuctl top, one refresh in the middle of the run =="
"${VGPUCTL[@]}" top --iterations 1 | sed 's/\x1b\[[0-9;]*[HJ]//g'
status=0
for pid in "${PIDS[@]}"; do wait "$pid" || status=1; done
PIDS=()

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
quota = {"inference": 8, "train-a": 10, "train-b": 6}
request = {"inference": 20, "train-a": 24, "train-b": 56}
rows = {n: json.load(open(os.path.join(out, n + ".json")))
        for n in ["inference", "train-a", "train-b", "train-a-extra", "train-a-more", "intruder"]}
gib = 1024 ** 3
print()
print(f"{'tenant':<10} {'priority':<8} {'mem quota':>9} {'mem held':>9} {'request':>8} {'GPU share':>10} {'kernels':>8}")
training = sum(rows[n]["work_share"] for n in ["train-a", "train-b"])
for n in ["inference", "train-a", "train-b"]:
    r = rows[n]
    held = r["allocations"]["peak_bytes"] / gib
    prio = "high" if n == "inference" else "normal"
    print(f"{n:<10} {prio:<8} {quota[n]:>7}Gi {held:>7.1f}Gi {request[n]:>7}% {100 * r['work_share']:>9.1f}% "
          f"{r['kernels_completed']:>8}")
print()
a, b = rows["train-a"]["work_share"], rows["train-b"]["work_share"]
print(f"Training split of the time inference left: train-a {100 * a / training:.1f}% / "
      f"train-b {100 * b / training:.1f}% (configured 30/70)")
print(f"Inference asked for {200 * 0.001 * 100:.0f}% of the GPU at high priority and got "
      f"{100 * rows['inference']['work_share']:.1f}%")
total = sum(rows[n]["work_share"] for n in quota)
print(f"GPU busy: {100 * total:.1f}% of the run")
x = rows["train-a-extra"]["allocations"]
print(f"\nsecond train-a process: {x['failed']} of {x['requested']} allocation(s) of 4Gi refused "
      f"({', '.join(f'{k} x{v}' for k, v in x['errors'].items()) or '-'}) — train-a's 6Gi quota is tenant-wide")
m = rows["train-a-more"]["allocations"]
print(f"after the live change to 10Gi: {m['ok']} of {m['requested']} allocation(s) of 4Gi granted")
i = rows["intruder"]
print(f"process without a valid token: {i['allocations']['ok']} allocations, {i['kernels_completed']} kernels")
PY
if [ "$status" -ne 0 ]; then
  echo "(a workload exited non-zero; the refused ones are expected to)" >&2
fi
exit 0
