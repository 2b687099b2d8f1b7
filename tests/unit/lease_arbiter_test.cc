// LeaseArbiter with a fake clock: shares, caps, priorities, renewal.
#include "lease_arbiter.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace vgpu::sched {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kQuantum = 10 * kMs;

// Drives an arbiter as vgpud would, with every listed tenant always waiting
// (saturating) and drains taking `drain` ns. Returns charged time per tenant.
struct Sim {
  LeaseArbiter arb{kQuantum, 1000 * kMs, 1};
  uint64_t now = 1;
  uint64_t drain = 0;
  std::map<int, uint64_t> held;  // wall time holding the lease

  void add(int t, double request, double limit, Priority p = Priority::kNormal) {
    arb.set_policy(t, {p, request, limit});
  }
  void run(const std::vector<int>& saturating, uint64_t duration) {
    uint64_t end = now + duration;
    uint64_t grant_at = 0;
    while (now < end) {
      for (int t : saturating)
        if (arb.holder() != t) arb.request(t);
      Action a = arb.tick(now);
      if (a.kind == Action::kGrant) grant_at = now;
      if (a.kind == Action::kRevoke) {
        now += drain;
        held[a.tenant] += now - grant_at;
        arb.drained(a.tenant, now);
        continue;
      }
      uint64_t next = std::min(arb.next_tick(), end);
      if (next <= now) next = now + kMs;
      if (arb.holder() >= 0) held[arb.holder()] += next - now, grant_at = next;
      now = next;
    }
  }
  double fraction(int t, uint64_t duration) const {
    auto it = held.find(t);
    return it == held.end() ? 0 : static_cast<double>(it->second) / static_cast<double>(duration);
  }
};

// Like Sim, but a revoked holder's queued work keeps the engine for `drain`
// after the revoke while the next holder may already be granted (overlapped
// handover); `engine` is the engine time each tenant's work got.
struct OverlapSim {
  LeaseArbiter arb{kQuantum, 1000 * kMs, 1, kMs / 2};
  uint64_t now = 1;
  uint64_t drain = 4 * kMs;
  std::map<int, uint64_t> engine;
  int overlapped_grants = 0;

  void run(const std::vector<int>& saturating, uint64_t duration) {
    uint64_t end = now + duration;
    int draining = -1;
    uint64_t drain_end = 0;
    while (now < end) {
      for (int t : saturating)
        if (arb.holder() != t) arb.request(t);
      Action a = arb.tick(now);
      if (a.kind == Action::kRevoke) {
        draining = a.tenant;
        drain_end = now + drain;
        continue;
      }
      if (a.kind == Action::kGrant && draining >= 0) ++overlapped_grants;
      uint64_t next = std::min(arb.next_tick(), end);
      if (draining >= 0) next = std::min(next, drain_end);
      if (next <= now) next = now + kMs;
      int on_engine = draining >= 0 ? draining : arb.holder();
      if (on_engine >= 0) engine[on_engine] += next - now;
      now = next;
      if (draining >= 0 && now >= drain_end) {
        arb.drained(draining, now);
        draining = -1;
      }
    }
  }
};

TEST(LeaseArbiter, OverlappedHandoversKeepSharesExact) {
  OverlapSim s;
  s.arb.set_policy(1, {Priority::kNormal, 0.3, 1.0});
  s.arb.set_policy(2, {Priority::kNormal, 0.7, 1.0});
  const uint64_t d = 20'000 * kMs;
  s.run({1, 2}, d);
  EXPECT_GT(s.overlapped_grants, 100);  // nearly every handover overlapped its drain
  double total = static_cast<double>(s.engine[1] + s.engine[2]);
  EXPECT_GT(total, 0.99 * static_cast<double>(d));  // the engine never waited
  EXPECT_NEAR(static_cast<double>(s.engine[1]) / total, 0.30, 0.01);
  EXPECT_NEAR(static_cast<double>(s.engine[2]) / total, 0.70, 0.01);
}

