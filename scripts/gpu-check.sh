#!/usr/bin/env bash
# The real-GPU acceptance run (issue 9): vgpud + libvgpu.so on a machine with
# an NVIDIA GPU, CUDA 13 and (optionally) PyTorch, but no package manager and
# no network. The build tree built elsewhere is copied there; nothing is
# installed. Without a GPU it runs the same checks on simgpu, with the PyTorch
# checks reported as skipped, so the script itself is tested by the suite.
#
#   scripts/gpu-check.sh OUTDIR [BUILD_DIR]
#
# Writes OUTDIR/gpu-check.json and OUTDIR/gpu-check.md. Exit status: 0 if
# every check that ran passed, 1 otherwise. Bounded to about 8 minutes
# (GPU_CHECK_SECONDS per share run, default 6).
#
# Checks:
#   quota_view       cuMemGetInfo total under the hook equals the tenant quota
#   quota_refusal    an allocation past the quota fails with out-of-memory
#   shares           two tenants configured 30/70 on a saturated GPU
#   launch_overhead  added ns per cuLaunchKernel / alloc+free (hook_overhead_bench)
#   context_overhead what the driver takes for a context (NVML), GPU only
#   torch_*          mem_get_info, OOM past the quota, both allocator backends
#                    within the quota by NVML, torch.cuda.graph capture while
#                    another tenant contends (only where PyTorch sees a GPU)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${1:?usage: gpu-check.sh OUTDIR [BUILD_DIR]}"
BUILD="$(cd "${2:-$ROOT/build}" && pwd)"
SECONDS_PER_RUN="${GPU_CHECK_SECONDS:-6}"
mkdir -p "$OUTDIR"
WORK="$(mktemp -d /tmp/vgpu-gpu-check-XXXXXX)"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  MODE=gpu
  QUOTA=${GPU_CHECK_QUOTA:-4Gi}
else
  MODE=simgpu
  QUOTA=${GPU_CHECK_QUOTA:-2Gi}
  export LD_LIBRARY_PATH="$BUILD/simgpu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export SIMGPU_STATE="gpu-check-$$" SIMGPU_MEMORY=24Gi SIMGPU_CONTEXT_OVERHEAD=0
fi

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [ -n "${VGPUD:-}" ] && kill "$VGPUD" 2>/dev/null && wait "$VGPUD" 2>/dev/null
  [ "$MODE" = simgpu ] && rm -f "/dev/shm/simgpu-$SIMGPU_STATE"
  rm -rf "$WORK"
}
trap cleanup EXIT

# record NAME STATUS(pass|fail|skip) VALUE DETAIL
record() {
  python3 -c 'import json,sys; print(json.dumps({"check":sys.argv[1],"status":sys.argv[2],"value":sys.argv[3],"detail":sys.argv[4]}))' \
    "$1" "$2" "$3" "$4" >>"$RESULTS"
  printf '%-16s %-5s %s %s\n' "$1" "$2" "$3" "$4"
}

# vgpud with two tenants 30/70, report-only enforcement (the machine may run
# other work we must not end).
cat >"$WORK/vgpud.yaml" <<YAML
socket: $WORK/vgpud.sock
admin_socket: $WORK/admin.sock
state_dir: $WORK/state
scheduler: {quantum: 10ms}
enforcement: {policy: report}
tenants:
  - {name: thirty, token: gpu-check-thirty-token, memory: $QUOTA, compute: {request: 30%}}
  - {name: seventy, token: gpu-check-seventy-token, memory: $QUOTA, compute: {request: 70%}}
YAML
"$BUILD/bin/vgpud" --config "$WORK/vgpud.yaml" 2>"$WORK/vgpud.log" &
VGPUD=$!
for _ in $(seq 100); do [ -S "$WORK/vgpud.sock" ] && break; sleep 0.1; done
if [ ! -S "$WORK/vgpud.sock" ]; then
  record vgpud fail "" "vgpud did not start: $(tail -3 "$WORK/vgpud.log" | tr '\n' ' ')"
fi

