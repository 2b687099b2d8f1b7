// VGPU_FAIL_MODE, end to end: what a process gets when vgpud cannot be
// reached at all (open: standalone limits; closed: refused like a process
// without a token), and a registered process whose vgpud is away in closed
// mode: its launches wait for vgpud to be back, then it finishes normally.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

const char* kTenants = "  - {name: lone, token: lone-tenant-token, memory: 1Gi, compute: {request: 50%}}\n";

std::map<std::string, std::string> env_with(VgpudFixture& f, const std::string& mode) {
  auto env = f.tenant_env("lone-tenant-token");
  env["VGPU_FAIL_MODE"] = mode;
  return env;
}

// The refusal probe's line for a process whose vgpud was never started.
std::string probe_unreachable(const std::string& mode) {
  VgpudFixture f(kTenants);  // not started: nobody listens on its socket
  Child p({program("vgpud_refusal_probe")}, env_with(f, mode));
  EXPECT_EQ(p.wait(30s), 0) << p.errors();
  return p.output();
}

TEST(VgpudFailMode, UnreachableOpenRunsStandalone) {
  std::string out = probe_unreachable("open");
  EXPECT_NE(out.find("ctx=0 alloc=0 launch=0"), std::string::npos) << out;
}

TEST(VgpudFailMode, UnreachableClosedIsRefused) {
  std::string out = probe_unreachable("closed");
  EXPECT_NE(out.find("alloc=2 "), std::string::npos) << "CUDA_ERROR_OUT_OF_MEMORY expected: " << out;
  EXPECT_NE(out.find("launch=800"), std::string::npos) << "CUDA_ERROR_NOT_PERMITTED expected: " << out;
}

TEST(VgpudFailMode, ClosedModeProcessStartedBeforeVgpudIsServedOnceItIsUp) {
  // docs/configuration.md: closed "refuses allocations and launches until
  // it is back". A process that started first must not stay refused forever.
  VgpudFixture f(kTenants);
  Child p({program("vgpud_alloc_retry"), std::to_string(256ull << 20), "6000"}, env_with(f, "closed"));
  ASSERT_TRUE(wait_until([&] { return p.output().find("denied") != std::string::npos || !p.running(); }, 20s))
      << p.errors();
  ASSERT_TRUE(p.running()) << p.output() << p.errors();
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(p.wait(30s), 0) << "still refused long after vgpud came up: " << p.output() << p.errors();
}

TEST(VgpudFailMode, OpenModeProcessOverQuotaIsNotAdoptedSilently) {
  // vgpud is down; with open chosen explicitly the process takes 2 GiB on a
  // tenant quota of 1 GiB. When vgpud comes back the process registers, and
  // the backstop (not a silent adoption) decides: policy kill ends it.
  VgpudFixture f(kTenants, {}, "enforcement: {bpf: \"off\", context_allowance: 0}\n");
  Child w({bin_dir() + "/vgpu-workload", "--duration", "30", "--alloc-size", "1Gi", "--alloc-count", "2", "--hold"},
          env_with(f, "open"));
  ASSERT_TRUE(wait_until([&] { return w.errors().find("; launching") != std::string::npos || !w.running(); }, 20s))
      << w.errors();
  ASSERT_NE(w.errors().find("allocations 2/2 ok"), std::string::npos) << w.errors();
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(w.wait(10s), -9) << w.errors() << f.daemon_log();
  EXPECT_TRUE(f.daemon_logged("(over_quota)")) << f.daemon_log();
}

TEST(VgpudFailMode, ClosedModeLaunchesWaitForVgpudToComeBack) {
  VgpudFixture f(kTenants, {}, "scheduler: {quantum: 5ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  Child w({bin_dir() + "/vgpu-workload", "--duration", "3", "--alloc-size", "256Mi", "--hold", "--json"},
          env_with(f, "closed"));
  ASSERT_TRUE(wait_until([&] { return w.errors().find("; launching") != std::string::npos || !w.running(); }, 20s));
  f.kill_daemon();
  // One second without vgpud: the process waits (it neither dies nor runs).
  EXPECT_FALSE(wait_until([&] { return !w.running(); }, 1000ms)) << w.errors();
  ASSERT_TRUE(f.start(&why)) << why;
  ASSERT_EQ(w.wait(30s), 0) << w.errors();
  double share = json_number(w.output(), "work_share");
  std::printf("closed mode work_share with a 1 s outage in 3 s: %.3f\n", share);
  EXPECT_LT(share, 0.8) << "launches ran while vgpud was away: " << w.output();
  EXPECT_GT(json_number(w.output(), "kernels_completed"), 0) << w.output();
  EXPECT_EQ(json_number(w.output(), "error_count"), 0) << w.output();
}

}  // namespace
