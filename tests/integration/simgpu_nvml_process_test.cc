// simgpu's NVML observing other processes of the same simulated node: a child
// with a context is listed with its memory, disappears (and its memory
// returns) within 1 s of kill -9, and kernels it runs show as utilization,
// per process too (nvmlDeviceGetProcessUtilization).
#include <cuda.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"
#include "util_samples.h"
#include "vgpu/nvml_subset.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::wait_until;

constexpr unsigned long long kMi = 1ull << 20;

// A forked child that creates a context on device 0 (plus `alloc` bytes if
// given), reports readiness through a pipe, then waits to be killed.
class ContextChild {
 public:
  explicit ContextChild(size_t alloc) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      char status = run(alloc);
      (void)!write(fds[1], &status, 1);
      for (;;) pause();
    }
    close(fds[1]);
    if (read(fds[0], &status_, 1) != 1) status_ = 'E';
    close(fds[0]);
  }
  ~ContextChild() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  char status() const { return status_; }  // 'R' ready, 'A' alloc not supported, 'E' error
  pid_t pid() const { return pid_; }
  void kill9() { kill(pid_, SIGKILL); }  // left a zombie: NVML must not count it
  void reap() {
    waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }

 private:
  static char run(size_t alloc) {
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr p;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS) return 'E';
    if (cuCtxCreate(&ctx, nullptr, 0, dev) != CUDA_SUCCESS) return 'E';
    if (alloc == 0) return 'R';
    CUresult r = cuMemAlloc(&p, alloc);
    return r == CUDA_SUCCESS ? 'R' : r == CUDA_ERROR_NOT_SUPPORTED ? 'A' : 'E';
  }
  pid_t pid_ = -1;
  char status_ = 'E';
  bool reaped_ = false;
};

class NvmlProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &dev_), NVML_SUCCESS);
  }
  void TearDown() override { EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS); }

  std::vector<nvmlProcessInfo_t> processes() {
    std::vector<nvmlProcessInfo_t> out(16);
    unsigned n = static_cast<unsigned>(out.size());
    EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev_, &n, out.data()), NVML_SUCCESS);
    out.resize(n);
    return out;
  }
  const nvmlProcessInfo_t* find(const std::vector<nvmlProcessInfo_t>& list, pid_t pid) {
    for (const auto& p : list)
      if (p.pid == static_cast<unsigned>(pid)) return &p;
    return nullptr;
  }
  unsigned long long used() {
    nvmlMemory_t m{};
    EXPECT_EQ(nvmlDeviceGetMemoryInfo(dev_, &m), NVML_SUCCESS);
    return m.used;
  }
  unsigned utilization() {
    nvmlUtilization_t u{};
    EXPECT_EQ(nvmlDeviceGetUtilizationRates(dev_, &u), NVML_SUCCESS);
    return u.gpu;
  }

  vgpu::test::SimNode node_{{{"SIMGPU_DEVICES", "1"}, {"SIMGPU_MEMORY", "4Gi"},
                             {"SIMGPU_CONTEXT_OVERHEAD", "200Mi"}, {"SIMGPU_TIMESLICE", "2ms"}}};
  nvmlDevice_t dev_ = nullptr;
};

TEST_F(NvmlProcesses, KilledProcessDisappearsAndItsMemoryReturns) {
  const unsigned long long base = used();
  size_t alloc = 96 * kMi;
  ContextChild child(alloc);
  if (child.status() == 'A') {
    // Without cuMemAlloc the context overhead alone is still observable.
    GTEST_SKIP() << "cuMemAlloc_v2 is not implemented yet";
  }
  ASSERT_EQ(child.status(), 'R');
  auto list = processes();
  const nvmlProcessInfo_t* entry = find(list, child.pid());
  ASSERT_NE(entry, nullptr) << "child pid " << child.pid() << " not listed";
  EXPECT_EQ(entry->usedGpuMemory, 200 * kMi + alloc);
  EXPECT_EQ(used(), base + 200 * kMi + alloc);

  child.kill9();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_until([&] { return find(processes(), child.pid()) == nullptr; }, 1000ms));
  EXPECT_TRUE(wait_until([&] { return used() == base; }, 1000ms))
      << "used " << used() << " base " << base;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  child.reap();
  EXPECT_EQ(used(), base);
}

TEST_F(NvmlProcesses, EveryProcessWithAContextIsListed) {
  ContextChild a(0), b(0);
  ASSERT_EQ(a.status(), 'R');
  ASSERT_EQ(b.status(), 'R');
  auto list = processes();
  ASSERT_NE(find(list, a.pid()), nullptr);
  ASSERT_NE(find(list, b.pid()), nullptr);
  EXPECT_EQ(find(list, getpid()), nullptr);  // this process has no context
  EXPECT_EQ(find(list, a.pid())->usedGpuMemory, 200 * kMi);
  unsigned needed = 1;
  nvmlProcessInfo_t one;
  EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev_, &needed, &one), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(needed, list.size());
  a.kill9();
  EXPECT_TRUE(wait_until([&] { return processes().size() == list.size() - 1; }, 1000ms));
  EXPECT_NE(find(processes(), b.pid()), nullptr);
}

