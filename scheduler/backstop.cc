#include "backstop.h"

#include <algorithm>

#include "vgpu/units.h"

namespace vgpu::sched {

namespace {
constexpr size_t kLeaseWindowPolls = 10;
constexpr uint64_t kSamplePeriodSlackNs = 166'667'000;  // one NVML sample period
}  // namespace

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::kOverQuota: return "over_quota";
    case Reason::kUnregistered: return "unregistered";
    case Reason::kUnleasedLaunch: return "unleased_launch";
    case Reason::kLeaseOverrun: return "lease_overrun";
  }
  return "unknown";
}

Backstop::Backstop(const EnforcementConfig& cfg, uint64_t start_ns, std::function<bool(int32_t)> allowlisted)
    : cfg_(cfg), start_ns_(start_ns), allowlisted_(std::move(allowlisted)) {}

void Backstop::saw_driver_call(int32_t pid, uint64_t now_ns) { driver_calls_.emplace(pid, now_ns); }

EnforcePolicy Backstop::policy_of(const Observation& o, int tenant) const {
  auto it = o.tenants.find(tenant);
  return it == o.tenants.end() ? cfg_.policy : it->second.policy;
}

bool Backstop::first_time(int32_t pid, Reason r, EnforcePolicy action) {
  auto& seen = acted_[pid];
  if (seen.count(r)) return false;
  seen.insert(r);
  // A killed process is going away: nothing more to decide about it.
  if (action == EnforcePolicy::kKill)
    for (Reason other : {Reason::kOverQuota, Reason::kUnregistered, Reason::kUnleasedLaunch, Reason::kLeaseOverrun})
      seen.insert(other);
  return true;
}

std::vector<Verdict> Backstop::evaluate(const Observation& o) {
  std::vector<Verdict> out;
  check_unregistered(o, &out);
  check_quota(o, &out);
  check_leases(o, &out);
  // Forget processes no GPU lists any more and the driver probe did not see.
  std::set<int32_t> present;
  for (auto& g : o.gpus)
    for (auto& p : g) present.insert(p.pid);
  for (auto it = acted_.begin(); it != acted_.end();)
    it = present.count(it->first) || driver_calls_.count(it->first) ? std::next(it) : acted_.erase(it);
  return out;
}

void Backstop::check_unregistered(const Observation& o, std::vector<Verdict>* out) {
  std::map<int32_t, std::pair<int, uint64_t>> using_gpu;  // pid -> (gpu, memory)
  for (size_t g = 0; g < o.gpus.size(); ++g)
    for (const ProcessSample& p : o.gpus[g])
      if (!o.registered.count(p.pid) && (p.memory > 0 || p.busy_ns > 0))
        using_gpu.emplace(p.pid, std::make_pair(static_cast<int>(g), p.memory));

  unmanaged_.clear();
  std::map<int32_t, uint64_t> still;
  for (auto& [pid, use] : using_gpu) {
    if (allowlisted_ && allowlisted_(pid)) continue;
    unmanaged_[pid] = use.second;
    auto seen = first_unregistered_.find(pid);
    uint64_t since = seen == first_unregistered_.end() ? o.now_ns : seen->second;
    if (auto d = driver_calls_.find(pid); d != driver_calls_.end()) since = std::min(since, d->second);
    still[pid] = since;
    uint64_t grace = cfg_.grace_ns;
    // Processes of a previous vgpud need time to find this one.
    if (since < start_ns_ + cfg_.startup_grace_ns) grace = std::max(grace, start_ns_ + cfg_.startup_grace_ns - since);
    if (o.now_ns - since < grace || !first_time(pid, Reason::kUnregistered, cfg_.policy)) continue;
    Verdict v;
    v.pid = pid;
    v.gpu = use.first;
    v.reason = Reason::kUnregistered;
    v.action = cfg_.policy;
    v.detail = "holds " + format_bytes(use.second) + " on GPU " + std::to_string(use.first) +
               " without being registered with vgpud" +
               (driver_calls_.count(pid) ? " (its driver calls were seen by the eBPF probe)" : "");
    out->push_back(v);
  }
  first_unregistered_.swap(still);
  // A sighting matters until the process registers; bounded in case the
  // probe sees processes of GPUs this vgpud does not manage.
  for (auto it = driver_calls_.begin(); it != driver_calls_.end();)
    it = o.registered.count(it->first) || o.now_ns - it->second > 60'000'000'000ull ? driver_calls_.erase(it)
                                                                                   : std::next(it);
}

