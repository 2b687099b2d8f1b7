// DriverProbe against simgpu's libcuda.so.1: a child program's first driver
// call, its allocation (exact size) and its launches are seen, attributed to
// its pid, through real uprobes. Needs the privileges to load BPF (root, or
// CAP_BPF + CAP_PERFMON); without them the tests that load BPF are skipped
// with the reason. CI runs as root and runs them.
#include "driver_probe.h"

#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using vgpu::sched::DriverCounts;
using vgpu::sched::DriverEvent;
using vgpu::sched::DriverProbe;
using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;

// Linux >= 6.6 takes uprobe_multi links; older kernels use one uprobe per
// entry point (the parameter false forces that path here too).
bool kernel_has_uprobe_multi() {
  utsname u{};
  int major = 0, minor = 0;
  return uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
         (major > 6 || (major == 6 && minor >= 6));
}

class DriverProbeTest : public ::testing::TestWithParam<bool> {
 protected:
  // Attaches through the unversioned symlink (libcuda.so -> libcuda.so.1), as
  // a node's configured driver path may be.
  void SetUp() override {
    auto probe = DriverProbe::attach(vgpu::test::simgpu_dir() + "/libcuda.so", {.uprobe_multi = GetParam()});
    if (!probe && probe.error().find("not permitted") != std::string::npos)
      GTEST_SKIP() << "cannot load BPF here: " << probe.error();
    ASSERT_TRUE(probe.ok()) << probe.error();
    probe_ = std::move(probe.value());
  }

  // Collects events for up to `timeout`, waiting on the probe's fd, until
  // `done` holds over what was collected.
  bool collect_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    return vgpu::test::wait_until(
        [&] {
          pollfd p{probe_->fd(), POLLIN, 0};
          poll(&p, 1, 20);
          probe_->consume([&](const DriverEvent& e) { events_.push_back(e); });
          return done();
        },
        timeout);
  }

  const DriverEvent* find(DriverEvent::Kind kind, pid_t pid) const {
    for (const auto& e : events_)
      if (e.kind == kind && e.pid == pid) return &e;
    return nullptr;
  }

  std::unique_ptr<DriverProbe> probe_;
  std::vector<DriverEvent> events_;
};

TEST_P(DriverProbeTest, ProbesTheResolvedLibrary) {
  char real[PATH_MAX];
  ASSERT_NE(realpath((vgpu::test::simgpu_dir() + "/libcuda.so.1").c_str(), real), nullptr);
  EXPECT_EQ(probe_->library(), real);
  auto attached = probe_->attached();
  for (const char* name : {"cuInit", "cuMemAlloc_v2", "cuMemAllocPitch_v2", "cuMemCreate",
                           "cuLaunchKernel", "cuLaunchKernelEx", "cuGraphLaunch"})
    EXPECT_NE(std::find(attached.begin(), attached.end(), name), attached.end()) << name;
}

TEST_P(DriverProbeTest, SeesFirstCallAllocationAndLaunchesOfAProcess) {
  constexpr uint64_t kBytes = 12345678;
  constexpr uint64_t kLaunches = 2500;
  vgpu::test::SimNode node;
  vgpu::test::Child child({vgpu::test::program("sim_driver_calls"), std::to_string(kBytes),
                           std::to_string(kLaunches)},
                          node.env());
  pid_t pid = child.pid();
  DriverCounts counts;
  bool seen = collect_until(
      [&] {
        auto all = probe_->counts();
        if (auto it = all.find(pid); it != all.end()) counts = it->second;
        return find(DriverEvent::Kind::kFirstCall, pid) && find(DriverEvent::Kind::kAlloc, pid) &&
               counts.launches >= kLaunches;
      },
      kDeadline);
  EXPECT_EQ(child.wait(kDeadline), 0) << child.errors();
  ASSERT_TRUE(seen) << "first call, allocation or " << kLaunches << " launches of pid " << pid
                    << " not seen; launches counted: " << counts.launches;

  const DriverEvent* first = find(DriverEvent::Kind::kFirstCall, pid);
  EXPECT_EQ(first->function, "cuInit");  // the program's first driver call
  EXPECT_NE(first->cgroup_id, 0u);
  const DriverEvent* alloc = find(DriverEvent::Kind::kAlloc, pid);
  EXPECT_EQ(alloc->function, "cuMemAlloc_v2");
  EXPECT_EQ(alloc->size, kBytes);
  EXPECT_EQ(alloc->cgroup_id, first->cgroup_id);
  EXPECT_LE(first->ts_ns, alloc->ts_ns);
  EXPECT_EQ(counts.allocs, 1u);
  EXPECT_EQ(counts.alloc_bytes, kBytes);
  EXPECT_NE(counts.cgroup_id, 0u);
  EXPECT_LE(counts.first_seen_ns, counts.last_ns);
}

