// ShmLedger (daemon mode's MemoryLedger): exact limits in the tenant's shared
// memory, and exactly this process's charges in the current memory after
// attach() ran while other threads allocated and freed.
#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shm_ledger.h"

namespace vgpu::hook {
namespace {

// One tenant's shared memory, in this process (what vgpud would create).
struct Memory {
  std::unique_ptr<TenantControl> ctl{new TenantControl{}};
  std::unique_ptr<TenantLedger> led{new TenantLedger{}};
  Memory() {
    tenant_control_init(ctl.get(), 1);
    tenant_ledger_init(led.get());
  }
  TenantShm shm() { return TenantShm{ctl.get(), led.get()}; }
  void set_limit(uint64_t bytes) { ctl->devices[0].limit.store(bytes); }
  // vgpud gives record `proc` to a process / frees it (its charges go at the
  // next locker's repair).
  void claim(int proc) { ctl->pids[proc].store(1000 + proc); }
  void free_record(int proc) {
    ctl->pids[proc].store(0);
    ctl->release_gen.fetch_add(1);
  }
  uint64_t used() { return tenant_shm_used(shm(), 0); }
  uint64_t record(int proc) { return led->procs[proc].used[0].load(); }
};

constexpr int kSlotToDev0[kMaxDevices] = {0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

TEST(HookShmLedger, NoQuotaBeforeAttach) {
  ShmLedger l;
  EXPECT_FALSE(l.reserve(0, 1));
  EXPECT_TRUE(l.reserve(0, 0));
  EXPECT_EQ(l.limit(0), 0u);
  EXPECT_EQ(l.used(0), 0u);
}

TEST(HookShmLedger, ReservesUpToTheExactLimitAndRecordsItsOwn) {
  Memory m;
  m.set_limit(100);
  m.claim(3);
  ShmLedger l;
  l.attach(m.shm(), 3, kSlotToDev0);
  EXPECT_EQ(l.limit(0), 100u);
  EXPECT_FALSE(l.reserve(1, 1));  // a GPU vgpud does not manage: quota 0
  EXPECT_TRUE(l.reserve(0, 60));
  EXPECT_TRUE(l.reserve(0, 40));
  EXPECT_FALSE(l.reserve(0, 1));
  EXPECT_EQ(l.used(0), 100u);
  EXPECT_EQ(m.record(3), 100u);
  l.release(0, 30);
  EXPECT_EQ(l.mine(0), 70u);
  EXPECT_EQ(m.used(), 70u);
  EXPECT_EQ(m.led->devices[0].denied.load(), 1u);
}

TEST(HookShmLedger, AttachAdoptsSeededAndEarlierCharges) {
  Memory a, b;
  a.claim(0);
  b.claim(5);
  ShmLedger l;
  l.seed(0, 500);  // taken before registration
  l.attach(a.shm(), 0, kSlotToDev0);
  EXPECT_EQ(a.used(), 500u);
  ASSERT_TRUE(l.reserve(0, 20));
  l.attach(b.shm(), 5, kSlotToDev0);  // vgpud restarted: a new memory
  EXPECT_EQ(b.used(), 520u);
  EXPECT_EQ(b.record(5), 520u);
  l.release(0, 520);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_EQ(l.mine(0), 0u);
}

TEST(HookShmLedger, ResetForgetsTheMemoryAndTheCharges) {
  Memory m;
  m.claim(0);
  ShmLedger l;
  l.attach(m.shm(), 0, kSlotToDev0);
  ASSERT_TRUE(l.reserve(0, 10));
  l.reset();
  EXPECT_EQ(l.mine(0), 0u);
  EXPECT_FALSE(l.reserve(0, 1));
  EXPECT_EQ(l.limit(0), 0u);
}

// Many threads racing for the last bytes of the tenant's limit.
TEST(HookShmLedger, ConcurrentReservationsAreExact) {
  constexpr uint64_t kUnit = 7, kLimit = kUnit * 1000 + 3;
  Memory m;
  m.set_limit(kLimit);
  m.claim(0);
  ShmLedger l;
  l.attach(m.shm(), 0, kSlotToDev0);
  std::atomic<uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      while (l.reserve(0, kUnit)) granted++;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), kLimit / kUnit);
  EXPECT_EQ(m.used(), kLimit / kUnit * kUnit);
  EXPECT_EQ(l.mine(0), kLimit / kUnit * kUnit);
}

// Threads allocate and free while attach() switches memories under them.
// Each thread ends holding a known amount; the current memory must then
// count exactly that, whatever the interleaving. `plan` lists the
// attachments: memory index and record.
void run_attach_race(std::vector<Memory>& mems, const std::vector<std::pair<int, int>>& plan,
                     bool free_old_records) {
  constexpr int kThreads = 4;
  ShmLedger l;
  l.attach(mems[plan[0].first].shm(), plan[0].second, kSlotToDev0);
  std::atomic<bool> stop{false};
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint64_t> held;
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t bytes = 1 + rng() % 4096;
        if (held.size() < 16 && l.reserve(0, bytes)) held.push_back(bytes);
        if (!held.empty() && rng() % 2) {
          l.release(0, held.back());
          held.pop_back();
        }
      }
      for (uint64_t b : held) l.release(0, b);
      ASSERT_TRUE(l.reserve(0, 1000 * (t + 1)));  // what the thread keeps
      running--;
    });
  for (int round = 0; round < 200; ++round) {
    auto [mem, proc] = plan[round % plan.size()];
    auto [old_mem, old_proc] = plan[(round + plan.size() - 1) % plan.size()];
    if (free_old_records && (old_mem != mem || old_proc != proc)) mems[old_mem].free_record(old_proc);
    mems[mem].claim(proc);
    l.attach(mems[mem].shm(), proc, kSlotToDev0);
    std::this_thread::yield();
  }
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_EQ(running.load(), 0);
  constexpr uint64_t kKept = 1000 * (1 + 2 + 3 + 4);
  auto [mem, proc] = plan[199 % plan.size()];
  Memory& cur = mems[mem];
  EXPECT_EQ(l.mine(0), kKept);
  EXPECT_EQ(cur.record(proc), kKept);
  if (free_old_records) cur.ctl->release_gen.fetch_add(1);  // vgpud freed a record: the next locker repairs
  EXPECT_EQ(cur.used(), kKept);
}

TEST(HookShmLedger, AttachDuringAllocationsMovesExactlyThisProcesssCharges) {
  std::vector<Memory> mems(3);
  run_attach_race(mems, {{0, 1}, {1, 1}, {2, 4}, {1, 1}}, false);
}

// The same memory again (vgpud still running handed out the tenant's memory
// again), with the same record or another one after vgpud freed the old one.
TEST(HookShmLedger, ReattachToTheSameMemoryStaysExact) {
  std::vector<Memory> mems(2);
  run_attach_race(mems, {{0, 1}, {0, 1}, {0, 2}, {1, 2}, {0, 1}}, true);
}

}  // namespace
}  // namespace vgpu::hook
