// Saturates device 0 with spin_ns kernels for a given time and prints
// "kernels=<n> kernel_ns=<ns> wall_ns=<ns>". Usage: sim_spin SECONDS KERNEL_US [DEVICE]
// SECONDS 0: exit with work in flight, deterministically: queue a host
// function that waits until exit() has begun, 10 kernels and a host function
// that marks the end; print "queued" and return from main. An atexit handler
// registered before cuInit (so it runs after the driver's own) lets the
// first host function go and waits up to 10 s for the last one, so the
// kernels start after the driver detached from its node. The handler prints
// "exit_wait_ms=<ms> done=<0|1> alloc_after_exit=<CUresult of a cuMemAlloc
// made then>" to stderr.
#include <cuda.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include "spin_ptx.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    CUresult r_ = (x);                                                        \
    if (r_ != CUDA_SUCCESS) {                                                 \
      std::fprintf(stderr, "%s failed: %d\n", #x, static_cast<int>(r_));     \
      return 1;                                                               \
    }                                                                         \
  } while (0)

std::atomic<bool> g_exiting{false};
std::atomic<bool> g_done{false};

void let_work_run_during_exit() {
  g_exiting.store(true);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(10);
  while (!g_done.load() && std::chrono::steady_clock::now() < deadline) usleep(100);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  // The driver has shut down: a call now answers CUDA_ERROR_DEINITIALIZED.
  CUdeviceptr p = 0;
  CUresult after = cuMemAlloc(&p, 1 << 20);
  std::fprintf(stderr, "exit_wait_ms=%lld done=%d alloc_after_exit=%d\n", static_cast<long long>(waited.count()),
               g_done.load() ? 1 : 0, static_cast<int>(after));
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sim_spin SECONDS KERNEL_US [DEVICE]\n");
    return 2;
  }
  double seconds = std::atof(argv[1]);
  unsigned long long ns = std::strtoull(argv[2], nullptr, 10) * 1000ull;
  int dev = argc > 3 ? std::atoi(argv[3]) : 0;
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  if (seconds == 0) std::atexit(let_work_run_during_exit);
  CHECK(cuInit(0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuModuleLoadData(&mod, kSpinPtx));
  CHECK(cuModuleGetFunction(&fn, mod, "spin_ns"));
  CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  std::printf("ready\n");
  std::fflush(stdout);
  if (seconds == 0) {
    void* params[] = {&ns};
    CHECK(cuLaunchHostFunc(
        stream, [](void*) { while (!g_exiting.load()) usleep(100); }, nullptr));
    for (int i = 0; i < 10; ++i) CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr));
    CHECK(cuLaunchHostFunc(stream, [](void*) { g_done.store(true); }, nullptr));
    std::printf("queued\n");
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  unsigned long long launched = 0;
  void* params[] = {&ns};
  // Keep the queue a few kernels deep: launch in batches, wait for each batch.
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 4; ++i) CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr));
    launched += 4;
    CHECK(cuStreamSynchronize(stream));
  }
  auto wall = std::chrono::steady_clock::now() - start;
  std::printf("kernels=%llu kernel_ns=%llu wall_ns=%lld\n", launched, ns,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()));
  return 0;
}
