// Many threads allocate UNIT_BYTES blocks at once until the quota refuses
// them, then free everything; repeated ROUNDS times. Prints
// "granted=<n> per round" lines; the test checks n == quota / unit exactly
// (never above the quota, never a refusal below it).
// Usage: hook_race_probe THREADS UNIT_BYTES ROUNDS
#include <cuda.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  int threads = std::atoi(argv[1]);
  size_t unit = std::strtoull(argv[2], nullptr, 10);
  int rounds = std::atoi(argv[3]);
  CUcontext ctx;
  if (cuInit(0) || cuDevicePrimaryCtxRetain(&ctx, 0)) return 1;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::vector<CUdeviceptr>> held(threads);
    std::atomic<int> other_errors{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        cuCtxSetCurrent(ctx);
        while (!go.load()) std::this_thread::yield();
        for (;;) {
          CUdeviceptr p = 0;
          CUresult r = cuMemAlloc(&p, unit);
          if (r == CUDA_ERROR_OUT_OF_MEMORY) break;
          if (r != CUDA_SUCCESS) {
            other_errors++;
            break;
          }
          held[t].push_back(p);
        }
      });
    go = true;
    for (auto& th : pool) th.join();
    size_t granted = 0;
    for (auto& h : held) granted += h.size();
    size_t free_bytes = 0, total = 0;
    cuCtxSetCurrent(ctx);
    cuMemGetInfo(&free_bytes, &total);
    std::printf("granted=%zu free=%zu errors=%d\n", granted, free_bytes, other_errors.load());
    for (auto& h : held)
      for (CUdeviceptr p : h) cuMemFree(p);
  }
  return 0;
}
