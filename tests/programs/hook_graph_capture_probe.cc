// Stream capture of graph memory and nested graph launches under the hook,
// against a quota, as PyTorch's graph pools and vLLM's piecewise graphs use
// them. Prints "ok" or the first step that went wrong. The ledger is read
// through the hook's virtualized cuMemGetInfo (used = total - free).
//
// Usage: hook_graph_capture_probe UNIT_BYTES   (the test sets the quota to 4 units)
// Steps (units charged afterwards in parentheses):
//  1. an inner graph (a kernel and a host function) is captured and
//     instantiated; cuMemAlloc holds 2 units (2);
//  2. a GLOBAL capture: cuMemAllocAsync of 3 units (more than the quota has
//     left: not refused, it only adds a node), a kernel, cuGraphLaunch of the
//     inner exec (a child-graph node: its host function does not run),
//     cuMemFreeAsync; the capture ends with success (2: nothing charged);
//  3. instantiate (2); launching it needs 3 units: CUDA_ERROR_OUT_OF_MEMORY
//     (2); after the 2 held units are freed (0) it runs, the inner graph's
//     host function with it, and its free node returns the charge (0);
//  4. a capture of cuMemAllocAsync of 1 unit and a kernel (0); launched, the
//     live graph memory is charged (1); cuMemFree returns it (0).
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spin_ptx.h"

namespace {

size_t g_unit = 0;
CUstream g_stream = nullptr;  // the capturing stream
CUstream g_run = nullptr;     // where graphs run
CUfunction g_spin = nullptr;
std::atomic<int> g_host_runs{0};

void host_fn(void*) { g_host_runs.fetch_add(1); }

bool expect(const std::string& step, CUresult got, CUresult want) {
  if (got == want) return true;
  std::printf("FAIL %s: got %d, want %d\n", step.c_str(), static_cast<int>(got), static_cast<int>(want));
  return false;
}

bool expect_used(const std::string& step, long long units) {
  size_t free_b = 0, total_b = 0;
  if (!expect(step + " (cuMemGetInfo)", cuMemGetInfo_v2(&free_b, &total_b), CUDA_SUCCESS)) return false;
  long long got = static_cast<long long>((total_b - free_b) / g_unit);
  if (got == units) return true;
  std::printf("FAIL %s: %lld units charged, want %lld\n", step.c_str(), got, units);
  return false;
}

bool expect_host_runs(const std::string& step, int want) {
  if (g_host_runs.load() == want) return true;
  std::printf("FAIL %s: host function ran %d times, want %d\n", step.c_str(), g_host_runs.load(), want);
  return false;
}

CUresult spin() {
  unsigned long long ns = 1000;
  void* params[] = {&ns};
  return cuLaunchKernel(g_spin, 1, 1, 1, 1, 1, 1, 0, g_stream, params, nullptr);
}

CUresult run(CUgraphExec e) {
  CUresult r = cuGraphLaunch(e, g_run);
  return r == CUDA_SUCCESS ? cuStreamSynchronize(g_run) : r;
}

bool inner_graph(CUgraphExec* inner) {
  CUgraph g = nullptr;
  return expect("inner begin", cuStreamBeginCapture_v2(g_stream, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS) &&
         expect("inner kernel", spin(), CUDA_SUCCESS) &&
         expect("inner host function", cuLaunchHostFunc(g_stream, host_fn, nullptr), CUDA_SUCCESS) &&
         expect("inner end", cuStreamEndCapture(g_stream, &g), CUDA_SUCCESS) &&
         expect("inner instantiate", cuGraphInstantiateWithFlags(inner, g, 0), CUDA_SUCCESS) &&
         expect("inner graph destroy", cuGraphDestroy(g), CUDA_SUCCESS);
}

bool capture_alloc_kernel_nested_free(CUgraphExec inner) {
  CUdeviceptr held = 0, p = 0;
  CUgraph g = nullptr;
  CUgraphExec e = nullptr;
  bool ok = expect("hold 2 units", cuMemAlloc_v2(&held, 2 * g_unit), CUDA_SUCCESS) && expect_used("held", 2) &&
            expect("begin", cuStreamBeginCapture_v2(g_stream, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS) &&
            expect("captured cuMemAllocAsync of 3 units", cuMemAllocAsync(&p, 3 * g_unit, g_stream), CUDA_SUCCESS) &&
            expect("captured kernel", spin(), CUDA_SUCCESS) &&
            expect("captured cuGraphLaunch", cuGraphLaunch(inner, g_stream), CUDA_SUCCESS) &&
            expect("captured cuMemFreeAsync", cuMemFreeAsync(p, g_stream), CUDA_SUCCESS) &&
            expect("end", cuStreamEndCapture(g_stream, &g), CUDA_SUCCESS) && expect_used("captured", 2) &&
            expect("context sync", cuCtxSynchronize(), CUDA_SUCCESS) &&
            expect_host_runs("after capture (the nested launch must not run)", 0) &&
            expect("instantiate", cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS) &&
            expect_used("instantiated", 2) &&
            expect("launch over quota", cuGraphLaunch(e, g_run), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect_used("refused launch", 2) && expect_host_runs("refused launch", 0) &&
            expect("free held", cuMemFree_v2(held), CUDA_SUCCESS) && expect_used("freed", 0) &&
            expect("launch", run(e), CUDA_SUCCESS) && expect_host_runs("launched", 1) &&
            expect_used("alloc+free graph ran", 0);
  return ok && expect("exec destroy", cuGraphExecDestroy(e), CUDA_SUCCESS) &&
         expect("graph destroy", cuGraphDestroy(g), CUDA_SUCCESS) && expect_used("graph gone", 0);
}

bool captured_alloc_charged_at_launch() {
  CUdeviceptr q = 0;
  CUgraph g = nullptr;
  CUgraphExec e = nullptr;
  bool ok = expect("begin", cuStreamBeginCapture_v2(g_stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS) &&
            expect("captured cuMemAllocAsync of 1 unit", cuMemAllocAsync(&q, g_unit, g_stream), CUDA_SUCCESS) &&
            expect("captured kernel", spin(), CUDA_SUCCESS) &&
            expect("end", cuStreamEndCapture(g_stream, &g), CUDA_SUCCESS) && expect_used("captured", 0) &&
            expect("instantiate", cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS) &&
            expect("launch", run(e), CUDA_SUCCESS) && expect_used("live graph memory", 1) &&
            expect("cuMemFree", cuMemFree_v2(q), CUDA_SUCCESS) && expect_used("freed", 0);
  return ok && expect("exec destroy", cuGraphExecDestroy(e), CUDA_SUCCESS) &&
         expect("graph destroy", cuGraphDestroy(g), CUDA_SUCCESS);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hook_graph_capture_probe UNIT_BYTES\n");
    return 2;
  }
  g_unit = std::strtoull(argv[1], nullptr, 10);
  CUcontext ctx;
  CUmodule mod;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuModuleLoadData(&mod, kSpinPtx) != CUDA_SUCCESS ||
      cuModuleGetFunction(&g_spin, mod, "spin_ns") != CUDA_SUCCESS ||
      cuStreamCreate(&g_stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
      cuStreamCreate(&g_run, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::printf("FAIL: no context\n");
    return 1;
  }
  CUgraphExec inner = nullptr;
  bool ok = expect_used("start", 0) && inner_graph(&inner) && capture_alloc_kernel_nested_free(inner) &&
            captured_alloc_charged_at_launch();
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}
