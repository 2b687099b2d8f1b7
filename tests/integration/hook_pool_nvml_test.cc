// Stream-ordered pools are charged for the memory they keep
// (RESERVED_MEM_CURRENT), and the hook trims the process's pools before
// refusing: tests/programs/hook_pool_probe.cc runs each scenario under
// LD_PRELOAD=libvgpu.so with a 1 GiB quota on simgpu; at every step this test
// reads the probe's physical usage from simgpu's NVML
// (nvmlDeviceGetComputeRunningProcesses) and checks that it never exceeds the
// quota plus the context overhead.
// simgpu's contexts take no memory here (SIMGPU_CONTEXT_OVERHEAD=0): the hook
// charges what a context takes (hook_driver_memory_test), which would shift
// the exact arithmetic these tests check.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"
#include "vgpu/nvml_subset.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;
constexpr unsigned long long kMi = 1ull << 20;
constexpr unsigned long long kOverhead = 64 * kMi;  // simgpu's context overhead in these tests
constexpr unsigned long long kQuota = 1024 * kMi;

struct ProbeRun {
  int rc = -1;
  std::string out, err;
  std::vector<std::string> steps;
  unsigned long long peak = 0;  // most NVML showed the probe using, over all steps
};

unsigned long long nvml_used_by(pid_t pid) {
  nvmlDevice_t dev = nullptr;
  if (nvmlDeviceGetHandleByIndex_v2(0, &dev) != NVML_SUCCESS) return ~0ull;
  std::vector<nvmlProcessInfo_t> list(64);
  unsigned n = static_cast<unsigned>(list.size());
  if (nvmlDeviceGetComputeRunningProcesses_v3(dev, &n, list.data()) != NVML_SUCCESS) return ~0ull;
  for (unsigned i = 0; i < n; ++i)
    if (list[i].pid == static_cast<unsigned>(pid)) return list[i].usedGpuMemory;
  return 0;
}

// Runs the probe in `mode`, sampling NVML at each of its steps.
ProbeRun run_probe(const std::string& mode, bool hooked) {
  SimNode node({{"SIMGPU_DEVICES", "1"}, {"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  ProbeRun run;
  EXPECT_EQ(nvmlInit_v2(), NVML_SUCCESS);
  std::string dir = std::filesystem::temp_directory_path() / ("vgpu-pool-" + std::to_string(getpid()) + "-" + mode);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto env = node.env();
  if (hooked) {
    env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
    env["VGPU_MEMORY_LIMIT"] = "1Gi";
  }
  Child child({program("hook_pool_probe"), mode, dir}, env);
  size_t seen = 0;
  for (;;) {
    // Wait for the next step line, or the end of the probe.
    bool more = wait_until(
        [&] {
          std::string out = child.output();
          size_t n = 0;
          for (size_t p = out.find("STEP "); p != std::string::npos; p = out.find("STEP ", p + 1)) ++n;
          return n > seen || !child.running();
        },
        60s);
    std::string out = child.output();
    std::vector<std::string> steps;
    for (size_t p = out.find("STEP "); p != std::string::npos; p = out.find("STEP ", p + 1)) {
      size_t e = out.find('\n', p);
      if (e == std::string::npos) break;
      steps.push_back(out.substr(p + 5, e - p - 5));
    }
    if (steps.size() <= seen) {
      if (!more || !child.running()) break;
      continue;
    }
    for (; seen < steps.size(); ++seen) {
      run.steps.push_back(steps[seen]);
      run.peak = std::max(run.peak, nvml_used_by(child.pid()));
      std::ofstream(dir + "/" + steps[seen]).put('1');
    }
  }
  run.rc = child.wait(60s);
  run.out = child.output();
  run.err = child.errors();
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  std::filesystem::remove_all(dir);
  return run;
}

TEST(HookPoolNvml, KeptPoolMemoryIsTrimmedForASynchronousAlloc) {
  ProbeRun r = run_probe("kept", true);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.steps, (std::vector<std::string>{"ctx", "alloc", "synced", "sync_alloc"}));
  EXPECT_GE(r.peak, 768 * kMi);
  EXPECT_LE(r.peak, kQuota + kOverhead) << "physically held past the quota";
}

TEST(HookPoolNvml, InUsePoolMemoryIsNotTrimmedAndTheAllocIsRefused) {
  ProbeRun r = run_probe("inuse", true);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(r.steps, (std::vector<std::string>{"ctx", "alloc", "synced", "refused", "sync_alloc"}));
  EXPECT_LE(r.peak, kQuota + kOverhead) << "physically held past the quota";
  EXPECT_NE(r.err.find("refused"), std::string::npos) << "the refusal is logged: " << r.err;
}

TEST(HookPoolNvml, ChargeFollowsReservedMemory) {
  ProbeRun r = run_probe("follow", true);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(r.steps, (std::vector<std::string>{"ctx", "alloc", "freed", "synced"}));
}

// Without the hook the same program holds 1.5 GiB: the NVML measurement and
// the probe's trim check can fail.
TEST(HookPoolNvmlControl, WithoutTheHookThePoolKeepsItsMemory) {
  ProbeRun r = run_probe("kept", false);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("FAIL the hook trimmed the pool"), std::string::npos) << r.out;
  EXPECT_GE(r.peak, 1536 * kMi);
}

}  // namespace
}  // namespace vgpu::test
