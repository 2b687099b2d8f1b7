// A latency-critical driver-API program for P5: every PERIOD_MS it launches
// one spin_ns kernel of KERNEL_US and waits for it, COUNT times, then prints
// one line per kernel: "sample <launch_call_ns> <launch_to_completion_ns>".
// It links the toolkit's link stub, so it runs on simgpu or a real driver,
// with or without libvgpu.so preloaded.
// usage: sched_periodic_probe PERIOD_MS KERNEL_US COUNT
#include <cuda.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_cli.h"
#include "spin_ptx.h"

namespace {

unsigned long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull + static_cast<unsigned long long>(ts.tv_nsec);
}

bool ok(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return true;
  std::fprintf(stderr, "%s failed: %d\n", what, static_cast<int>(r));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long period_ms = 0, kernel_us = 0;
  int count = 0;
  CLI::App app("Launches one spin kernel every PERIOD_MS and waits for it, COUNT times; prints "
               "'sample <launch_call_ns> <launch_to_completion_ns>' per kernel.",
               "sched_periodic_probe");
  app.add_option("PERIOD_MS", period_ms, "time between launches")->required();
  app.add_option("KERNEL_US", kernel_us, "kernel length")->required();
  app.add_option("COUNT", count, "kernels")->required()->check(vgpu::bench::at_least(0));
  vgpu::bench::parse_or_exit(app, argc, argv);
  unsigned long long period = period_ms * 1000000ull;
  unsigned long long ns = kernel_us * 1000ull;
  CUcontext ctx;
  CUmodule mod;
  CUfunction fn;
  CUstream stream;
  if (!ok(cuInit(0), "cuInit") || !ok(cuDevicePrimaryCtxRetain(&ctx, 0), "cuDevicePrimaryCtxRetain") ||
      !ok(cuCtxSetCurrent(ctx), "cuCtxSetCurrent") || !ok(cuModuleLoadData(&mod, kSpinPtx), "cuModuleLoadData") ||
      !ok(cuModuleGetFunction(&fn, mod, "spin_ns"), "cuModuleGetFunction") ||
      !ok(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate"))
    return 1;
  void* params[] = {&ns};
  std::vector<std::pair<unsigned long long, unsigned long long>> samples;
  unsigned long long next = mono_ns() + period;
  for (int i = 0; i < count; ++i) {
    for (unsigned long long t = mono_ns(); t < next; t = mono_ns()) {
      timespec d{0, static_cast<long>(next - t)};
      nanosleep(&d, nullptr);
    }
    next += period;
    unsigned long long t0 = mono_ns();
    if (!ok(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr), "cuLaunchKernel")) return 1;
    unsigned long long t1 = mono_ns();
    if (!ok(cuStreamSynchronize(stream), "cuStreamSynchronize")) return 1;
    samples.emplace_back(t1 - t0, mono_ns() - t0);
    if (mono_ns() > next) next = mono_ns() + period;  // never launch back to back after a long wait
  }
  for (auto& [launch, total] : samples) std::printf("sample %llu %llu\n", launch, total);
  return 0;
}