TEST_P(DriverProbeTest, ExitIsMarkedAndForgetDropsTheRecord) {
  auto missing = probe_->missing();
  if (std::find(missing.begin(), missing.end(), "raw_tp:sched_process_exit") != missing.end())
    GTEST_SKIP() << "exit tracking could not be attached on this kernel";
  vgpu::test::SimNode node;
  vgpu::test::Child child({vgpu::test::program("sim_driver_calls"), "0", "10"}, node.env());
  pid_t pid = child.pid();
  ASSERT_EQ(child.wait(kDeadline), 0) << child.errors();
  bool exited = collect_until(
      [&] {
        auto all = probe_->counts();
        auto it = all.find(pid);
        return it != all.end() && it->second.exit_ns != 0 && it->second.launches == 10;
      },
      kDeadline);
  ASSERT_TRUE(exited) << "no exited record with 10 launches for pid " << pid;
  probe_->forget(pid);
  EXPECT_EQ(probe_->counts().count(pid), 0u);
}

TEST_P(DriverProbeTest, RefusesALibraryWithoutDriverEntryPoints) {
  // The test binary itself: an ELF file that exports no cu* entry point.
  auto other = DriverProbe::attach("/proc/self/exe");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().find("none of the CUDA driver entry points"), std::string::npos)
      << other.error();
}

// Launch probes left out: no launch is counted, allocations are still seen.
TEST_P(DriverProbeTest, WithoutLaunchProbesAllocationsAreStillSeen) {
  auto lean = DriverProbe::attach(vgpu::test::simgpu_dir() + "/libcuda.so.1", {.launches = false, .uprobe_multi = GetParam()});
  ASSERT_TRUE(lean.ok()) << lean.error();
  auto attached = (*lean)->attached();
  EXPECT_EQ(std::find(attached.begin(), attached.end(), "cuLaunchKernel"), attached.end());
  vgpu::test::SimNode node;
  vgpu::test::Child child({vgpu::test::program("sim_driver_calls"), "4096", "100"}, node.env());
  pid_t pid = child.pid();
  ASSERT_EQ(child.wait(kDeadline), 0) << child.errors();
  bool alloc_seen = false;
  // The fixture's full probe counts the launches: once it has them all, the
  // lean probe has seen everything it ever will of this child.
  ASSERT_TRUE(collect_until(
      [&] {
        (*lean)->consume([&](const DriverEvent& e) {
          alloc_seen |= e.kind == DriverEvent::Kind::kAlloc && e.pid == pid && e.size == 4096;
        });
        auto full = probe_->counts();
        return alloc_seen && full.count(pid) && full[pid].launches >= 100;
      },
      kDeadline));
  auto lean_counts = (*lean)->counts();
  ASSERT_EQ(lean_counts.count(pid), 1u);
  EXPECT_EQ(lean_counts[pid].launches, 0u);
  EXPECT_EQ(lean_counts[pid].allocs, 1u);
}

// vgpud must be gone within a second of SIGTERM (issue 12): detaching the
// probes is most of its shutdown. One uprobe per entry point takes ~0.1 s each
// to detach (~2 s for all); the multi link goes at once.
TEST_P(DriverProbeTest, AttachesAsOneLinkWhereTheKernelCanAndDetachesQuickly) {
  if (!GetParam()) {
    EXPECT_FALSE(probe_->multi_link());
    return;
  }
  if (!kernel_has_uprobe_multi()) GTEST_SKIP() << "kernel older than 6.6: no uprobe_multi links";
  EXPECT_TRUE(probe_->multi_link());
  auto start = std::chrono::steady_clock::now();
  probe_.reset();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 500ms) << "detaching took "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

INSTANTIATE_TEST_SUITE_P(Link, DriverProbeTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "UprobeMulti" : "PerEntryPoint"; });

TEST(DriverProbeErrors, MissingLibraryIsNamed) {
  auto probe = DriverProbe::attach("/nonexistent/vgpu/libcuda.so.1");
  ASSERT_FALSE(probe.ok());
  EXPECT_NE(probe.error().find("/nonexistent/vgpu/libcuda.so.1"), std::string::npos) << probe.error();
  EXPECT_NE(probe.error().find("No such file"), std::string::npos) << probe.error();
}

}  // namespace
