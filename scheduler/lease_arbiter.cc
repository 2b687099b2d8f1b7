#include "lease_arbiter.h"

#include <algorithm>
#include <cmath>

namespace vgpu::sched {

LeaseArbiter::LeaseArbiter(uint64_t quantum_ns, uint64_t window_ns, uint64_t start_ns, uint64_t overlap_lead_ns)
    : quantum_(quantum_ns), overlap_lead_(overlap_lead_ns), window_(window_ns) {
  window_.set_origin(start_ns);
}

void LeaseArbiter::set_policy(int tenant, const TenantPolicy& p) { policies_[tenant] = p; }

void LeaseArbiter::set_timing(uint64_t quantum_ns, uint64_t window_ns, uint64_t now) {
  quantum_ = quantum_ns;
  window_.set_window(window_ns);
  if (holder_ < 0) return;
  // The running lease's quantum counts from its grant (or its last renewal;
  // granted during a drain, drained() moves the deadline on as usual).
  uint64_t sooner = std::max(lease_start_ + quantum_ns, now);
  if (sooner < deadline_) deadline_ = sooner;
  next_tick_ = std::min(next_tick_, deadline_);
}

void LeaseArbiter::remove(int tenant) {
  policies_.erase(tenant);
  waiting_.erase(tenant);
  window_.forget(tenant);
  last_drain_.erase(tenant);
  if (holder_ == tenant) holder_ = -1;
  if (prev_ == tenant) prev_ = -1;
}

void LeaseArbiter::request(int tenant) {
  // A draining holder that wants more must queue again like anyone else.
  if (policies_.count(tenant) && tenant != holder_) waiting_.insert(tenant);
}

void LeaseArbiter::cancel(int tenant) { waiting_.erase(tenant); }

Action LeaseArbiter::release_holder(uint64_t now) {
  if (holder_ < 0 || prev_ >= 0) return {};
  Action a = revoke(now, false);
  learn_drain_ = false;  // an idle holder's drain says nothing of a busy one's
  return a;
}

void LeaseArbiter::charge(int tenant, uint64_t ns, uint64_t now) {
  if (!policies_.count(tenant) || ns == 0) return;
  window_.charge(tenant, now > ns ? now - ns : 0, now);
}

uint64_t LeaseArbiter::held_ns(int tenant, uint64_t now) const {
  auto it = held_total_.find(tenant);
  uint64_t held = it == held_total_.end() ? 0 : it->second;
  // Possession, not charge: the next holder holds its lease from the grant,
  // during the overlap too (the backstop compares this with the GPU time used).
  if (tenant == holder_ && now > lease_start_) held += now - lease_start_;
  if (tenant == prev_ && now > prev_lease_start_) held += now - prev_lease_start_;
  return held;
}

void LeaseArbiter::drained(int tenant, uint64_t now) {
  if (tenant != prev_) return;
  uint64_t end = std::max(now, prev_grant_ns_);
  if (learn_drain_ && now >= revoke_ns_) last_drain_[tenant] = now - revoke_ns_;
  // The next holder's lease (charge and quantum) starts when the drain ends:
  // until then the GPU ran what the previous holder had queued, which that
  // one pays for. A drain that outlasted its estimate by more than the lead
  // ran beside the new holder's kernels (the GPU time-slices the two
  // contexts): that time is split, half to each. Charging it to both counted
  // it twice, a fixed cost per handover that took more from a small share
  // than from a large one (batch8's 30 % tenant ended 1.5-2 points low).
  uint64_t start = holder_ >= 0 ? std::min(end, lease_start_ + overlap_lead_) : end;
  uint64_t shared = end > start ? end - start : 0;
  window_.charge(tenant, prev_grant_ns_, end - shared / 2);
  held_total_[tenant] += std::max(now, prev_lease_start_) - prev_lease_start_;
  prev_ = -1;
  uint64_t from = start + shared / 2;
  if (holder_ >= 0 && grant_ns_ < from) {
    deadline_ += from - grant_ns_;
    grant_ns_ = from;
  }
}

double LeaseArbiter::share(int tenant, uint64_t now) const {
  double s = window_.share(tenant, now);
  // The running lease counts too, so a holder cannot run past its cap; a
  // drain's too, and the next holder's from the end of that drain.
  uint64_t from = tenant == prev_ ? prev_grant_ns_ : tenant == holder_ && prev_ < 0 ? grant_ns_ : now;
  if (now > from) s += static_cast<double>(now - from) / static_cast<double>(window_.window_ns());
  return s;
}

bool LeaseArbiter::eligible(int tenant, uint64_t now) const {
  auto it = policies_.find(tenant);
  if (it == policies_.end()) return false;
  return it->second.limit >= 1.0 || share(tenant, now) < it->second.limit;
}

bool LeaseArbiter::before(int a, int b, uint64_t now) const {
  const TenantPolicy& pa = policies_.at(a);
  const TenantPolicy& pb = policies_.at(b);
  double sa = share(a, now), sb = share(b, now);
  bool a_owed = within_request(a, now), b_owed = within_request(b, now);
  if (a_owed != b_owed) return a_owed;
  if (pa.priority != pb.priority) return pa.priority > pb.priority;
  // Spare time (docs/architecture.md "Time nobody requested"): tenants with a
  // request share it in proportion to their requests; request-0 tenants are
  // best effort, served only when no tenant with a request can use it, and
  // share equally among themselves.
  bool ra = pa.request > 0, rb = pb.request > 0;
  if (ra != rb) return ra;
  double wa = ra ? pa.request : 1.0, wb = rb ? pb.request : 1.0;
  if (sa / wa != sb / wb) return sa / wa < sb / wb;
  return a < b;
}

// A waiting tenant of higher priority than the holder takes the GPU at once,
// unless that would take guaranteed time from the holder (the holder is below
// its request and the waiter is not): guarantees outrank priorities.
bool LeaseArbiter::should_preempt(uint64_t now) const {
  const TenantPolicy& h = policies_.at(holder_);
  bool holder_owed = share(holder_, now) < h.request;
  for (int t : waiting_) {
    const TenantPolicy& p = policies_.at(t);
    if (p.priority <= h.priority || !eligible(t, now)) continue;
    if (!holder_owed || within_request(t, now)) return true;
  }
  return false;
}

// Within its request, give or take one quantum of the window: a tenant that
// uses about what it asked for (an inference server at its request) hovers
// around that share, and a strict comparison would put it behind every owed
// tenant half of the time -- a high-priority tenant would wait two quanta and
// two drains instead of at most one. The slack lets it go first; what it
// takes beyond its request is at most one quantum per window, which the
// others' "furthest below" ordering pays back. Request-0 tenants get none
// (best effort stays behind every request).
bool LeaseArbiter::within_request(int tenant, uint64_t now) const {
  const TenantPolicy& p = policies_.at(tenant);
  if (p.request <= 0) return false;
  double slack = static_cast<double>(quantum_) / static_cast<double>(window_.window_ns());
  return share(tenant, now) < p.request + slack;
}

std::optional<int> LeaseArbiter::choose(uint64_t now) const {
  std::optional<int> best;
  for (int t : waiting_)
    if (t != prev_ && eligible(t, now) && (!best || before(t, *best, now))) best = t;
  return best;
}

// The holder drains from now on. The next tenant is granted `overlap_lead_`
// before the drain is expected to end (the tenant's last drain here), so its
// first launches are queued when the GPU frees; with no estimate yet, when
// the drain ends (drained()).
Action LeaseArbiter::revoke(uint64_t now, bool preempted) {
  if (preempted) ++preempted_[holder_];
  prev_ = holder_;
  prev_grant_ns_ = grant_ns_;
  prev_lease_start_ = lease_start_;
  holder_ = -1;
  revoke_ns_ = now;
  learn_drain_ = true;
  auto it = last_drain_.find(prev_);
  overlap_at_ = it == last_drain_.end() ? UINT64_MAX : now + (it->second > overlap_lead_ ? it->second - overlap_lead_ : 0);
  next_tick_ = overlap_at_;
  return {Action::kRevoke, prev_};
}

// The earliest time after `now` at which `tenant`, holding the lease, reaches
// its limit (approximately: assuming no time ages out meanwhile).
// Also the window's next bucket boundary, where the share can jump up
// (the oldest bucket held less than the average): without a look there a
// holder ran past its cap until its quantum ended.
uint64_t LeaseArbiter::cap_time(int tenant, uint64_t now) const {
  const TenantPolicy& p = policies_.at(tenant);
  double room = (p.limit - share(tenant, now)) * static_cast<double>(window_.window_ns());
  if (p.limit >= 1.0) return UINT64_MAX;
  return std::min(now + static_cast<uint64_t>(std::max(0.0, room)) + 1, window_.next_boundary(now));
}

Action LeaseArbiter::tick(uint64_t now) {
  next_tick_ = UINT64_MAX;
  if (holder_ >= 0 && prev_ >= 0) return {};  // the next decision waits for the drain (drained())
  if (prev_ >= 0 && now < overlap_at_) {
    next_tick_ = overlap_at_;
    return {};
  }
  if (holder_ >= 0) {
    if (!eligible(holder_, now)) return revoke(now, false);  // hit its hard cap
    std::optional<int> next = choose(now);
    if (should_preempt(now)) return revoke(now, true);
    if (now + coalesce_ns() >= deadline_) {
      if (next && before(*next, holder_, now)) return revoke(now, false);
      // Renewed in place: nobody else is due. The time so far is charged now,
      // so the window sees a long-running holder.
      window_.charge(holder_, grant_ns_, now);
      held_total_[holder_] += now - lease_start_;
      grant_ns_ = now;
      lease_start_ = now;
      deadline_ = now + quantum_;
    }
    next_tick_ = std::min(deadline_, cap_time(holder_, now));
    return {};
  }
  std::optional<int> next = choose(now);
  if (!next) {
    // Waiting tenants at their cap become eligible as their time ages out.
    if (!waiting_.empty() && prev_ < 0) next_tick_ = now + quantum_;
    return {};
  }
  holder_ = *next;
  waiting_.erase(holder_);
  grant_ns_ = now;
  lease_start_ = now;
  deadline_ = now + quantum_;
  ++granted_[holder_];
  next_tick_ = std::min(deadline_, cap_time(holder_, now));
  return {Action::kGrant, holder_};
}

std::set<int> LeaseArbiter::active(uint64_t now) const {
  std::set<int> out = waiting_;
  if (holder_ >= 0) out.insert(holder_);
  for (auto& [t, p] : policies_)
    if (window_.charged_ns(t, now) > 0) out.insert(t);
  return out;
}

double LeaseArbiter::effective_target(int tenant, uint64_t now) const {
  std::set<int> act = active(now);
  act.insert(tenant);  // what it would get if it were backlogged too
  std::map<int, double> t = effective_targets(policies_, act);
  auto it = t.find(tenant);
  return it == t.end() ? 0 : it->second;
}

uint64_t LeaseArbiter::granted_count(int tenant) const {
  auto it = granted_.find(tenant);
  return it == granted_.end() ? 0 : it->second;
}

uint64_t LeaseArbiter::preempted_count(int tenant) const {
  auto it = preempted_.find(tenant);
  return it == preempted_.end() ? 0 : it->second;
}

}  // namespace vgpu::sched

