// Two tenants' sides of a lease revoked while the holder captures a graph
// (run under libvgpu.so with vgpud; tests/integration/vgpud_drain_test.cc):
//   hook_drain_probe holder KERNEL_MS HOLD_MS CAPTURE WORK
//     CAPTURE: blocking | nonblocking (the captured stream's kind);
//     WORK: nonblocking | blocking | legacy | per_thread (where the long kernel
//     is queued). Begins a GLOBAL capture, captures 4 kernels, then queues one
//     KERNEL_MS kernel on the WORK stream (followed by a host function
//     stamping its end) and prints "launched"; once that kernel has
//     finished it keeps the capture open HOLD_MS more, ends it, and runs the
//     graph. Prints "holder capture=<rc> graph=<rc> kernel_end=<ns>".
//   hook_drain_probe contender
//     launches one short kernel; prints "contender requested=<ns> granted=<ns>
//     rc=<rc>" (CLOCK_MONOTONIC before the launch and when it returned: the
//     gate returns once vgpud granted the lease).
// No CUDA call is made on the capturing thread while it waits (a GLOBAL
// capture forbids that thread's unsafe calls).
#include <cuda.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "spin_ptx.h"

namespace {

CUfunction g_spin;
std::atomic<unsigned long long> g_kernel_end{0};

unsigned long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1'000'000'000ull + static_cast<unsigned long long>(ts.tv_nsec);
}

CUresult launch(CUstream s, unsigned long long ns) {
  void* params[] = {&ns};
  return cuLaunchKernel(g_spin, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
}

void stamp_end(void*) { g_kernel_end.store(mono_ns()); }

int holder(unsigned long long kernel_ms, unsigned long long hold_ms, const char* cap_kind, const char* work_kind) {
  CUstream cap, work;
  unsigned cap_flags = !std::strcmp(cap_kind, "blocking") ? CU_STREAM_DEFAULT : CU_STREAM_NON_BLOCKING;
  if (cuStreamCreate(&cap, cap_flags)) return 1;
  if (!std::strcmp(work_kind, "legacy")) work = CU_STREAM_LEGACY;
  else if (!std::strcmp(work_kind, "per_thread")) work = CU_STREAM_PER_THREAD;
  else if (cuStreamCreate(&work, !std::strcmp(work_kind, "blocking") ? CU_STREAM_DEFAULT : CU_STREAM_NON_BLOCKING))
    return 1;
  // Registers with vgpud and takes the lease once before the capture begins.
  if (launch(work, 1000) || cuStreamSynchronize(work)) return 1;
  CUresult capture = cuStreamBeginCapture_v2(cap, CU_STREAM_CAPTURE_MODE_GLOBAL);
  for (int k = 0; k < 4 && capture == CUDA_SUCCESS; ++k) capture = launch(cap, 100'000);
  CUresult queued = launch(work, kernel_ms * 1'000'000ull);
  if (queued == CUDA_SUCCESS) queued = cuLaunchHostFunc(work, stamp_end, nullptr);
  std::printf("launched rc=%d\n", static_cast<int>(queued));
  std::fflush(stdout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (queued == CUDA_SUCCESS && g_kernel_end.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));  // the capture stays open meanwhile
  CUgraph g = nullptr;
  CUresult end = cuStreamEndCapture(cap, &g);
  if (capture == CUDA_SUCCESS) capture = end;
  CUresult graph = capture;
  CUgraphExec ge = nullptr;
  if (graph == CUDA_SUCCESS) graph = cuGraphInstantiate(&ge, g, 0);
  if (graph == CUDA_SUCCESS) graph = cuGraphLaunch(ge, cap);
  if (graph == CUDA_SUCCESS) graph = cuStreamSynchronize(cap);
  std::printf("holder capture=%d graph=%d queued=%d kernel_end=%llu\n", static_cast<int>(capture),
              static_cast<int>(graph), static_cast<int>(queued), g_kernel_end.load());
  return capture == CUDA_SUCCESS && graph == CUDA_SUCCESS && queued == CUDA_SUCCESS ? 0 : 1;
}

int contender() {
  unsigned long long requested = mono_ns();
  CUresult rc = launch(nullptr, 1000);
  unsigned long long granted = mono_ns();
  if (rc == CUDA_SUCCESS) rc = cuCtxSynchronize();
  std::printf("contender requested=%llu granted=%llu rc=%d\n", requested, granted, static_cast<int>(rc));
  return rc == CUDA_SUCCESS ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool is_holder = argc == 6 && !std::strcmp(argv[1], "holder");
  if (!is_holder && !(argc == 2 && !std::strcmp(argv[1], "contender"))) {
    std::fprintf(stderr, "usage: hook_drain_probe holder KERNEL_MS HOLD_MS CAPTURE WORK | hook_drain_probe contender\n");
    return 2;
  }
  CUdevice dev;
  CUcontext ctx;
  CUmodule mod;
  if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx) ||
      cuModuleLoadData(&mod, kSpinPtx) || cuModuleGetFunction(&g_spin, mod, "spin_ns")) {
    std::fprintf(stderr, "no CUDA context\n");
    return 1;
  }
  if (!is_holder) return contender();
  return holder(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10), argv[4], argv[5]);
}
