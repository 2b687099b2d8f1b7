#include "gc.h"

#include <set>

#include "allocation.h"
#include "cdi.h"

namespace vgpu::k8s {

Result<std::vector<std::string>> AllocationGc::collect(std::chrono::steady_clock::time_point now) {
  auto live = pods_.list(opts_.resource_name());
  if (!live) return Error{live.error()};
  auto all = vgpud_.list_allocations();
  if (!all) return Error{all.error()};
  std::vector<std::string> removed;
  std::set<std::string> present;
  for (const auto& a : *all) {
    const std::string& name = a.spec().name();
    if (name.rfind(kAllocationPrefix, 0) != 0) continue;
    present.insert(name);
    if (live->count(name)) {
      missing_since_.erase(name);
      continue;
    }
    auto [it, fresh] = missing_since_.emplace(name, now);
    if (fresh || now - it->second < opts_.gc_grace) continue;
    if (auto r = vgpud_.delete_allocation(name); !r) return Error{r.error()};
    remove_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), name);
    missing_since_.erase(it);
    removed.push_back(name);
  }
  // Forget allocations deleted by someone else.
  for (auto it = missing_since_.begin(); it != missing_since_.end();)
    it = present.count(it->first) ? std::next(it) : missing_since_.erase(it);
  return removed;
}

}  // namespace vgpu::k8s