namespace vgpu::sched {
namespace {

// Gives `spare` to `members` in proportion to `weight`, none past its limit
// (water-filling: what a capped member cannot take goes to the others).
void fill(const std::map<int, TenantPolicy>& pol, const std::vector<int>& members, double (*weight)(const TenantPolicy&),
          std::map<int, double>* t, double* spare) {
  constexpr double kEps = 1e-12;
  for (size_t round = 0; round <= members.size() && *spare > kEps; ++round) {
    double total = 0;
    for (int m : members)
      if ((*t)[m] < pol.at(m).limit - kEps) total += weight(pol.at(m));
    if (total <= 0) return;
    double given = 0;
    for (int m : members) {
      const TenantPolicy& p = pol.at(m);
      if ((*t)[m] >= p.limit - kEps) continue;
      double add = std::min(*spare * weight(p) / total, p.limit - (*t)[m]);
      (*t)[m] += add;
      given += add;
    }
    *spare = std::max(0.0, *spare - given);
  }
}

}  // namespace

std::map<int, double> effective_targets(const std::map<int, TenantPolicy>& policies, const std::set<int>& active) {
  std::map<int, double> t;
  double guaranteed = 0;
  for (int a : active) {
    auto it = policies.find(a);
    if (it == policies.end()) continue;
    t[a] = std::min(it->second.request, it->second.limit);
    guaranteed += t[a];
  }
  // Overcommitted requests (sum > 100 %): each gets its proportion of the GPU.
  if (guaranteed > 1.0)
    for (auto& [a, v] : t) v /= guaranteed;
  double spare = std::max(0.0, 1.0 - guaranteed);
  for (int prio = static_cast<int>(Priority::kHigh); prio >= static_cast<int>(Priority::kLow); --prio) {
    std::vector<int> with_request, best_effort;
    for (auto& [a, v] : t) {
      const TenantPolicy& p = policies.at(a);
      if (static_cast<int>(p.priority) != prio) continue;
      (p.request > 0 ? with_request : best_effort).push_back(a);
    }
    fill(policies, with_request, [](const TenantPolicy& p) { return p.request; }, &t, &spare);
    fill(policies, best_effort, [](const TenantPolicy&) { return 1.0; }, &t, &spare);
  }
  return t;
}

}  // namespace vgpu::sched
