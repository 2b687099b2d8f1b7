// LeaseArbiter: decides, for one GPU, which tenant holds the execution lease.
//
// Policy (DESIGN.md "GPU time slicing"):
//  * a tenant within its `request` share (below it, or above it by less than
//    one quantum's share of the window) is served before any tenant above
//    (guarantee); among equals the higher priority wins, then the
//    one furthest below its share (share / weight, weight = request);
//  * time nobody requested goes by priority, then in proportion to requests;
//    request-0 tenants are best effort: served only when no tenant with a
//    request (of their priority or higher) can use the GPU;
//  * a tenant at or above its `limit` share is never granted, even when the
//    GPU is otherwise idle (hard cap), and a holder reaching it is revoked;
//  * a waiting tenant of strictly higher priority than the holder preempts it
//    at once (the deadline moves to now), unless the holder is below its
//    request and the waiter is above its own by more than one quantum's
//    share of the window ("within request", which also orders waiters:
//    a tenant near its request is not put behind owed tenants of lower
//    priority, so a high-priority tenant waits at most one drain);
//  * at the end of a quantum the lease is renewed in place while nobody else
//    can be granted, else revoked;
//  * time is charged from grant to drain (the end of the revoked holder's
//    queued work), over a sliding window, so long kernels are paid back;
//  * handovers overlap: the next tenant is granted `overlap_lead` before the
//    revoked holder's drain is expected to end (as long as its last drain on
//    this GPU as a busy holder — not an idle one's; no estimate: at the
//    drain's end), so its first launches are
//    queued when the GPU frees and the engine does not wait for the handover.
//    Its lease (charge and quantum) starts when the drain ends; if the drain
//    runs past `overlap_lead` after its grant, the GPU time-slices the two
//    from then on and that time is split, half charged to each (never twice).
//    While a drain runs the new holder is not revoked (one drain at a time)
//    and the draining tenant is not granted again.
//
// Pure logic: time comes in as arguments (tests use a fake clock). The caller
// (vgpud's event loop) carries out the Actions and calls tick() again at
// next_tick. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "config.h"
#include "share_window.h"