void Backstop::check_quota(const Observation& o, std::vector<Verdict>* out) {
  for (size_t g = 0; g < o.gpus.size(); ++g) {
    std::map<int, std::vector<const ProcessSample*>> by_tenant;
    for (const ProcessSample& p : o.gpus[g])
      if (auto r = o.registered.find(p.pid); r != o.registered.end()) by_tenant[r->second].push_back(&p);
    for (auto& [tenant, procs] : by_tenant) {
      auto t = o.tenants.find(tenant);
      if (t == o.tenants.end() || g >= t->second.quota.size()) continue;
      uint64_t held = 0;
      for (auto* p : procs) held += p->memory;
      uint64_t allowed = t->second.quota[g] + cfg_.tolerance + cfg_.context_allowance * procs.size();
      if (held <= allowed) continue;
      auto* largest = *std::max_element(procs.begin(), procs.end(),
                                        [](auto* a, auto* b) { return a->memory < b->memory; });
      EnforcePolicy action = policy_of(o, tenant);
      if (!first_time(largest->pid, Reason::kOverQuota, action)) continue;
      Verdict v;
      v.pid = largest->pid;
      v.tenant = tenant;
      v.gpu = static_cast<int>(g);
      v.reason = Reason::kOverQuota;
      v.action = action;
      v.detail = "tenant '" + t->second.name + "' holds " + format_bytes(held) + " on GPU " + std::to_string(g) +
                 ", above its quota of " + format_bytes(t->second.quota[g]) + " (allowed with tolerance: " +
                 format_bytes(allowed) + "); this process holds " + format_bytes(largest->memory);
      out->push_back(v);
    }
  }
}

// NVML's per-process utilization comes in samples of 1/6 s or more that do
// not line up with vgpud's polls, so busy and held time are compared over a
// rolling window of polls, with a slack of a fifth of the window plus one
// sample period: only a tenant that clearly used the GPU beyond its leases
// (launches that bypassed the gate) is charged and acted on.
void Backstop::check_leases(const Observation& o, std::vector<Verdict>* out) {
  if (o.interval_ns == 0) return;
  for (size_t g = 0; g < o.gpus.size(); ++g) {
    std::map<int, std::pair<uint64_t, const ProcessSample*>> busy;  // tenant -> (busy, busiest process)
    for (const ProcessSample& p : o.gpus[g]) {
      auto r = o.registered.find(p.pid);
      if (r == o.registered.end()) continue;
      auto& [sum, busiest] = busy[r->second];
      sum += p.busy_ns;
      if (!busiest || p.busy_ns > busiest->busy_ns) busiest = &p;
    }
    for (auto& [tenant, facts] : o.tenants) {
      LeaseWindow& w = windows_[{tenant, static_cast<int>(g)}];
      uint64_t held = g < facts.held_ns.size() ? facts.held_ns[g] : 0;
      auto b = busy.find(tenant);
      // One engine: a tenant cannot be busy longer than the interval (plus a
      // sample straddling its start).
      uint64_t busy_ns = b == busy.end() ? 0 : std::min(b->second.first, o.interval_ns + kSamplePeriodSlackNs);
      w.polls.push_back({busy_ns, held, o.interval_ns});
      if (w.polls.size() > kLeaseWindowPolls) w.polls.pop_front();
      if (w.polls.size() < kLeaseWindowPolls || b == busy.end()) continue;
      uint64_t busy_sum = 0, held_sum = 0, span = 0;
      for (auto& p : w.polls) {
        busy_sum += p.busy;
        held_sum += p.held;
        span += p.interval;
      }
      uint64_t slack = span / 5 + kSamplePeriodSlackNs;
      if (busy_sum <= held_sum + slack) continue;
      Verdict v;
      v.pid = b->second.second->pid;
      v.tenant = tenant;
      v.gpu = static_cast<int>(g);
      v.reason = Reason::kUnleasedLaunch;
      v.penalty_ns = busy_sum - held_sum - slack;
      v.action = policy_of(o, tenant);
      w.polls.clear();  // charged: the next verdict needs a fresh window
      v.act = first_time(v.pid, Reason::kUnleasedLaunch, v.action);
      v.detail = "tenant '" + facts.name + "' kept GPU " + std::to_string(g) + " busy " +
                 std::to_string(busy_sum / 1'000'000) + " ms in " + std::to_string(span / 1'000'000) +
                 " ms while holding its lease " + std::to_string(held_sum / 1'000'000) +
                 " ms (launches that bypassed the gate)";
      out->push_back(v);
    }
  }
}

}  // namespace vgpu::sched