# as TENANT CMD...: runs CMD as a process of that tenant under the hook.
as() {
  local token="gpu-check-$1-token"
  shift
  LD_PRELOAD="$BUILD/lib/libvgpu.so" VGPU_SOCKET="$WORK/vgpud.sock" VGPU_TOKEN="$token" "$@"
}
bytes() { python3 -c "import sys; u={'Ki':1<<10,'Mi':1<<20,'Gi':1<<30}; s=sys.argv[1]; print(int(s[:-2])*u[s[-2:]] if s[-2:] in u else int(s))" "$1"; }
QUOTA_BYTES=$(bytes "$QUOTA")
WL="$BUILD/bin/vgpu-workload"

# --- quota ---------------------------------------------------------------------
# hook_views_probe prints what a program sees through the hook (cuMemGetInfo, NVML).
total=$(as thirty "$BUILD/tests/programs/hook_views_probe" 2>/dev/null | sed -n 's/.*info_total=\([0-9]*\).*/\1/p' | head -1)
if [ -n "$total" ] && [ "$total" = "$QUOTA_BYTES" ]; then record quota_view pass "$total" "cuMemGetInfo total = quota"
elif [ -n "$total" ]; then record quota_view fail "$total" "expected $QUOTA_BYTES"
else record quota_view fail "" "hook_views_probe printed no cuMemGetInfo total"; fi
past=$(( QUOTA_BYTES + (1 << 20) ))
out=$(as thirty "$WL" --alloc-size "$past" --alloc-count 1 --count 1 2>&1)
if echo "$out" | grep -q "allocations 0/1 ok"; then record quota_refusal pass "$past" "refused past the quota"
else record quota_refusal fail "$past" "$(echo "$out" | tail -1)"; fi

# --- shares 30/70 ----------------------------------------------------------------
as thirty "$WL" --duration "$SECONDS_PER_RUN" --kernel-us 1000 --label thirty --json >"$WORK/thirty.json" 2>/dev/null &
a=$!
as seventy "$WL" --duration "$SECONDS_PER_RUN" --kernel-us 1000 --label seventy --json >"$WORK/seventy.json" 2>/dev/null &
b=$!
PIDS+=("$a" "$b")
wait "$a" "$b"
shares=$(python3 - "$WORK/thirty.json" "$WORK/seventy.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["work_share"]; s = json.load(open(sys.argv[2]))["work_share"]
busy = t + s
print(f"{t / busy * 100:.1f} {s / busy * 100:.1f} {busy * 100:.1f}")
PY
)
if [ -n "$shares" ]; then
  read -r s30 s70 busy <<<"$shares"
  ok=$(python3 -c "print('pass' if abs($s30-30) <= 2 and abs($s70-70) <= 2 else 'fail')")
  record shares "$ok" "$s30/$s70" "of the GPU time both used (configured 30/70, ±2 points); GPU busy $busy %"
else
  record shares fail "" "a workload produced no summary"
fi

# --- launch and allocation overhead -------------------------------------------------
if [ -x "$BUILD/bin/hook_overhead_bench" ]; then
  bench=$(timeout 180 "$BUILD/bin/hook_overhead_bench" --benchmark_min_time=0.2s 2>/dev/null | awk '/^BM_/ && NF==4 {print $1, $4}')
  launch=$(echo "$bench" | awk '$1=="BM_LaunchKernel"{print $2}')
  alloc=$(echo "$bench" | awk '$1=="BM_MemAllocFree"{print $2}')
  if [ -n "$launch" ]; then record launch_overhead pass "${launch} ns" "added per cuLaunchKernel (alloc+free: ${alloc} ns)"
  else record launch_overhead fail "" "hook_overhead_bench gave no figures"; fi
else
  record launch_overhead skip "" "hook_overhead_bench not built"
fi

# --- context overhead -------------------------------------------------------------
if [ "$MODE" = gpu ]; then
  "$BUILD/tests/programs/sim_mem_holder" hold 0 >"$WORK/ctx.out" 2>/dev/null &
  holder=$!
  PIDS+=("$holder")
  for _ in $(seq 100); do grep -q ready "$WORK/ctx.out" 2>/dev/null && break; sleep 0.1; done
  mib=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits |
        awk -F', *' -v p="$holder" '$1==p {print $2}')
  kill "$holder" 2>/dev/null
  if [ -n "$mib" ]; then record context_overhead pass "${mib} MiB" "NVML memory of a process holding only a context"
  else record context_overhead fail "" "NVML did not list the context's process"; fi
