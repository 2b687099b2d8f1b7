#include "reconcile.h"

#include <algorithm>
#include <set>

#include "allocation.h"
#include "cdi.h"

namespace vgpu::k8s {

namespace {
bool same(const api::AllocationLabels& l, const PodRef& p) {
  return l.namespace_() == p.ns && l.pod() == p.pod && l.container() == p.container;
}

api::AllocationLabels labels_of(const PodRef& p) {
  api::AllocationLabels l;
  l.set_namespace_(p.ns);
  l.set_pod(p.pod);
  l.set_container(p.container);
  return l;
}
}  // namespace

Result<bool> AllocationReconciler::prepare(const std::vector<std::string>& device_ids) {
  std::string name = allocation_id(device_ids);
  auto live = pods_.list(opts_.resource_name());
  if (!live) return Error{live.error()};
  auto held = live->find(name);
  if (held == live->end()) return make_error("PodResources does not list the container of allocation " + name);
  if (auto r = vgpud_.set_labels(name, labels_of(held->second)); !r) return Error{r.error()};
  if (applier_)
    if (auto r = applier_->apply(name, held->second); !r)
      return make_error("allocation " + name + ": compute annotations not applied yet: " + r.error());
  return true;
}

Result<std::vector<std::string>> AllocationReconciler::apply_annotations() {
  std::vector<std::string> changed;
  if (!applier_) return changed;
  auto live = pods_.list(opts_.resource_name());
  if (!live) return Error{live.error()};
  // One read per pod, however many of its containers hold allocations.
  std::map<std::string, nlohmann::json> pods;
  std::set<std::string> gone_pods;
  std::string first_error;
  for (const auto& [name, ref] : *live) {
    std::string key = ref.ns + "/" + ref.pod;
    if (gone_pods.count(key)) continue;  // deleted meanwhile: the collection takes its allocations
    auto it = pods.find(key);
    if (it == pods.end()) {
      bool gone = false;
      auto pod = applier_->read_pod(ref, &gone);
      if (gone) {
        gone_pods.insert(key);
        continue;
      }
      // The API server does not answer: every other read would wait as long.
      if (!pod) return Error{pod.error()};
      it = pods.emplace(key, std::move(pod).value()).first;
    }
    auto out = applier_->apply(name, ref, &it->second);
    if (!out) {
      // An allocation PodResources lists but vgpud does not have is not ours to fix here.
      bool missing = false;
      (void)vgpud_.get_tenant(name, &missing);
      if (!missing && first_error.empty()) first_error = out.error();
      continue;
    }
    if (out->changed) changed.push_back(name);
  }
  if (!first_error.empty()) return make_error(first_error);
  return changed;
}

Result<AllocationReconciler::Round> AllocationReconciler::reconcile(std::chrono::steady_clock::time_point now) {
  auto live = pods_.list(opts_.resource_name());
  if (!live) return Error{live.error()};
  auto all = vgpud_.list_allocations();
  if (!all) return Error{all.error()};
  Round round;
  std::set<std::string> present;
  for (const auto& a : *all) {
    const std::string& name = a.spec().name();
    if (name.rfind(kAllocationPrefix, 0) != 0) continue;
    present.insert(name);
    if (auto held = live->find(name); held != live->end()) {
      missing_since_.erase(name);
      if (same(a.spec().labels(), held->second)) continue;
      if (auto r = vgpud_.set_labels(name, labels_of(held->second)); !r) return Error{r.error()};
      round.labeled.push_back(name);
      continue;
    }
    auto [it, fresh] = missing_since_.emplace(name, now);
    if (fresh || now - it->second < opts_.gc_grace) continue;
    // The spec first: no runtime may start a container on a tenant going away.
    remove_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), name);
    if (auto r = vgpud_.delete_allocation(name); !r) return Error{r.error()};
    if (applier_) applier_->forget(name);
    missing_since_.erase(it);
    round.removed.push_back(name);
  }
  // Forget allocations deleted by someone else.
  for (auto it = missing_since_.begin(); it != missing_since_.end();)
    it = present.count(it->first) ? std::next(it) : missing_since_.erase(it);
  // Specs without a tenant, listed after vgpud's allocations: a spec an
  // Allocate wrote meanwhile looks stale this round, and the grace covers it.
  std::set<std::string> stale;
  for (const std::string& name : cdi_spec_allocations(opts_.cdi_dir, opts_.cdi_kind())) {
    if (present.count(name) || live->count(name)) continue;
    stale.insert(name);
    auto [it, fresh] = stale_since_.emplace(name, now);
    if (fresh || now - it->second < opts_.gc_grace) continue;
    remove_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), name);
    round.stale_specs.push_back(name);
  }
  for (auto it = stale_since_.begin(); it != stale_since_.end();) {
    bool removed = std::find(round.stale_specs.begin(), round.stale_specs.end(), it->first) != round.stale_specs.end();
    it = stale.count(it->first) && !removed ? std::next(it) : stale_since_.erase(it);
  }
  return round;
}

Result<std::vector<std::string>> AllocationReconciler::remove_stale_specs() {
  auto live = pods_.list(opts_.resource_name());
  if (!live) return Error{live.error()};
  auto all = vgpud_.list_allocations();
  if (!all) return Error{all.error()};
  std::set<std::string> present;
  for (const auto& a : *all) present.insert(a.spec().name());
  std::vector<std::string> removed;
  for (const std::string& name : cdi_spec_allocations(opts_.cdi_dir, opts_.cdi_kind())) {
    if (present.count(name) || live->count(name)) continue;
    remove_cdi_spec(opts_.cdi_dir, opts_.cdi_kind(), name);
    removed.push_back(name);
  }
  return removed;
}

}  // namespace vgpu::k8s