namespace vgpu::sched {

struct TenantPolicy {
  Priority priority = Priority::kNormal;
  double request = 0;  // 0..1
  double limit = 1;    // 0..1
};

struct Action {
  enum Kind { kNone, kGrant, kRevoke } kind = kNone;
  int tenant = -1;
};

class LeaseArbiter {
 public:
  // `overlap_lead_ns`: how long before a drain's expected end the next holder
  // is granted (and the most of an overrunning drain it gets uncharged).
  LeaseArbiter(uint64_t quantum_ns, uint64_t window_ns, uint64_t start_ns, uint64_t overlap_lead_ns = 500'000);

  void set_policy(int tenant, const TenantPolicy& p);
  // New scheduler.quantum / scheduler.window (a reload), from `now` on.
  // Grants and renewals after this use the new quantum; a running lease
  // keeps its deadline unless the new quantum ends it sooner (then it ends
  // at its grant + the new quantum, or now: decided at the next tick()). A
  // drain in progress is not touched. Charged time is kept
  // (ShareWindow::set_window). The caller calls tick() afterwards.
  void set_timing(uint64_t quantum_ns, uint64_t window_ns, uint64_t now);
  uint64_t quantum() const { return quantum_; }
  // How early a quantum may end when tick() runs anyway (an expiry on another
  // GPU woke vgpud): an eighth of the quantum, at most 1 ms. Expiries on a
  // node's GPUs then fall together, one wake-up of vgpud for several
  // handovers; charging stays exact (time is charged as used).
  uint64_t coalesce_ns() const { return std::min<uint64_t>(quantum_ / 8, 1'000'000); }
  uint64_t window() const { return window_.window_ns(); }
  // Forgets a tenant (deleted). If it holds the lease, the lease is dropped.
  void remove(int tenant);

  // A process of `tenant` waits for the lease.
  void request(int tenant);
  // The tenant no longer waits (its waiting processes went away).
  void cancel(int tenant);
  // The revoked holder drained at `now`: its time is charged up to `now`; the
  // next holder's lease is counted from `now`.
  void drained(int tenant, uint64_t now);
  // Charges `ns` ending at `now` to `tenant` on top of its leases (GPU time
  // it took without one): it is not granted again until that is paid back.
  void charge(int tenant, uint64_t ns, uint64_t now);
  // vgpud found the holder idle for a quantum: revoke it (drain as usual).
  // Nothing while a previous holder still drains.
  Action release_holder(uint64_t now);

  // Decides the next step at `now`. Call after every input and at next_tick().
  Action tick(uint64_t now);
  // When tick() must run again at the latest (UINT64_MAX: only on input).
  uint64_t next_tick() const { return next_tick_; }

  // Introspection (metrics, tests).
  int holder() const { return holder_; }
  // A revoked holder whose queued work has not finished yet (-1: none).
  int draining_tenant() const { return prev_; }
  bool draining() const { return prev_ >= 0; }
  bool waiting(int tenant) const { return waiting_.count(tenant) != 0; }
  bool anyone_waiting() const { return !waiting_.empty(); }
  double share(int tenant, uint64_t now) const;
  uint64_t charged_ns(int tenant, uint64_t now) const { return window_.charged_ns(tenant, now); }
  uint64_t grant_time() const { return grant_ns_; }
  // Lease time `tenant` held up to `now` (grant to drain, renewals included,
  // an overlapped handover's drain counted for both tenants), cumulative.
  uint64_t held_ns(int tenant, uint64_t now) const;
  // Tenants competing for this GPU: waiting, holding, or charged within the window.
  std::set<int> active(uint64_t now) const;
  // The share the policy gives `tenant` if it and every active tenant stay
  // backlogged (effective_targets below); differs from its request when
  // others leave time unrequested or are capped.
  double effective_target(int tenant, uint64_t now) const;
  uint64_t granted_count(int tenant) const;
  uint64_t preempted_count(int tenant) const;

 private:
  bool eligible(int tenant, uint64_t now) const;
  // Orders candidates: true if a should be served before b.
  bool before(int a, int b, uint64_t now) const;
  bool within_request(int tenant, uint64_t now) const;
  std::optional<int> choose(uint64_t now) const;
  bool should_preempt(uint64_t now) const;
  Action revoke(uint64_t now, bool preempted);
  uint64_t cap_time(int tenant, uint64_t now) const;

  uint64_t quantum_;
  uint64_t overlap_lead_;
  ShareWindow window_;
  std::map<int, TenantPolicy> policies_;
  std::set<int> waiting_;
  int holder_ = -1;
  int prev_ = -1;  // revoked, draining
  uint64_t prev_grant_ns_ = 0;
  uint64_t prev_lease_start_ = 0;
  uint64_t revoke_ns_ = 0;
  uint64_t overlap_at_ = UINT64_MAX;      // the next holder may be granted from then on
  std::map<int, uint64_t> last_drain_;   // tenant -> its last drain (revoke to drained) while busy
  bool learn_drain_ = false;             // the running drain is one of a busy holder
  uint64_t grant_ns_ = 0;     // the holder's charge starts here (the end of the previous drain)
  uint64_t lease_start_ = 0;  // the holder holds the lease since (grant or renewal)
  uint64_t deadline_ = 0;
  uint64_t next_tick_ = UINT64_MAX;
  std::map<int, uint64_t> granted_, preempted_;
  std::map<int, uint64_t> held_total_;
};

// The long-run shares the policy above converges to when every tenant in
// `active` is backlogged: each gets min(request, limit) (scaled down if the
// requests add up to more than the GPU); the rest goes to the highest
// priority first, within a priority to tenants with a request in proportion
// to it, then equally to request-0 tenants; nobody past its limit. Time no
// active tenant may take (everyone capped) is left out, so the sum can be < 1.
std::map<int, double> effective_targets(const std::map<int, TenantPolicy>& policies, const std::set<int>& active);

}  // namespace vgpu::sched
