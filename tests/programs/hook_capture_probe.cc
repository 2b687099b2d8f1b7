// Captures CUDA graphs the way PyTorch and vLLM do, while the hook gates
// launches (run under libvgpu.so with another tenant contending):
//   hook_capture_probe MODE N     MODE: global | thread_local | relaxed
// N times: begin a capture of a non-blocking stream in MODE, launch 8 short
// kernels into it, end the capture, instantiate and launch the graph, sync.
// Meanwhile a second thread launches kernels on its own stream (the hook
// gates and throttles those). Prints "captures ok=<n> failed=<n> first=<rc>".
#include <cuda.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "spin_ptx.h"

namespace {

CUcontext g_ctx;
CUfunction g_spin;
std::atomic<bool> g_stop{false};

CUresult launch(CUstream s, unsigned long long ns) {
  void* params[] = {&ns};
  return cuLaunchKernel(g_spin, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
}

void other_thread() {
  cuCtxSetCurrent(g_ctx);
  CUstream s;
  cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
  while (!g_stop.load()) launch(s, 200'000);
}

CUresult capture_once(CUstream s, CUstreamCaptureMode mode) {
  CUgraph g = nullptr;
  CUgraphExec ge = nullptr;
  CUresult rc = cuStreamBeginCapture_v2(s, mode);
  for (int k = 0; k < 8 && rc == CUDA_SUCCESS; ++k) rc = launch(s, 100'000);
  CUresult end = cuStreamEndCapture(s, &g);
  if (rc == CUDA_SUCCESS) rc = end;
  if (rc == CUDA_SUCCESS) rc = cuGraphInstantiate(&ge, g, 0);
  if (rc == CUDA_SUCCESS) rc = cuGraphLaunch(ge, s);
  if (rc == CUDA_SUCCESS) rc = cuStreamSynchronize(s);
  if (ge) cuGraphExecDestroy(ge);
  if (g) cuGraphDestroy(g);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: hook_capture_probe global|thread_local|relaxed N\n");
    return 2;
  }
  CUstreamCaptureMode mode = !std::strcmp(argv[1], "relaxed")        ? CU_STREAM_CAPTURE_MODE_RELAXED
                             : !std::strcmp(argv[1], "thread_local") ? CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
                                                                     : CU_STREAM_CAPTURE_MODE_GLOBAL;
  CUdevice dev;
  CUmodule mod;
  if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&g_ctx, dev) || cuCtxSetCurrent(g_ctx) ||
      cuModuleLoadData(&mod, kSpinPtx) || cuModuleGetFunction(&g_spin, mod, "spin_ns")) {
    std::fprintf(stderr, "no CUDA context\n");
    return 1;
  }
  CUstream s;
  cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
  std::thread other(other_thread);
  int n = std::atoi(argv[2]), ok = 0, failed = 0;
  CUresult first = CUDA_SUCCESS;
  for (int i = 0; i < n; ++i) {
    CUresult rc = capture_once(s, mode);
    if (rc == CUDA_SUCCESS) ++ok;
    else if (++failed == 1) first = rc;
  }
  g_stop.store(true);
  other.join();
  std::printf("captures ok=%d failed=%d first=%d\n", ok, failed, static_cast<int>(first));
  return failed ? 1 : 0;
}
