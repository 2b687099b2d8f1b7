// vgpud robustness, end to end on simgpu:
//  * kill -9 of a client holding memory and the GPU lease: its memory and the
//    GPU are someone else's within a second;
//  * kill -9 of vgpud: its clients keep running, re-register their live
//    charges with the restarted vgpud, and the tenant ledger is exact again.
#include <gtest/gtest.h>

#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
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

constexpr unsigned long long kGi = 1ull << 30;

unsigned long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull + static_cast<unsigned long long>(ts.tv_nsec);
}

bool announced(Child& c) { return c.errors().find("; launching") != std::string::npos; }

// Runs vgpud_alloc_retry for one attempt of `bytes`: 0 allocated, 3 denied.
int try_alloc(VgpudFixture& f, const std::string& token, unsigned long long bytes) {
  auto p = f.run({program("vgpud_alloc_retry"), std::to_string(bytes), "0"}, token);
  return p->wait(30s);
}

TEST(VgpudRecovery, KilledClientFreesItsMemoryAndTheGpuWithinASecond) {
  // `hog` outranks `other` in every respect: while hog's process saturates
  // the GPU, other's process waits for the lease.
  VgpudFixture f(
      "  - {name: hog, token: hog-tenant-token, priority: high, memory: 2Gi, compute: {request: 100%}}\n"
      "  - {name: other, token: other-tenant-token, memory: 1Gi, compute: {request: 0%}}\n",
      {}, "scheduler: {quantum: 5ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto hog = f.run({bin_dir() + "/vgpu-workload", "--alloc-size", "1536Mi", "--hold", "--duration", "30"}, "hog-tenant-token");
  ASSERT_TRUE(wait_until([&] { return announced(*hog) || !hog->running(); }, 20s));
  ASSERT_NE(hog->errors().find("allocations 1/1 ok"), std::string::npos) << hog->errors();
  auto other = f.run({bin_dir() + "/vgpu-workload", "--count", "20", "--json"}, "other-tenant-token");
  auto waiter = f.run({program("vgpud_alloc_retry"), std::to_string(1536ull << 20), "20000"}, "hog-tenant-token");
  ASSERT_TRUE(wait_until([&] { return waiter->output().find("denied") != std::string::npos || !waiter->running(); },
                         20s))
      << waiter->output() << waiter->errors();
  ASSERT_TRUE(waiter->running()) << waiter->output();
  ASSERT_TRUE(wait_until([&] { return announced(*other) || !other->running(); }, 20s));
  EXPECT_FALSE(wait_until([&] { return !other->running(); }, 300ms))
      << "the other tenant should wait while the high-priority hog saturates: " << other->output();

  unsigned long long killed_at = mono_ns();
  hog->kill(SIGKILL);
  ASSERT_EQ(waiter->wait(5s), 0) << waiter->output() << waiter->errors();
  std::string out = waiter->output();
  size_t at = out.find("at_ns=");
  ASSERT_NE(at, std::string::npos) << out;
  double after_ms = (std::strtod(out.c_str() + at + 6, nullptr) - static_cast<double>(killed_at)) / 1e6;
  std::printf("memory available %.1f ms after kill -9\n", after_ms);
  EXPECT_LT(after_ms, 1000) << out;
  ASSERT_EQ(other->wait(5s), 0) << other->errors();
  std::printf("other tenant done %.1f ms after kill -9\n", static_cast<double>(mono_ns() - killed_at) / 1e6);
  EXPECT_EQ(json_number(other->output(), "kernels_completed"), 20) << other->output();
  EXPECT_TRUE(f.daemon_running()) << f.daemon_log();
}

// The killed holder's tenant keeps another process, which never launches:
// vgpud must not wait for the quantum's check (1 s here) to find the lease
// unused -- the death of a holder's process brings the early check forward.
TEST(VgpudRecovery, KilledHolderBesideAnIdleProcessOfItsTenantFreesTheGpuAtOnce) {
  VgpudFixture f(
      "  - {name: hog, token: hog-tenant-token, priority: high, memory: 2Gi, compute: {request: 100%}}\n"
      "  - {name: other, token: other-tenant-token, memory: 1Gi, compute: {request: 0%}}\n",
      {}, "scheduler: {quantum: 1s}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto stay = f.run({program("sim_mem_holder"), "hold", std::to_string(1ull << 20)}, "hog-tenant-token");
  ASSERT_TRUE(wait_until([&] { return stay->output().find("ready") != std::string::npos || !stay->running(); }, 20s));
  ASSERT_TRUE(stay->running()) << stay->errors();
  auto hog = f.run({bin_dir() + "/vgpu-workload", "--duration", "30"}, "hog-tenant-token");
  ASSERT_TRUE(wait_until([&] { return announced(*hog) || !hog->running(); }, 20s)) << hog->errors();
  auto other = f.run({bin_dir() + "/vgpu-workload", "--count", "20", "--json"}, "other-tenant-token");
  ASSERT_TRUE(wait_until([&] { return announced(*other) || !other->running(); }, 20s));
  EXPECT_FALSE(wait_until([&] { return !other->running(); }, 300ms))
      << "the other tenant should wait while the high-priority hog saturates: " << other->output();
  unsigned long long killed_at = mono_ns();
  hog->kill(SIGKILL);
  ASSERT_EQ(other->wait(5s), 0) << other->errors();
  double after_ms = static_cast<double>(mono_ns() - killed_at) / 1e6;
  std::printf("other tenant (20 x 1 ms kernels) done %.1f ms after kill -9 of the holder\n", after_ms);
  // ~80 ms here (its 20 kernels, its start, the early check); found by the
  // quantum's check instead it was ~720 ms.
  EXPECT_LT(after_ms, 350) << f.daemon_log();
  EXPECT_TRUE(stay->running());
}

TEST(VgpudRecovery, KilledDaemonLosesNoChargeAfterRestart) {
  VgpudFixture f("  - {name: keep, token: keep-tenant-token, memory: 2Gi, compute: {request: 50%}}\n", {},
                 "scheduler: {quantum: 5ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto first = f.run(
      {bin_dir() + "/vgpu-workload", "--alloc-size", "1Gi", "--hold", "--duration", "4", "--json"}, "keep-tenant-token");
  ASSERT_TRUE(wait_until([&] { return announced(*first) || !first->running(); }, 20s));
  ASSERT_NE(first->errors().find("allocations 1/1 ok"), std::string::npos) << first->errors();

  f.kill_daemon();
  EXPECT_FALSE(wait_until([&] { return !first->running(); }, 300ms)) << "a client died with vgpud: " << first->errors();
  ASSERT_TRUE(f.start(&why)) << why;
  // Until `first` has re-registered its 1Gi, 1Gi + 1 byte would still fit.
  int probes = 0;
  bool exact = wait_until([&] { return ++probes && try_alloc(f, "keep-tenant-token", kGi + 1) == 3; }, 5s);
  std::printf("ledger exact again after %d probe(s)\n", probes);
  ASSERT_TRUE(exact) << "the live 1Gi was not re-registered:\n" << first->errors() << f.daemon_log();
  EXPECT_EQ(try_alloc(f, "keep-tenant-token", kGi), 0) << "the other 1Gi must still be available";
  EXPECT_EQ(try_alloc(f, "keep-tenant-token", kGi + 1), 3);

  ASSERT_EQ(first->wait(30s), 0) << first->errors();
  EXPECT_GT(json_number(first->output(), "kernels_completed"), 0) << first->output();
  EXPECT_EQ(json_number(first->output(), "error_count"), 0) << first->output();
  // `first` has gone: its re-registered charge went with it, to the byte.
  EXPECT_TRUE(wait_until([&] { return try_alloc(f, "keep-tenant-token", 2 * kGi) == 0; }, 5s)) << f.daemon_log();
  EXPECT_EQ(try_alloc(f, "keep-tenant-token", 2 * kGi + 1), 3);
}

TEST(VgpudRecovery, ReconnectedClientIsGatedAgain) {
  // A 30% cap shows whether launches are under vgpud's control: while vgpud
  // is away they run ungated (fail mode open), after the reconnect they must
  // be capped again.
  VgpudFixture f("  - {name: capped, token: capped-tenant-token, memory: 1Gi, compute: {request: 10%, limit: 30%}}\n", {},
                 "scheduler: {quantum: 5ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto w = f.run({bin_dir() + "/vgpu-workload", "--duration", "4", "--json"}, "capped-tenant-token");
  ASSERT_TRUE(wait_until([&] { return announced(*w) || !w->running(); }, 20s));
  f.kill_daemon();
  ASSERT_TRUE(f.start(&why)) << why;
  ASSERT_EQ(w->wait(30s), 0) << w->errors();
  double share = json_number(w->output(), "work_share");
  std::printf("capped work_share across a vgpud restart: %.3f\n", share);
  // Ungated for the reconnect backoff (~0.1 s of 4 s), capped the rest.
  EXPECT_LT(share, 0.45) << "launches stayed ungated after the reconnect: " << w->output() << w->errors();
  EXPECT_GT(share, 0.15) << w->output();
}

}  // namespace