TEST(LeaseArbiter, TwoTenantsGetTheirRequests) {
  Sim s;
  s.add(1, 0.3, 1.0);
  s.add(2, 0.7, 1.0);
  s.run({1, 2}, 20'000 * kMs);
  EXPECT_NEAR(s.fraction(1, 20'000 * kMs), 0.30, 0.02);
  EXPECT_NEAR(s.fraction(2, 20'000 * kMs), 0.70, 0.02);
}

TEST(LeaseArbiter, FourTenantsGetTheirRequests) {
  Sim s;
  s.add(1, 0.1, 1.0);
  s.add(2, 0.2, 1.0);
  s.add(3, 0.3, 1.0);
  s.add(4, 0.4, 1.0);
  s.run({1, 2, 3, 4}, 30'000 * kMs);
  for (int t = 1; t <= 4; ++t) EXPECT_NEAR(s.fraction(t, 30'000 * kMs), 0.1 * t, 0.02) << t;
}

TEST(LeaseArbiter, SpareTimeIsSharedByRequestWeight) {
  Sim s;
  s.add(1, 0.2, 1.0);
  s.add(2, 0.3, 1.0);
  s.run({1, 2}, 20'000 * kMs);
  EXPECT_NEAR(s.fraction(1, 20'000 * kMs), 0.4, 0.03);
  EXPECT_NEAR(s.fraction(2, 20'000 * kMs), 0.6, 0.03);
}

// Policy for time nobody requested (docs/architecture.md): in proportion to
// requests; request-0 tenants are best effort, after every tenant with one.
TEST(LeaseArbiter, RequestZeroTenantsAreBestEffort) {
  Sim s;
  s.add(1, 0.2, 1.0);
  s.add(2, 0.4, 1.0);
  s.add(3, 0.0, 1.0);
  s.run({1, 2, 3}, 30'000 * kMs);
  EXPECT_NEAR(s.fraction(1, 30'000 * kMs), 1.0 / 3, 0.02);
  EXPECT_NEAR(s.fraction(2, 30'000 * kMs), 2.0 / 3, 0.02);
  EXPECT_LT(s.fraction(3, 30'000 * kMs), 0.005);  // only its first grant, before anyone was charged
  std::map<int, double> want = {{1, 1.0 / 3}, {2, 2.0 / 3}, {3, 0.0}};
  for (auto [t, w] : want) EXPECT_NEAR(s.arb.effective_target(t, s.now), w, 1e-9) << t;
}

TEST(LeaseArbiter, RequestZeroTenantsGetWhatCappedTenantsLeave) {
  Sim s;
  s.add(1, 0.2, 0.3);  // capped at 30 %
  s.add(2, 0.0, 1.0);
  s.add(3, 0.0, 1.0);
  s.run({1, 2, 3}, 30'000 * kMs);
  EXPECT_NEAR(s.fraction(1, 30'000 * kMs), 0.30, 0.02);
  EXPECT_NEAR(s.fraction(2, 30'000 * kMs), 0.35, 0.02);
  EXPECT_NEAR(s.fraction(3, 30'000 * kMs), 0.35, 0.02);
  EXPECT_NEAR(s.arb.effective_target(2, s.now), 0.35, 1e-9);
}

TEST(EffectiveTargets, SpareTimeByPriorityThenRequestWithinLimits) {
  std::map<int, TenantPolicy> p = {{1, {Priority::kNormal, 0.2, 1.0}},
                                   {2, {Priority::kNormal, 0.4, 0.5}},
                                   {3, {Priority::kNormal, 0.0, 1.0}},
                                   {4, {Priority::kLow, 0.1, 1.0}},
                                   {5, {Priority::kHigh, 0.1, 0.2}}};
  auto t = effective_targets(p, {1, 2, 3, 4, 5});
  // Guarantees 0.2 + 0.4 + 0.1 + 0.1 = 0.8; high (5) takes 0.1 more up to its
  // limit; the normal tenants with a request share the last 0.1 by request
  // (1: +0.033, 2: +0.067, both under their limits); nothing is left for 3 or 4.
  EXPECT_NEAR(t[5], 0.2, 1e-9);
  EXPECT_NEAR(t[1], 0.2 + 0.1 / 3, 1e-9);
  EXPECT_NEAR(t[2], 0.4 + 0.2 / 3, 1e-9);
  EXPECT_NEAR(t[3], 0.0, 1e-9);
  EXPECT_NEAR(t[4], 0.1, 1e-9);
  // Only the tenants that compete count: alone, a tenant gets up to its limit.
  auto alone = effective_targets(p, {2});
  EXPECT_NEAR(alone[2], 0.5, 1e-9);
  // Overcommitted requests are scaled down to the GPU.
  std::map<int, TenantPolicy> over = {{1, {Priority::kNormal, 0.6, 1.0}}, {2, {Priority::kNormal, 0.9, 1.0}}};
  auto o = effective_targets(over, {1, 2});
  EXPECT_NEAR(o[1], 0.4, 1e-9);
  EXPECT_NEAR(o[2], 0.6, 1e-9);
}

TEST(LeaseArbiter, LimitIsAHardCapEvenOnAnIdleGpu) {
  Sim s;
  s.add(1, 0.0, 0.3);
  s.run({1}, 20'000 * kMs);
  EXPECT_NEAR(s.fraction(1, 20'000 * kMs), 0.30, 0.02);
}

TEST(LeaseArbiter, AloneATenantIsRenewedWithoutRevocation) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  EXPECT_EQ(arb.tick(1).kind, Action::kGrant);
  for (uint64_t t = 1; t < 5000 * kMs; t += kQuantum) EXPECT_EQ(arb.tick(t).kind, Action::kNone);
  EXPECT_EQ(arb.holder(), 1);
  EXPECT_EQ(arb.granted_count(1), 1u);
}

TEST(LeaseArbiter, HigherPriorityPreemptsAtOnce) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kHigh, 0.3, 1.0});
  arb.request(1);
  ASSERT_EQ(arb.tick(100).kind, Action::kGrant);
  arb.request(2);
  Action a = arb.tick(200);  // long before the quantum ends
  EXPECT_EQ(a.kind, Action::kRevoke);
  EXPECT_EQ(a.tenant, 1);
  EXPECT_EQ(arb.tick(300).kind, Action::kNone);  // 1 never drained here yet: waits for the drain
  arb.drained(1, 400);
  a = arb.tick(400);
  EXPECT_EQ(a.kind, Action::kGrant);
  EXPECT_EQ(a.tenant, 2);
  EXPECT_EQ(arb.preempted_count(1), 1u);
}

// Overlapped handover: once a tenant's drain time is known, the next holder
// is granted the lead before that drain is expected to end; the drain is
// charged to the revoked holder only, and the next holder's lease and
// quantum start when the drain ends (or a lead after its grant, if later).
TEST(LeaseArbiter, OverlappedHandoverChargesTheDrainToThePreviousHolder) {
  const uint64_t lead = kMs / 2, drain = 4 * kMs;
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1, lead);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  arb.request(2);
  uint64_t now = 1;
  // Learn 1's drain time: its first handover waits for the drain.
  ASSERT_EQ(arb.tick(now).kind, Action::kGrant);
  ASSERT_EQ(arb.holder(), 1);
  now += kQuantum;
  ASSERT_EQ(arb.tick(now).kind, Action::kRevoke);
  arb.request(1);
  EXPECT_EQ(arb.tick(now + drain - 1).kind, Action::kNone);
  arb.drained(1, now + drain);
  now += drain;
  ASSERT_EQ(arb.tick(now).kind, Action::kGrant);
  ASSERT_EQ(arb.holder(), 2);
  now += kQuantum;
  ASSERT_EQ(arb.release_holder(now).kind, Action::kRevoke);  // 2 drains (no estimate for 2): 1 waits
  arb.request(2);
  arb.drained(2, now + drain);
  now += drain;
  ASSERT_EQ(arb.tick(now).kind, Action::kGrant);
  ASSERT_EQ(arb.holder(), 1);
  // 1 is revoked again; 2 is granted `lead` before 1's drain should end.
  now += kQuantum;
  uint64_t revoked = now;
  uint64_t charged1 = arb.charged_ns(1, revoked);
  Action a = arb.tick(revoked);
  ASSERT_EQ(a.kind, Action::kRevoke);
  ASSERT_EQ(a.tenant, 1);
  EXPECT_EQ(arb.tick(revoked + drain - lead - 1).kind, Action::kNone);
  EXPECT_EQ(arb.next_tick(), revoked + drain - lead);
  a = arb.tick(revoked + drain - lead);
  ASSERT_EQ(a.kind, Action::kGrant);
  ASSERT_EQ(a.tenant, 2);
  EXPECT_EQ(arb.draining_tenant(), 1);
  // While 1 drains, 2 is not revoked and 1 cannot be granted again.
  arb.request(1);
  EXPECT_EQ(arb.tick(revoked + drain - 1).kind, Action::kNone);
  EXPECT_EQ(arb.release_holder(revoked + drain - 1).kind, Action::kNone);
  uint64_t drained_at = revoked + drain;
  uint64_t charged2 = arb.charged_ns(2, drained_at);
  arb.drained(1, drained_at);
  EXPECT_EQ(arb.charged_ns(1, drained_at) - charged1, kQuantum + drain);
  EXPECT_EQ(arb.charged_ns(2, drained_at), charged2);  // nothing for the overlap
  EXPECT_EQ(arb.held_ns(2, drained_at) > 0, true);     // held (the backstop's view), not charged
  // 2's quantum runs from the end of the drain (a tick within coalesce_ns of
  // its end would end it: see the next test).
  EXPECT_EQ(arb.tick(drained_at + kQuantum - arb.coalesce_ns() - 1).kind, Action::kNone);
  // At its end 2 is renewed (1, charged more, is not due); the renewal
  // charges 2's quantum from the drain's end, not from its grant.
  EXPECT_EQ(arb.tick(drained_at + kQuantum).kind, Action::kNone);
  EXPECT_EQ(arb.holder(), 2);
  EXPECT_EQ(arb.charged_ns(2, drained_at + kQuantum) - charged2, kQuantum);
}

// A tick that comes shortly before the quantum's end (vgpud woke for another
// GPU) ends the quantum then, charging only the time actually held; earlier
// than coalesce_ns before the end it does nothing.
TEST(LeaseArbiter, AQuantumEndingWithinTheCoalescingSlackEndsAtTheTickChargingWhatWasHeld) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  ASSERT_GT(arb.coalesce_ns(), 0u);
  ASSERT_LT(arb.coalesce_ns(), kQuantum / 4);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  arb.request(2);
  uint64_t granted = 1;
  ASSERT_EQ(arb.tick(granted).kind, Action::kGrant);
  ASSERT_EQ(arb.holder(), 1);
  uint64_t early = granted + kQuantum - arb.coalesce_ns();
  EXPECT_EQ(arb.tick(early - 1).kind, Action::kNone);
  EXPECT_EQ(arb.holder(), 1);
  EXPECT_EQ(arb.next_tick(), granted + kQuantum);  // the timer still aims at the end
  Action a = arb.tick(early);
  ASSERT_EQ(a.kind, Action::kRevoke);
  EXPECT_EQ(a.tenant, 1);
  arb.drained(1, early);
  EXPECT_EQ(arb.charged_ns(1, early), early - granted);
}

// A drain that outlasts its estimate: the new holder pays from `lead` after
// its grant, so it gets at most `lead` of the old holder's drain uncharged.
TEST(LeaseArbiter, AnOverrunningDrainIsSplitBetweenBothAfterTheLead) {
  const uint64_t lead = kMs / 2;
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1, lead);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  ASSERT_EQ(arb.tick(1 + kQuantum).kind, Action::kRevoke);
  arb.drained(1, 1 + kQuantum);  // 1's drains take nothing: next time 2 is granted at once
  ASSERT_EQ(arb.tick(1 + kQuantum).kind, Action::kGrant);
  ASSERT_EQ(arb.release_holder(2 + kQuantum).kind, Action::kRevoke);  // 2 idle
  arb.drained(2, 2 + kQuantum);
  arb.request(1);
  ASSERT_EQ(arb.tick(3 + kQuantum).kind, Action::kGrant);
  ASSERT_EQ(arb.holder(), 1);
  arb.request(2);
  uint64_t now = 3 + 2 * kQuantum;
  ASSERT_EQ(arb.tick(now).kind, Action::kRevoke);
  Action a = arb.tick(now);
  ASSERT_EQ(a.kind, Action::kGrant);
  ASSERT_EQ(a.tenant, 2);
  uint64_t charged1 = arb.charged_ns(1, now);
  uint64_t end = now + 100 * kMs;
  arb.drained(1, end);  // a long kernel was queued
  // Past the lead the two ran side by side (time-sliced): each pays half of
  // that time, and no time is charged twice.
  uint64_t shared = 100 * kMs - lead;
  EXPECT_EQ(arb.charged_ns(1, end) - charged1, (end - shared / 2) - (3 + kQuantum));
  uint64_t later = end + kQuantum / 2;
  EXPECT_EQ(arb.tick(later).kind, Action::kNone);
  // (the tick renewed 2 in place, charging its lease so far; + 1: its idle lease)
  EXPECT_EQ(arb.charged_ns(2, later), 1 + later - (now + lead + shared / 2));
  EXPECT_EQ(arb.charged_ns(1, end) - charged1 + (end - (now + lead + shared / 2)), end - (3 + kQuantum));
}

TEST(LeaseArbiter, EqualPriorityWaitsForTheQuantum) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  EXPECT_EQ(arb.tick(kMs).kind, Action::kNone);
  EXPECT_LE(arb.next_tick(), 1 + kQuantum);
  Action a = arb.tick(1 + kQuantum);
  EXPECT_EQ(a.kind, Action::kRevoke);
}

TEST(LeaseArbiter, GuaranteeBeatsPriority) {
  Sim s;
  s.add(1, 0.4, 1.0, Priority::kLow);
  s.add(2, 0.1, 1.0, Priority::kHigh);
  s.run({1, 2}, 20'000 * kMs);
  // The high-priority tenant takes the spare time, but never the low one's 40%.
  EXPECT_NEAR(s.fraction(1, 20'000 * kMs), 0.40, 0.03);
  EXPECT_NEAR(s.fraction(2, 20'000 * kMs), 0.60, 0.03);
}

TEST(LeaseArbiter, DrainTimeIsCharged) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  arb.request(2);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  int first = arb.holder();
  ASSERT_EQ(arb.tick(1 + kQuantum).kind, Action::kRevoke);
  arb.drained(first, 1 + 3 * kQuantum);  // its queued work ran two quanta over
  EXPECT_EQ(arb.charged_ns(first, 1 + 3 * kQuantum), 3 * kQuantum);
  EXPECT_EQ(arb.charged_ns(3 - first, 1 + 3 * kQuantum), 0u);
}

TEST(LeaseArbiter, RemovedHolderFreesTheGpu) {
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  arb.remove(1);
  Action a = arb.tick(2);
  EXPECT_EQ(a.kind, Action::kGrant);
  EXPECT_EQ(a.tenant, 2);
}

}  // namespace
}  // namespace vgpu::sched

namespace vgpu::sched {
namespace {

// The mixed workload of issue 11 at the arbiter: two saturating training
// tenants (40 % each) and a high-priority inference tenant (20 %) that asks
// every 10 ms for a 2 ms kernel -- about its request, so it hovers around its
// share. Its wait from asking to its grant must stay within one quantum plus
// the drain (here: the drain alone), and the trainers' shares must hold.
TEST(LeaseArbiter, HighPriorityTenantAtItsRequestWaitsAtMostOneDrain) {
  const uint64_t drain = 3 * kMs, kernel = 2 * kMs, period = 10 * kMs;
  LeaseArbiter arb(kQuantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.4, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.4, 1.0});
  arb.set_policy(3, {Priority::kHigh, 0.2, 1.0});
  std::map<int, uint64_t> held;
  uint64_t now = 1, grant_at = 0, asked_at = 0, next_ask = 100 * kMs, inf_done = 0;
  bool inf_waiting = false;
  uint64_t worst_wait = 0;
  int waits = 0;
  const uint64_t end = 20'000 * kMs;
  while (now < end) {
    arb.request(1);
    arb.request(2);
    if (!inf_waiting && arb.holder() != 3 && now >= next_ask) {
      arb.request(3);
      inf_waiting = true;
      asked_at = now;
      next_ask = now + period;
    }
    // The inference tenant holding the lease runs its kernel, then goes idle.
    if (arb.holder() == 3 && inf_done && now >= inf_done) {
      Action r = arb.release_holder(now);
      if (r.kind == Action::kRevoke) {
        held[3] += now - grant_at;
        arb.drained(3, now);  // nothing queued after its synchronize
        inf_done = 0;
        continue;
      }
    }
    Action a = arb.tick(now);
    if (a.kind == Action::kGrant) {
      grant_at = now;
      if (a.tenant == 3) {
        worst_wait = std::max(worst_wait, now - asked_at);
        ++waits;
        inf_waiting = false;
        inf_done = now + kernel;
      }
    }
    if (a.kind == Action::kRevoke) {
      now += drain;
      held[a.tenant] += now - grant_at;
      arb.drained(a.tenant, now);
      continue;
    }
    uint64_t next = std::min({arb.next_tick(), end, next_ask, inf_done ? inf_done : end});
    if (next <= now) next = now + kMs / 10;
    now = next;
  }
  ASSERT_GT(waits, 1000);
  // It preempts at once: its wait is the holder's drain (a strict "below
  // request" test made it wait for the quantum's end, 13 ms here).
  EXPECT_LE(worst_wait, drain + kMs / 10) << "the high-priority tenant waited behind an owed trainer";
  double t1 = static_cast<double>(held[1]), t2 = static_cast<double>(held[2]);
  EXPECT_NEAR(t1 / (t1 + t2), 0.5, 0.02);
}



// A capped holder is looked at again by the window's next bucket boundary,
// where its share can jump up (the oldest bucket held less than the average),
// not only when its share would reach the cap at the current rate or at its
// quantum's end: otherwise it ran past its limit until the quantum ended.
TEST(LeaseArbiter, ACappedHolderIsCheckedAgainByTheWindowsNextBucketBoundary) {
  const uint64_t window = 1000 * kMs, quantum = 200 * kMs;  // buckets of window / 50 = 20 ms
  LeaseArbiter arb(quantum, window, 1);
  arb.set_policy(1, {Priority::kNormal, 0.1, 0.5});
  arb.request(1);
  uint64_t now = 5 * kMs;
  ASSERT_EQ(arb.tick(now).kind, Action::kGrant);
  EXPECT_LE(arb.next_tick(), 20 * kMs);
  EXPECT_GT(arb.next_tick(), now);
  // Uncapped: only the quantum's end.
  LeaseArbiter free_arb(quantum, window, 1);
  free_arb.set_policy(1, {Priority::kNormal, 0.1, 1.0});
  free_arb.request(1);
  ASSERT_EQ(free_arb.tick(now).kind, Action::kGrant);
  EXPECT_EQ(free_arb.next_tick(), now + quantum);
}

}  // namespace
}  // namespace vgpu::sched
