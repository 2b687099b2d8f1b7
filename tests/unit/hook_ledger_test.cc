// LocalLedger: exact limits, including under concurrency (AllocationRegistry:
// hook_registry_test.cc).
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "memory_ledger.h"

namespace vgpu::hook {
namespace {

LocalLedger make_ledger(uint64_t limit0) {
  uint64_t limits[kMaxDevices];
  for (auto& l : limits) l = kUnlimited;
  limits[0] = limit0;
  return LocalLedger(limits);
}

TEST(HookLedger, ReservesUpToTheExactLimit) {
  LocalLedger ledger = make_ledger(100);
  EXPECT_TRUE(ledger.reserve(0, 60));
  EXPECT_TRUE(ledger.reserve(0, 40));
  EXPECT_FALSE(ledger.reserve(0, 1));
  EXPECT_EQ(ledger.used(0), 100u);
  ledger.release(0, 40);
  EXPECT_TRUE(ledger.reserve(0, 40));
  EXPECT_TRUE(ledger.reserve(0, 0));
}

TEST(HookLedger, HugeRequestsDoNotOverflow) {
  LocalLedger ledger = make_ledger(100);
  EXPECT_TRUE(ledger.reserve(0, 10));
  EXPECT_FALSE(ledger.reserve(0, UINT64_MAX - 5));
  EXPECT_EQ(ledger.used(0), 10u);
  EXPECT_TRUE(ledger.reserve(1, UINT64_MAX - 5));  // unlimited device
}

TEST(HookLedger, OutOfRangeSlotsTakeNothing) {
  LocalLedger ledger = make_ledger(100);
  EXPECT_FALSE(ledger.reserve(-1, 1));
  EXPECT_FALSE(ledger.reserve(kMaxDevices, 1));
  EXPECT_EQ(ledger.limit(kMaxDevices), kUnlimited);
}

// Many threads racing for the last bytes: exactly limit/unit succeed, every
// round, whatever the interleaving.
TEST(HookLedger, ConcurrentReservationsAreExact) {
  constexpr uint64_t kUnit = 7, kLimit = kUnit * 1000 + 3;
  LocalLedger ledger = make_ledger(kLimit);
  for (int round = 0; round < 20; ++round) {
    std::atomic<uint64_t> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&] {
        while (ledger.reserve(0, kUnit)) granted++;
      });
    for (auto& th : threads) th.join();
    ASSERT_EQ(granted.load(), kLimit / kUnit);
    ASSERT_EQ(ledger.used(0), kLimit / kUnit * kUnit);
    ledger.release(0, ledger.used(0));
  }
}

TEST(HookLedger, ResetForgetsUsage) {
  LocalLedger ledger = make_ledger(100);
  ASSERT_TRUE(ledger.reserve(0, 100));
  ledger.reset();
  EXPECT_EQ(ledger.used(0), 0u);
}

}  // namespace
}  // namespace vgpu::hook