else
  record context_overhead skip "" "simgpu's context overhead is configured (SIMGPU_CONTEXT_OVERHEAD), not measured"
fi

# --- PyTorch -----------------------------------------------------------------------
if [ "$MODE" = gpu ] && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  cat >"$WORK/torch_check.py" <<'PY'
import json, os, subprocess, sys, torch
quota = int(sys.argv[1]); what = sys.argv[2]
r = {}
if what == "view":
    free, total = torch.cuda.mem_get_info()
    r = {"total": total, "ok": total == quota}
elif what == "oom":
    try:
        torch.empty(quota + (64 << 20), dtype=torch.uint8, device="cuda"); r = {"ok": False}
    except torch.OutOfMemoryError:
        r = {"ok": True}
elif what == "fill":
    held = []
    try:
        while True: held.append(torch.empty(256 << 20, dtype=torch.uint8, device="cuda"))
    except torch.OutOfMemoryError:
        pass
    del held[len(held) // 2:]
    torch.cuda.synchronize()
    q = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True).stdout
    used = sum(int(l.split(",")[1]) << 20 for l in q.splitlines() if l.split(",")[0].strip() == str(os.getpid()))
    r = {"physical": used, "ok": used <= quota + (768 << 20)}
elif what == "graph":
    s = torch.cuda.Stream(); x = torch.ones(1 << 20, device="cuda")
    with torch.cuda.stream(s):
        for _ in range(3): y = x * 2
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = x * 2 + 1
    for _ in range(20): g.replay()
    torch.cuda.synchronize()
    r = {"ok": bool((y == 3).all())}
print(json.dumps(r))
PY
  torch_run() {  # NAME WHAT [ENV...]
    local name=$1 what=$2; shift 2
    local res; res=$(env "$@" LD_PRELOAD="$BUILD/lib/libvgpu.so" VGPU_SOCKET="$WORK/vgpud.sock" \
      VGPU_TOKEN=gpu-check-thirty-token timeout 120 python3 "$WORK/torch_check.py" "$QUOTA_BYTES" "$what" 2>"$WORK/$name.err" | tail -1)
    if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["ok"] else 1)' "$res" 2>/dev/null; then
      record "$name" pass "$res" ""
    else
      record "$name" fail "$res" "$(tail -2 "$WORK/$name.err" | tr '\n' ' ')"
    fi
  }
  torch_run torch_mem_view view
  torch_run torch_oom oom
  torch_run torch_native fill PYTORCH_CUDA_ALLOC_CONF=backend:native
  torch_run torch_async fill PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync
  as seventy "$WL" --duration 60 --kernel-us 1000 >/dev/null 2>&1 &
  PIDS+=("$!")
  torch_run torch_graph graph
else
  for c in torch_mem_view torch_oom torch_native torch_async torch_graph; do
    record "$c" skip "" "no PyTorch with a GPU here ($MODE)"
  done
fi

# --- report -------------------------------------------------------------------------
python3 - "$RESULTS" "$OUTDIR" "$MODE" <<'PY'
import json, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
report = {"mode": sys.argv[3], "date": datetime.datetime.utcnow().isoformat() + "Z", "checks": rows}
json.dump(report, open(f"{sys.argv[2]}/gpu-check.json", "w"), indent=2)
with open(f"{sys.argv[2]}/gpu-check.md", "w") as f:
    f.write(f"# vgpu gpu-check ({sys.argv[3]}, {report['date']})\n\n| check | status | value | detail |\n|---|---|---|---|\n")
    for r in rows: f.write(f"| {r['check']} | {r['status']} | {r['value']} | {r['detail']} |\n")
PY
if grep -q '"status": "fail"' "$RESULTS"; then exit 1; fi
exit 0
