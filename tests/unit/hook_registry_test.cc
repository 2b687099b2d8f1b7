// AllocationRegistry: records come back exactly once, whatever the keys, the
// growth of the tables and the number of threads.
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "allocation_registry.h"

namespace vgpu::hook {
namespace {

TEST(HookRegistry, TakeReturnsWhatWasAddedOnce) {
  AllocationRegistry reg;
  reg.add(0x7f0000000100, {1, 4096, 0});
  Charge c;
  ASSERT_TRUE(reg.take(0x7f0000000100, &c));
  EXPECT_EQ(c.slot, 1);
  EXPECT_EQ(c.bytes, 4096u);
  EXPECT_FALSE(reg.take(0x7f0000000100, &c));
  EXPECT_FALSE(reg.take(0x1234, &c));
  EXPECT_EQ(reg.size(), 0u);
}

TEST(HookRegistry, AddReplacesTheRecordOfAKey) {
  AllocationRegistry reg;
  reg.add(0x1000, {0, 10, 7});
  reg.add(0x1000, {2, 20, 8});
  EXPECT_EQ(reg.size(), 1u);
  Charge c;
  ASSERT_TRUE(reg.take(0x1000, &c));
  EXPECT_EQ(c.slot, 2);
  EXPECT_EQ(c.bytes, 20u);
  EXPECT_EQ(c.ctx, 8u);
  EXPECT_FALSE(reg.take(0x1000, &c));
}

TEST(HookRegistry, KeyZeroIsAKeyLikeAnyOther) {
  AllocationRegistry reg;
  reg.add(0, {3, 5, 0});
  Charge c;
  EXPECT_FALSE(reg.take(1, &c));
  ASSERT_TRUE(reg.take(0, &c));
  EXPECT_EQ(c.bytes, 5u);
}

// Aligned pointers, small handle numbers and keys sharing low bits: the
// tables grow many times and deletions shift probe runs; every record is
// still found, with its own charge, exactly once.
TEST(HookRegistry, GrowthAndDeletionKeepEveryRecordReachable) {
  AllocationRegistry reg;
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 20000; ++k) keys.push_back(0x7f0000000000 + (k << 8));
  for (uint64_t k = 1; k < 5000; ++k) keys.push_back(k);
  for (uint64_t k = 1; k < 5000; ++k) keys.push_back(k << 40 | 0x10);
  for (uint64_t key : keys) reg.add(key, {1, key ^ 0x5a5a, key});
  EXPECT_EQ(reg.size(), keys.size());
  Charge c;
  // Every other one goes first (deletions in the middle of probe runs)...
  for (size_t i = 0; i < keys.size(); i += 2) {
    ASSERT_TRUE(reg.take(keys[i], &c)) << keys[i];
    ASSERT_EQ(c.bytes, keys[i] ^ 0x5a5a);
  }
  // ...then the rest, each still reachable.
  for (size_t i = 1; i < keys.size(); i += 2) {
    ASSERT_TRUE(reg.take(keys[i], &c)) << keys[i];
    ASSERT_EQ(c.ctx, keys[i]);
  }
  EXPECT_EQ(reg.size(), 0u);
  for (uint64_t key : keys) ASSERT_FALSE(reg.take(key, &c));
}

TEST(HookRegistry, TakeOwnedByReturnsExactlyThatContextsRecords) {
  AllocationRegistry reg;
  uint64_t owned = 0;
  for (uint64_t k = 0; k < 3000; ++k) {
    uint64_t ctx = k % 3 == 0 ? 0xc0ffee : (k % 3 == 1 ? 0xbeef : 0);
    if (ctx == 0xc0ffee) owned += k;
    reg.add(0x500000000000 + (k << 9), {0, k, ctx});
  }
  std::vector<Charge> out;
  reg.take_owned_by(0xc0ffee, &out);
  EXPECT_EQ(out.size(), 1000u);
  uint64_t sum = 0;
  for (const Charge& c : out) {
    EXPECT_EQ(c.ctx, 0xc0ffeeu);
    sum += c.bytes;
  }
  EXPECT_EQ(sum, owned);
  EXPECT_EQ(reg.size(), 2000u);
  out.clear();
  reg.take_owned_by(0xc0ffee, &out);
  reg.take_owned_by(0, &out);  // 0 owns nothing: such records outlive contexts
  EXPECT_TRUE(out.empty());
  Charge c;
  for (uint64_t k = 0; k < 3000; ++k)
    EXPECT_EQ(reg.take(0x500000000000 + (k << 9), &c), k % 3 != 0) << k;
}

TEST(HookRegistry, ClearDropsEverythingAndTheRegistryStaysUsable) {
  AllocationRegistry reg;
  for (uint64_t k = 0; k < 1000; ++k) reg.add(k << 8, {0, k, 0});
  reg.clear();
  Charge c;
  EXPECT_FALSE(reg.take(5 << 8, &c));
  EXPECT_EQ(reg.size(), 0u);
  reg.add(5 << 8, {0, 9, 0});
  ASSERT_TRUE(reg.take(5 << 8, &c));
  EXPECT_EQ(c.bytes, 9u);
}

// Threads add, take and replace their own keys (some in shared shards) while
// another tears down contexts: every charge comes back exactly once.
TEST(HookRegistry, ConcurrentUseLosesAndDuplicatesNothing) {
  AllocationRegistry reg;
  constexpr int kThreads = 6, kPerThread = 20000;
  std::atomic<uint64_t> returned{0}, added{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<uint64_t> live;
      for (int i = 0; i < kPerThread; ++i) {
        uint64_t key = (uint64_t(t + 1) << 44) + (uint64_t(i) << 8);
        uint64_t ctx = i % 5 == 0 ? 0xdead : 0;
        reg.add(key, {t, 1, ctx});
        added++;
        live.push_back(key);
        if (i % 3 == 0) {
          Charge c;
          uint64_t k = live[live.size() / 2];
          if (reg.take(k, &c)) returned += c.bytes;
          live.erase(live.begin() + static_cast<long>(live.size() / 2));
        }
      }
      Charge c;
      for (uint64_t k : live)
        if (reg.take(k, &c)) returned += c.bytes;
    });
  std::thread teardown([&] {
    std::vector<Charge> out;
    while (!done.load()) {
      reg.take_owned_by(0xdead, &out);
      for (const Charge& c : out) returned += c.bytes;
      out.clear();
    }
  });
  for (auto& th : threads) th.join();
  done = true;
  teardown.join();
  EXPECT_EQ(returned.load(), added.load());
  EXPECT_EQ(reg.size(), 0u);
}

}  // namespace
}  // namespace vgpu::hook
