// Allocates BYTES of device memory with cuMemAlloc, retrying every 2 ms for up
// to TIMEOUT_MS (0: one attempt). Prints "denied" (flushed) after the first
// refusal, so a test knows it is waiting, then "ok at_ns=<CLOCK_MONOTONIC ns>
// attempts=<n>" on success, or "timeout last=<CUresult>". With HOLD_MS it
// keeps the memory that long before freeing it.
// Exit status: 0 allocated, 3 never allocated, 1 setup failed.
// Usage: vgpud_alloc_retry BYTES TIMEOUT_MS [HOLD_MS]
#include <cuda.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

unsigned long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull + static_cast<unsigned long long>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: vgpud_alloc_retry BYTES TIMEOUT_MS [HOLD_MS]\n");
    return 2;
  }
  size_t bytes = std::strtoull(argv[1], nullptr, 10);
  unsigned long long deadline = mono_ns() + std::strtoull(argv[2], nullptr, 10) * 1000000ull;
  int hold_ms = argc > 3 ? std::atoi(argv[3]) : 0;
  CUcontext ctx;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
    std::fprintf(stderr, "vgpud_alloc_retry: no context\n");
    return 1;
  }
  CUdeviceptr p = 0;
  CUresult r = CUDA_SUCCESS;
  for (unsigned long long attempts = 1;; ++attempts) {
    r = cuMemAlloc(&p, bytes);
    if (r == CUDA_SUCCESS) {
      std::printf("ok at_ns=%llu attempts=%llu\n", mono_ns(), attempts);
      std::fflush(stdout);
      break;
    }
    if (attempts == 1) {
      std::printf("denied\n");
      std::fflush(stdout);
    }
    if (mono_ns() >= deadline) {
      std::printf("timeout last=%d\n", static_cast<int>(r));
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  cuMemFree(p);
  return 0;
}
