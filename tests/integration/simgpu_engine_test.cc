// The shared execution engine across processes: two saturating processes on
// one simulated device each get about half of it; processes on different
// devices do not share; a killed engine holder does not wedge the device.
#include <cuda.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::SimNode;

struct SpinResult {
  double share = 0;  // kernel time completed / wall time
  unsigned long long kernels = 0;
};

bool parse(const std::string& out, SpinResult* r) {
  unsigned long long kernels = 0, kns = 0;
  long long wall = 0;
  size_t at = out.find("kernels=");
  if (at == std::string::npos) return false;
  if (std::sscanf(out.c_str() + at, "kernels=%llu kernel_ns=%llu wall_ns=%lld", &kernels, &kns, &wall) != 3)
    return false;
  r->kernels = kernels;
  r->share = static_cast<double>(kernels * kns) / static_cast<double>(wall);
  return true;
}

TEST(SimEngine, TwoSaturatingProcessesShareTheEngineEvenly) {
  SimNode node({{"SIMGPU_MEMORY", "4Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}, {"SIMGPU_TIMESLICE", "2ms"}});
  // 2 ms kernels: a late wake-up of a submitting thread (two spinning
  // processes on a small machine) costs a small part of each.
  Child a({program("sim_spin"), "3", "2000"}, node.env());
  Child b({program("sim_spin"), "3", "2000"}, node.env());
  ASSERT_EQ(a.wait(60s), 0) << a.errors();
  ASSERT_EQ(b.wait(60s), 0) << b.errors();
  SpinResult ra, rb;
  ASSERT_TRUE(parse(a.output(), &ra)) << a.output();
  ASSERT_TRUE(parse(b.output(), &rb)) << b.output();
  // Together they keep the engine busy; each gets about half (generous bounds:
  // the tight figure is the fairness benchmark's job).
  EXPECT_GT(ra.share + rb.share, 0.75);
  EXPECT_LT(ra.share + rb.share, 1.05);
  EXPECT_GT(ra.share / (ra.share + rb.share), 0.3);
  EXPECT_GT(rb.share / (ra.share + rb.share), 0.3);
}

TEST(SimEngine, AloneAProcessGetsTheWholeEngine) {
  SimNode node({{"SIMGPU_MEMORY", "4Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  // 2 ms kernels: a late wake-up of the submitting thread costs a small
  // part of each.
  Child a({program("sim_spin"), "1", "2000"}, node.env());
  ASSERT_EQ(a.wait(30s), 0) << a.errors();
  SpinResult r;
  ASSERT_TRUE(parse(a.output(), &r)) << a.output();
  EXPECT_GT(r.share, 0.8);
}

TEST(SimEngine, DevicesHaveSeparateEngines) {
  SimNode node({{"SIMGPU_MEMORY", "4Gi"}, {"SIMGPU_DEVICES", "2"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child a({program("sim_spin"), "2", "2000", "0"}, node.env());
  Child b({program("sim_spin"), "2", "2000", "1"}, node.env());
  ASSERT_EQ(a.wait(30s), 0) << a.errors();
  ASSERT_EQ(b.wait(30s), 0) << b.errors();
  SpinResult ra, rb;
  ASSERT_TRUE(parse(a.output(), &ra));
  ASSERT_TRUE(parse(b.output(), &rb));
  EXPECT_GT(ra.share, 0.75);
  EXPECT_GT(rb.share, 0.75);
}

TEST(SimEngine, KilledEngineHolderDoesNotWedgeTheDevice) {
  SimNode node({{"SIMGPU_MEMORY", "4Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  // A process running 1 s kernels is killed while it holds the engine.
  Child victim({program("sim_spin"), "30", "1000000"}, node.env());
  ASSERT_TRUE(vgpu::test::wait_until([&] { return victim.output().find("ready") != std::string::npos; }, 20s));
  victim.kill(SIGKILL);
  ASSERT_EQ(victim.wait(10s), -SIGKILL);
  Child after({program("sim_spin"), "1", "500"}, node.env());
  ASSERT_EQ(after.wait(30s), 0) << after.errors();
  SpinResult r;
  ASSERT_TRUE(parse(after.output(), &r));
  EXPECT_GT(r.share, 0.5);
}

// As on a real GPU, a process's queued work ends with the process: kernels
// that start after exit() detached it from the node are dropped instead of
// run against its released slot (which was a SIGSEGV at exit, or a write into
// the shared node state). sim_spin's SECONDS=0 mode makes that order certain:
// 10 kernels of 200 ms start after the detach; dropped, they end at once. A
// call made after the teardown answers CUDA_ERROR_DEINITIALIZED.
TEST(SimEngine, KernelsStartedDuringExitAreDropped) {
  SimNode node({{"SIMGPU_MEMORY", "4Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  for (int run = 0; run < 3; ++run) {
    Child c({program("sim_spin"), "0", "200000"}, node.env());
    ASSERT_EQ(c.wait(30s), 0) << "run " << run << ": " << c.errors();
    EXPECT_EQ(c.output(), "ready\nqueued\n");
    long long waited = -1;
    int done = 0, alloc = -1;
    size_t at = c.errors().find("exit_wait_ms=");
    ASSERT_NE(at, std::string::npos) << c.errors();
    ASSERT_EQ(std::sscanf(c.errors().c_str() + at, "exit_wait_ms=%lld done=%d alloc_after_exit=%d", &waited, &done,
                          &alloc),
              3);
    EXPECT_EQ(done, 1) << c.errors();
    EXPECT_LT(waited, 1000) << "2 s of kernels ran after exit() began";
    EXPECT_EQ(alloc, CUDA_ERROR_DEINITIALIZED) << "a call after the driver's teardown";
  }
  // The exits left nothing behind: a new process gets the whole engine.
  Child after({program("sim_spin"), "1", "500"}, node.env());
  ASSERT_EQ(after.wait(30s), 0) << after.errors();
  SpinResult r;
  ASSERT_TRUE(parse(after.output(), &r));
  EXPECT_GT(r.share, 0.5);
}

}  // namespace
