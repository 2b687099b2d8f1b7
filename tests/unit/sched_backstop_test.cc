// Backstop decisions from fabricated observations: over-quota tenants,
// unregistered processes (grace, startup grace, allowlist, eBPF sightings),
// GPU time used without the lease, and the per-tenant policy.
#include "backstop.h"

#include <gtest/gtest.h>

namespace vgpu::sched {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kGi = 1ull << 30;

EnforcementConfig test_config() {
  EnforcementConfig c;
  c.tolerance = 64ull << 20;
  c.context_allowance = 256ull << 20;
  c.grace_ns = 500 * kMs;
  c.startup_grace_ns = 2000 * kMs;
  return c;
}

Observation base(uint64_t now) {
  Observation o;
  o.now_ns = now;
  o.interval_ns = 200 * kMs;
  o.gpus.resize(1);
  TenantFacts a;
  a.name = "a";
  a.quota = {1 * kGi};
  a.held_ns = {0};
  o.tenants[1] = a;
  return o;
}

TEST(Backstop, TenantWithinQuotaPlusAllowancesIsLeftAlone) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.registered = {{100, 1}, {101, 1}};
  // 1 GiB quota + 64 MiB + 2 x 256 MiB of contexts.
  o.gpus[0] = {{100, kGi / 2 + (256ull << 20)}, {101, kGi / 2 + (256ull << 20) + (64ull << 20)}};
  EXPECT_TRUE(b.evaluate(o).empty());
}

TEST(Backstop, OverQuotaTenantLosesItsLargestProcessOnce) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.registered = {{100, 1}, {101, 1}};
  o.gpus[0] = {{100, 3 * kGi}, {101, kGi / 4}};
  auto v = b.evaluate(o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pid, 100);
  EXPECT_EQ(v[0].reason, Reason::kOverQuota);
  EXPECT_EQ(v[0].action, EnforcePolicy::kKill);
  EXPECT_NE(v[0].detail.find("'a'"), std::string::npos) << v[0].detail;
  o.now_ns += 200 * kMs;
  EXPECT_TRUE(b.evaluate(o).empty()) << "a killed process is not acted on twice";
}

TEST(Backstop, PerTenantReportPolicyWins) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.tenants[1].policy = EnforcePolicy::kReport;
  o.registered = {{100, 1}};
  o.gpus[0] = {{100, 3 * kGi}};
  auto v = b.evaluate(o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].action, EnforcePolicy::kReport);
}

TEST(Backstop, UnregisteredProcessAfterGraceOnly) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.gpus[0] = {{200, 1024}};
  EXPECT_TRUE(b.evaluate(o).empty()) << "first sighting starts the grace period";
  o.now_ns += 400 * kMs;
  EXPECT_TRUE(b.evaluate(o).empty());
  o.now_ns += 200 * kMs;
  auto v = b.evaluate(o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pid, 200);
  EXPECT_EQ(v[0].reason, Reason::kUnregistered);
  EXPECT_EQ(b.unmanaged().count(200), 1u);
}

TEST(Backstop, ProcessThatRegistersWithinGraceIsFine) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.gpus[0] = {{200, 1024}};
  EXPECT_TRUE(b.evaluate(o).empty());
  o.now_ns += 300 * kMs;
  o.registered = {{200, 1}};
  EXPECT_TRUE(b.evaluate(o).empty());
  o.now_ns += 1000 * kMs;
  EXPECT_TRUE(b.evaluate(o).empty());
}

TEST(Backstop, StartupGraceLetsOldProcessesReRegister) {
  Backstop b(test_config(), 10'000 * kMs, nullptr);
  Observation o = base(10'000 * kMs);
  o.gpus[0] = {{200, 1024}};
  EXPECT_TRUE(b.evaluate(o).empty());
  o.now_ns += 1000 * kMs;  // past grace, within startup grace
  EXPECT_TRUE(b.evaluate(o).empty());
  o.now_ns += 1100 * kMs;  // past startup grace
  EXPECT_EQ(b.evaluate(o).size(), 1u);
}

TEST(Backstop, AllowlistedProcessesAreNeverActedOn) {
  Backstop b(test_config(), 0, [](int32_t pid) { return pid == 200; });
  Observation o = base(10'000 * kMs);
  o.gpus[0] = {{200, 1024}};
  for (int i = 0; i < 10; ++i, o.now_ns += 200 * kMs) EXPECT_TRUE(b.evaluate(o).empty());
}

TEST(Backstop, DriverCallSeenByTheProbeStartsTheGraceAtOnce) {
  Backstop b(test_config(), 0, nullptr);
  b.saw_driver_call(300, 10'000 * kMs);
  Observation o = base(10'100 * kMs);
  EXPECT_TRUE(b.evaluate(o).empty()) << "a driver call alone (maybe another node's GPU) is not acted on";
  o.now_ns = 10'600 * kMs;
  EXPECT_TRUE(b.evaluate(o).empty());
  o.gpus[0] = {{300, 4096}};  // now it holds memory here: its grace began at the driver call
  auto v = b.evaluate(o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pid, 300);
  EXPECT_EQ(v[0].gpu, 0);
}

TEST(Backstop, BusyWithoutLeaseOverAWindowIsChargedAndActedOn) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.registered = {{100, 1}};
  o.tenants[1].held_ns = {20 * kMs};
  o.gpus[0] = {{100, kGi / 2, 190 * kMs}};  // busy nearly all the time, lease 10% of it
  std::vector<Verdict> v;
  for (int i = 0; i < 9; ++i, o.now_ns += 200 * kMs) EXPECT_TRUE(b.evaluate(o).empty()) << "window not full";
  v = b.evaluate(o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].act);
  EXPECT_EQ(v[0].reason, Reason::kUnleasedLaunch);
  // 1900 ms busy, 200 ms held, slack 2000/5 ms + one sample period.
  EXPECT_EQ(v[0].penalty_ns, 1700 * kMs - 400 * kMs - 166'667'000ull);
}

TEST(Backstop, BusyWithinTheLeaseIsFine) {
  Backstop b(test_config(), 0, nullptr);
  Observation o = base(10'000 * kMs);
  o.registered = {{100, 1}};
  o.tenants[1].held_ns = {160 * kMs};
  // NVML samples (1/6 s) do not line up with polls: a poll sees two samples
  // or none, though on average the tenant was busy only while it held the lease.
  for (int i = 0; i < 30; ++i, o.now_ns += 200 * kMs) {
    o.gpus[0] = {{100, kGi / 2, i % 2 ? 0 : 333 * kMs}};
    EXPECT_TRUE(b.evaluate(o).empty()) << i;
  }
}

}  // namespace
}  // namespace vgpu::sched