// sim_spin is a real driver-API program (linked against the toolkit stub)
// that saturates device 0 with spin_ns kernels.
TEST_F(NvmlProcesses, UtilizationRisesWhileKernelsRunAndFallsAfter) {
  EXPECT_EQ(utilization(), 0u);
  vgpu::test::Child spin({vgpu::test::build_dir() + "/tests/programs/sim_spin", "30", "2000"}, node_.env());
  ASSERT_TRUE(wait_until([&] { return spin.output().find("ready") != std::string::npos || !spin.running(); }, 10s));
  if (!spin.running() && spin.errors().find("failed: 801") != std::string::npos)
    GTEST_SKIP() << "kernel launches are not implemented yet: " << spin.errors();
  ASSERT_TRUE(spin.running()) << spin.errors();
  unsigned seen = 0;
  EXPECT_TRUE(wait_until([&] { return (seen = utilization()) >= 50; }, 5s)) << "last " << seen;
  spin.kill(SIGKILL);
  spin.wait(5s);
  EXPECT_TRUE(wait_until([&] { return (seen = utilization()) == 0; }, 2s)) << "last " << seen;
}

uint64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Busy ns per pid, integrated from samples newer than *last_seen (advanced).
void integrate(nvmlDevice_t d, unsigned long long* last_seen, std::map<unsigned, uint64_t>* busy) {
  unsigned n = 0;
  nvmlReturn_t r = nvmlDeviceGetProcessUtilization(d, nullptr, &n, *last_seen);
  if (r == NVML_ERROR_NOT_FOUND) return;
  ASSERT_EQ(r, NVML_ERROR_INSUFFICIENT_SIZE);
  std::vector<nvmlProcessUtilizationSample_t> s(n + 16);
  n = static_cast<unsigned>(s.size());
  ASSERT_EQ(nvmlDeviceGetProcessUtilization(d, s.data(), &n, *last_seen), NVML_SUCCESS);
  for (unsigned i = 0; i < n; ++i) {
    (*busy)[s[i].pid] += s[i].smUtil * simgpu::kUtilPeriodNs / 100;
    *last_seen = std::max(*last_seen, s[i].timeStamp);
  }
}

// "kernels=<n> kernel_ns=<ns> ...": the engine time sim_spin's kernels took.
uint64_t spin_busy_ns(const std::string& out) {
  unsigned long long kernels = 0, ns = 0;
  size_t at = out.find("kernels=");
  if (at == std::string::npos || std::sscanf(out.c_str() + at, "kernels=%llu kernel_ns=%llu", &kernels, &ns) != 2)
    return 0;
  return kernels * ns;
}

// Two processes with kernels of different lengths share the engine; a reader
// that advances lastSeenTimeStamp as vgpud does recovers each one's busy time,
// and the samples outlive the processes (one read from 0 at the end agrees).
TEST_F(NvmlProcesses, PerProcessUtilizationIntegratesToEachProcessBusyTime) {
  const std::string spin = vgpu::test::build_dir() + "/tests/programs/sim_spin";
  const uint64_t started = now_us();
  vgpu::test::Child a({spin, "1.2", "1000"}, node_.env());
  vgpu::test::Child b({spin, "1.2", "3000"}, node_.env());
  std::map<unsigned, uint64_t> busy;
  unsigned long long last_seen = 0;
  ASSERT_TRUE(wait_until([&] {
    integrate(dev_, &last_seen, &busy);
    return !a.running() && !b.running();
  }, 20s));
  const uint64_t exited = now_us();
  const uint64_t period_us = simgpu::kUtilPeriodNs / 1000;
  ASSERT_TRUE(wait_until([&] { return now_us() > (exited / period_us + 1) * period_us; }, 2s));
  integrate(dev_, &last_seen, &busy);
  ASSERT_EQ(a.wait(1s), 0) << a.errors();
  ASSERT_EQ(b.wait(1s), 0) << b.errors();

  std::map<unsigned, uint64_t> at_once;
  unsigned long long from_zero = 0;
  integrate(dev_, &from_zero, &at_once);
  uint64_t total = 0;
  for (vgpu::test::Child* c : {&a, &b}) {
    const double want = static_cast<double>(spin_busy_ns(c->output()));
    const unsigned pid = static_cast<unsigned>(c->pid());
    ASSERT_GT(want, 0.3e9) << c->output();
    // The samples count the engine's real occupancy, which is the kernels'
    // nominal time plus whatever a loaded machine adds to each chunk's sleep
    // (30 % more was seen on 2 busy cores), and never less: at least 90 % of
    // the nominal time (the sampler thread's delay: 52 ms off at 5 % + 25 ms
    // was seen), at most 1.5 times it; a process counted twice is at 2 times,
    // and one not counted is at 0.
    const double got = static_cast<double>(busy[pid]);
    EXPECT_GE(got, 0.90 * want - 50e6) << "pid " << pid;
    EXPECT_LE(got, 1.50 * want + 50e6) << "pid " << pid;
    EXPECT_EQ(at_once[pid], busy[pid]) << "pid " << pid;
    total += busy[pid];
  }
  // One engine runs one kernel at a time: the two processes' busy time fits
  // in the run's wall time (two saturating processes counted twice would not).
  EXPECT_LE(total, (exited - started) * 1000 + 50'000'000ull);
  EXPECT_EQ(busy.size(), 2u);
}

}  // namespace
