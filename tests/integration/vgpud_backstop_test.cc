// vgpud's physical backstop against processes the shim cannot stop: a
// process that never registers (no LD_PRELOAD, or a dlmopen'ed driver) and a
// registered one that rolls the tenant ledger back to allocate past its quota.
// Each is ended (policy kill) or only reported (policy report), within the
// poll interval plus grace, and the action is in vgpud's log.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

const char* kTenants = "  - {name: mallory, token: mallory-token-0001, memory: 1Gi}\n";
// Detection as configured by default (200 ms polls, 500 ms grace); no
// startup grace so the test need not wait for re-registrations.
const char* kEnforce = "enforcement: {bpf: \"off\", startup_grace: 0s, context_allowance: 64Mi}\n";

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(VgpudBackstop, UnregisteredProcessHoldingMemoryIsEnded) {
  VgpudFixture f(kTenants, {}, kEnforce);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  // No LD_PRELOAD at all: the shim never runs; NVML still lists the process.
  Child c({program("sim_mem_holder"), "hold", std::to_string(256ull << 20)}, f.node().env());
  ASSERT_TRUE(wait_until([&] { return c.output().find("ready") != std::string::npos; }, 20s)) << c.errors();
  auto t0 = std::chrono::steady_clock::now();
  int status = c.wait(10s);
  double took = seconds_since(t0);
  EXPECT_EQ(status, -9) << "expected SIGKILL; vgpud log:\n" << f.daemon_log();
  EXPECT_LT(took, 1.5) << "grace 0.5 s + one 0.2 s poll";
  RecordProperty("detect_and_end_s", std::to_string(took));
  std::printf("unregistered process ended %.3f s after it held memory\n", took);
  // vgpud logs the action just after the kill: the line may trail the child's death.
  EXPECT_TRUE(wait_until([&] { return f.daemon_log().find("(unregistered)") != std::string::npos; }, 5s)) << f.daemon_log();
}

TEST(VgpudBackstop, DlmopenBypassIsEnded) {
  VgpudFixture f(kTenants, {}, kEnforce);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  // Under the hook with a valid token, but the memory comes from a private
  // copy of the driver the hook cannot see.
  auto c = f.run({program("hostile_tenant"), "bypass", std::to_string(512ull << 20)}, "mallory-token-0001");
  ASSERT_TRUE(wait_until([&] { return c->output().find("ready") != std::string::npos || !c->running(); }, 20s));
  ASSERT_NE(c->output().find("ready"), std::string::npos) << c->errors();
  EXPECT_EQ(c->wait(10s), -9) << f.daemon_log();
}

TEST(VgpudBackstop, RolledBackLedgerDoesNotBuyMemory) {
  VgpudFixture f(kTenants, {}, kEnforce);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  // 256 MiB at a time up to 3 GiB on a 1 GiB quota, zeroing the ledger before each.
  auto c = f.run({program("hostile_tenant"), "rollback", std::to_string(256ull << 20), std::to_string(3ull << 30)},
                 "mallory-token-0001");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return c->output().find("held ") != std::string::npos || !c->running(); }, 20s));
  double first_over = seconds_since(t0);
  int status = c->wait(20s);
  double window = seconds_since(t0) - first_over;
  EXPECT_EQ(status, -9) << c->output() << c->errors() << f.daemon_log();
  EXPECT_LT(window, 1.0) << "over-quota window";
  std::printf("over-quota window: ended %.3f s after its first rolled-back allocation\n", window);
  // vgpud logs the action just after the kill: the line may trail the child's death.
  EXPECT_TRUE(wait_until([&] { return f.daemon_log().find("(over_quota)") != std::string::npos; }, 5s)) << f.daemon_log();
  // The largest amount it ever held, as it printed.
  size_t at = c->output().rfind("held ");
  if (at != std::string::npos) {
    double held_gib = std::stod(c->output().substr(at + 5)) / (1ull << 30);
    std::printf("largest hold before the kill: %.2f GiB on a 1 GiB quota\n", held_gib);
  }
}

TEST(VgpudBackstop, LaunchesThatBypassTheGateAreChargedAndEnded) {
  VgpudFixture f(kTenants + std::string("  - {name: alice, token: alice-token-00001, memory: 1Gi}\n"), {},
                 kEnforce);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto alice = f.run({vgpu::test::bin_dir() + "/vgpu-workload", "--kernel-us", "1000", "--duration", "8"},
                     "alice-token-00001");
  // Registered through the hook, but every kernel goes through a private
  // copy of the driver: no lease is ever asked for.
  auto m = f.run({program("hostile_tenant"), "unleased", "8000"}, "mallory-token-0001");
  ASSERT_TRUE(wait_until([&] { return m->output().find("launching") != std::string::npos || !m->running(); }, 20s));
  auto t0 = std::chrono::steady_clock::now();
  int status = m->wait(15s);
  double took = seconds_since(t0);
  EXPECT_EQ(status, -9) << m->output() << m->errors() << f.daemon_log();
  // vgpud logs the action just after the kill: the line may trail the child's death.
  EXPECT_TRUE(wait_until([&] { return f.daemon_log().find("(unleased_launch)") != std::string::npos; }, 5s)) << f.daemon_log();
  std::printf("unleased launches ended %.2f s after they began\n", took);
  EXPECT_EQ(alice->wait(30s), 0) << alice->errors() << "\n" << f.daemon_log();
  EXPECT_EQ(f.daemon_log().find("killed pid " + std::to_string(alice->pid())), std::string::npos)
      << "a tenant that launches under its lease is never acted on";
}

TEST(VgpudBackstop, EbpfProbeSeesTheDriverCallsOfAnUnregisteredProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root (CAP_BPF, CAP_PERFMON); CI runs as root";
  VgpudFixture f(kTenants, {}, "enforcement: {bpf: required, startup_grace: 0s}\n");
  std::string why;
  if (!f.start(&why)) {
    if (why.find("not permitted") != std::string::npos) GTEST_SKIP() << "this kernel refuses BPF: " << why;
    FAIL() << why;
  }
  ASSERT_NE(f.daemon_log().find("eBPF driver probe attached"), std::string::npos) << f.daemon_log();
  Child c({program("sim_mem_holder"), "hold", std::to_string(64ull << 20)}, f.node().env());
  EXPECT_EQ(c.wait(10s), -9) << f.daemon_log();
  EXPECT_TRUE(f.daemon_logged("seen by the eBPF probe")) << f.daemon_log();
}

TEST(VgpudBackstop, ReportPolicyOnlyRecords) {
  VgpudFixture f(kTenants, {}, "enforcement: {bpf: \"off\", startup_grace: 0s, policy: report}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  Child c({program("sim_mem_holder"), "hold", std::to_string(64ull << 20)}, f.node().env());
  ASSERT_TRUE(wait_until([&] { return f.daemon_log().find("reported pid " + std::to_string(c.pid())) !=
                                      std::string::npos; }, 10s))
      << f.daemon_log();
  EXPECT_TRUE(c.running()) << "report must not end the process";
}

}  // namespace
