// How a tenant's request for a lease survives a handover, driven at message
// level (RawClient, no CUDA) against a real vgpud:
//  * a drained process that still wants the GPU says so in its LeaseReturn
//    (kReturnWants) instead of sending a LeaseRequest, and is queued;
//    one whose return does not say so and that sends no request is not;
//  * launches still blocked on the lease word (the ledger's waiting count)
//    keep their tenant's request when a grant is taken back before they
//    used it (a preemption), so they need not ask again; with no launch
//    blocked, the tenant is not granted again unasked.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "raw_client.h"
#include "vgpu/protocol.h"
#include "vgpu/tenant_shm.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::bench::RawClient;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

std::unique_ptr<RawClient> join(VgpudFixture& f, const std::string& token) {
  auto c = std::make_unique<RawClient>();
  std::string why;
  EXPECT_TRUE(c->register_as(f.socket(), token, &why)) << why;
  return c;
}

bool granted(RawClient& c) { return vgpu::lease_granted(c.lease(0).state.load()); }

// Like a hooked launch blocked on the lease word: woken by the grant, it marks
// the lease as launched-under at once. False if no grant came in `timeout`.
bool take(RawClient& c, std::chrono::milliseconds timeout = 5s) {
  vgpu::LeaseWord& w = c.lease(0);
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    uint32_t s = w.state.load();
    if (vgpu::lease_granted(s)) return c.touch(0), true;
    vgpu::lease_wait(&w, s, 10'000'000);
  }
  return false;
}

// A quantum long enough that a grant's first check never comes before the
// test's client has marked it (the idle check is no shorter than the quantum).
const char* kScheduler = "scheduler: {quantum: 20ms, idle_check: 50ms}\n";

// Waits for a Revoke of GPU 0 and answers it with `flags`; false if none came.
bool answer_revoke(RawClient& c, uint32_t flags) {
  vgpu::proto::Revoke rv{};
  for (int i = 0; i < 100; ++i) {
    int type = c.receive(20, &rv);
    if (type < 0) return false;
    if (type == static_cast<int>(vgpu::proto::Type::kRevoke)) return c.return_lease(rv.device, rv.epoch, flags, 0);
  }
  return false;
}

TEST(VgpudLeaseRequests, AReturnThatAsksAgainQueuesTheTenantWithoutALeaseRequest) {
  VgpudFixture f(
      "  - {name: a, token: lease-requests-token-a, memory: 1Gi, compute: {request: 50%}}\n"
      "  - {name: b, token: lease-requests-token-b, memory: 1Gi, compute: {request: 50%}}\n",
      {}, kScheduler);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto a = join(f, "lease-requests-token-a");
  auto b = join(f, "lease-requests-token-b");
  ASSERT_TRUE(a->request_lease(0));
  ASSERT_TRUE(take(*a));
  ASSERT_TRUE(b->request_lease(0));
  // a's quantum ends: it drains and asks again in the same message.
  ASSERT_TRUE(answer_revoke(*a, vgpu::proto::kReturnWants));
  ASSERT_TRUE(take(*b));
  // b's quantum ends with a queued: b returns without asking again.
  ASSERT_TRUE(answer_revoke(*b, 0)) << "a's folded request was lost: b was never revoked";
  EXPECT_TRUE(take(*a));
  // a, renewed while nobody else waits, keeps the GPU: b did not ask.
  EXPECT_FALSE(wait_until([&] { return granted(*b); }, 300ms)) << "b was granted without asking";
}

TEST(VgpudLeaseRequests, BlockedLaunchesKeepTheirRequestAcrossAGrantPreemptedBeforeTheyUsedIt) {
  VgpudFixture f(
      "  - {name: low, token: lease-requests-token-l, memory: 1Gi, compute: {request: 0%}}\n"
      "  - {name: high, token: lease-requests-token-h, priority: high, memory: 1Gi, compute: {request: 50%}}\n",
      {}, kScheduler);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto low = join(f, "lease-requests-token-l");
  auto high = join(f, "lease-requests-token-h");
  std::atomic<uint32_t>& blocked = low->shm().led->lease_stats[0].waiting;

  // Round 1: a launch of `low` is blocked on the lease word when its grant
  // is preempted (it never launched under it).
  blocked.store(1);
  ASSERT_TRUE(low->request_lease(0));
  ASSERT_TRUE(wait_until([&] { return granted(*low); }, 5s));
  ASSERT_TRUE(high->request_lease(0));
  ASSERT_TRUE(take(*high));
  EXPECT_FALSE(granted(*low));
  // high is done: at its quantum's end (low waits) it returns without asking.
  ASSERT_TRUE(answer_revoke(*high, 0)) << "low's blocked launch lost its place: high was never revoked";
  EXPECT_TRUE(take(*low));
  blocked.store(0);

  // Round 2: nothing of `low` blocked: a preempted grant is not given back
  // unasked.
  ASSERT_TRUE(high->request_lease(0));
  ASSERT_TRUE(answer_revoke(*low, 0));  // low launched this time: it drains, not asking
  ASSERT_TRUE(take(*high));
  // high has nothing more: it says so, and the lease goes back.
  ASSERT_TRUE(high->return_lease(0, vgpu::lease_epoch(high->lease(0).state.load()), vgpu::proto::kReturnIdle, 0));
  ASSERT_TRUE(answer_revoke(*high, 0));
  EXPECT_FALSE(wait_until([&] { return granted(*low); }, 300ms)) << "low was granted without asking";
}

}  // namespace
