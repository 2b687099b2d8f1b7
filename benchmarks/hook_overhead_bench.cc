// Hook overhead (DESIGN.md targets P1, P2): the same driver calls measured
// directly and through libvgpu.so, in one run. The binary re-executes itself
// twice on one simulated node, once without and once with
// LD_PRELOAD=libvgpu.so (with a quota set, so the ledger path is live), and
// prints both figures and the added cost per call.
//
// Usage: LD_LIBRARY_PATH=build/simgpu build/bin/hook_overhead_bench [google-benchmark flags]
// (the binary is linked like a real CUDA program, so it needs a libcuda.so.1)
#include <benchmark/benchmark.h>
#include <cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <vector>
#include <string>

#include "spin_ptx.h"

namespace {

CUcontext g_ctx;
CUfunction g_spin;
CUstream g_stream;

bool setup_cuda() {
  CUmodule mod;
  return cuInit(0) == CUDA_SUCCESS && cuDevicePrimaryCtxRetain(&g_ctx, 0) == CUDA_SUCCESS &&
         cuCtxSetCurrent(g_ctx) == CUDA_SUCCESS && cuModuleLoadData(&mod, kSpinPtx) == CUDA_SUCCESS &&
         cuModuleGetFunction(&g_spin, mod, "spin_ns") == CUDA_SUCCESS &&
         cuStreamCreate(&g_stream, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS;
}

void BM_MemAllocFree(benchmark::State& state) {
  cuCtxSetCurrent(g_ctx);
  for (auto _ : state) {
    CUdeviceptr p = 0;
    if (cuMemAlloc(&p, 4096) != CUDA_SUCCESS || cuMemFree(p) != CUDA_SUCCESS) state.SkipWithError("alloc failed");
  }
}
BENCHMARK(BM_MemAllocFree);

// Zero-length kernels; the stream is drained every 256 launches (in both
// modes alike) so the queue stays short.
void BM_LaunchKernel(benchmark::State& state) {
  cuCtxSetCurrent(g_ctx);
  unsigned long long ns = 0;
  void* params[] = {&ns};
  int n = 0;
  for (auto _ : state) {
    if (cuLaunchKernel(g_spin, 1, 1, 1, 1, 1, 1, 0, g_stream, params, nullptr) != CUDA_SUCCESS)
      state.SkipWithError("launch failed");
    if (++n % 256 == 0) cuStreamSynchronize(g_stream);
  }
  cuStreamSynchronize(g_stream);
}
BENCHMARK(BM_LaunchKernel);

// Prints "RESULT <name> <ns per iteration>" for the parent to collect.
class ResultReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    // CPU time: on a shared 2-core machine wall time mostly measures the neighbours.
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "median")
        std::printf("\nRESULT %s %.2f\n", r.benchmark_name().c_str(), r.GetAdjustedCPUTime());
    std::fflush(stdout);
  }
};

int run_child(int argc, char** argv) {
  if (!setup_cuda()) {
    std::fprintf(stderr, "hook_overhead_bench: CUDA setup failed\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  ResultReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  return 0;
}

// Runs this binary in `mode` and returns its RESULT lines by name.
std::map<std::string, double> run_mode(const char* self, const char* mode, char** args) {
  std::string cmd = std::string("VGPU_BENCH_MODE=") + mode;
  if (!std::strcmp(mode, "hooked")) cmd += " LD_PRELOAD=" VGPU_LIB_DIR "/libvgpu.so VGPU_MEMORY_LIMIT=1Gi";
  cmd += std::string(" '") + self + "' --benchmark_color=false";
  for (char** a = args; *a; ++a) cmd += std::string(" '") + *a + "'";
  std::map<std::string, double> out;
  FILE* f = popen(cmd.c_str(), "r");
  char line[512], name[256];
  double ns;
  while (f && std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "RESULT %255s %lf", name, &ns) == 2) out[name] = ns;
    else std::fputs(line, stderr);
  }
  if (f) pclose(f);
  return out;
}

constexpr int kRounds = 5;

std::map<std::string, double> medians(std::map<std::string, std::vector<double>>& runs) {
  std::map<std::string, double> out;
  for (auto& [k, v] : runs) {
    std::sort(v.begin(), v.end());
    out[k] = v[v.size() / 2];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("VGPU_BENCH_MODE")) return run_child(argc, argv);
  std::string node = "hook-bench-" + std::to_string(getpid());
  setenv("SIMGPU_STATE", node.c_str(), 1);
  setenv("LD_LIBRARY_PATH", VGPU_SIM_DIR, 1);
  // The machine is shared: alternate the two modes several times and keep the
  // median of each, so a burst of load does not land on one mode only.
  std::map<std::string, std::vector<double>> d_runs, h_runs;
  for (int round = 0; round < kRounds; ++round) {
    for (auto& [k, v] : run_mode(argv[0], "direct", argv + 1)) d_runs[k].push_back(v);
    for (auto& [k, v] : run_mode(argv[0], "hooked", argv + 1)) h_runs[k].push_back(v);
  }
  auto direct = medians(d_runs), hooked = medians(h_runs);
  unlink(("/dev/shm/simgpu-" + node).c_str());
  std::printf("%-20s %12s %12s %12s\n", "benchmark", "direct ns", "hooked ns", "added ns");
  for (auto& [name, d] : direct) {
    auto it = hooked.find(name);
    if (it == hooked.end()) continue;
    std::printf("%-20s %12.1f %12.1f %12.1f\n", name.c_str(), d, it->second, it->second - d);
  }
  return direct.empty() || hooked.empty() ? 1 : 0;
}
