#include "compute_applier.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include "log.h"

namespace vgpu::k8s {

using sched::log_info;
using sched::log_warn;

namespace {

std::string rfc3339_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool same(const api::TenantSpec& s, const ComputeSettings& c) {
  return s.priority() == c.priority && std::fabs(s.compute_request() - c.request) < 1e-9 &&
         std::fabs(s.compute_limit() - c.limit) < 1e-9;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

std::map<std::string, std::string> annotations_of(const nlohmann::json& pod) {
  std::map<std::string, std::string> out;
  auto m = pod.find("metadata");
  if (m == pod.end() || !m->is_object()) return out;
  auto a = m->find("annotations");
  if (a == m->end() || !a->is_object()) return out;
  for (auto it = a->begin(); it != a->end(); ++it)
    if (it->is_string()) out[it.key()] = it->get<std::string>();
  return out;
}

ComputeApplier::ComputeApplier(const PluginOptions& opts, VgpudClient& vgpud, std::unique_ptr<ApiClient> api,
                               std::string node)
    : opts_(opts), vgpud_(vgpud), api_(std::move(api)), node_(std::move(node)) {}

Result<nlohmann::json> ComputeApplier::read_pod(const PodRef& ref, bool* gone) {
  return api_->get_pod(ref.ns, ref.pod, gone);
}

Result<ComputeApplier::Outcome> ComputeApplier::apply(const std::string& allocation, const PodRef& ref,
                                                      const nlohmann::json* pod) {
  nlohmann::json read;
  if (!pod) {
    auto p = read_pod(ref);
    if (!p) return Error{p.error()};
    read = std::move(p).value();
    pod = &read;
  }
  ComputeAnnotations want = compute_from_annotations(annotations_of(*pod), opts_.domain, ref.container);
  auto out = update(allocation, want);
  if (!out) return out;
  report(allocation, ref, *pod, out->problems);
  return out;
}

Result<ComputeApplier::Outcome> ComputeApplier::update(const std::string& allocation, const ComputeAnnotations& want) {
  auto t = vgpud_.get_tenant(allocation);
  if (!t) return Error{t.error()};
  Outcome out{want.settings, false, want.problems};
  if (same(t->spec(), want.settings)) return out;
  bool refused = false;
  auto u = vgpud_.update_compute(allocation, want.settings.request, want.settings.limit, want.settings.priority,
                                 &refused);
  if (u) {
    out.changed = true;
    return out;
  }
  if (!refused || want.settings.request == 0) return Error{u.error()};
  // Most likely the requests on the GPU would pass 100 %: no guarantee, the rest applies.
  out.problems.push_back(opts_.domain + "/compute-request " + share_text(want.settings.request) + ": " + u.error() +
                         "; no request applies");
  out.settings.request = 0;
  if (same(t->spec(), out.settings)) return out;
  auto again = vgpud_.update_compute(allocation, 0, out.settings.limit, out.settings.priority);
  if (!again) return Error{again.error()};
  out.changed = true;
  return out;
}

nlohmann::json ComputeApplier::event(const PodRef& ref, const nlohmann::json& pod, const std::string& message) const {
  std::string uid;
  if (auto m = pod.find("metadata"); m != pod.end() && m->is_object())
    if (auto u = m->find("uid"); u != m->end() && u->is_string()) uid = u->get<std::string>();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "%llx", static_cast<unsigned long long>(ns.count()));
  std::string now = rfc3339_now();
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", ref.pod + "." + suffix}, {"namespace", ref.ns}}},
          {"involvedObject",
           {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"namespace", ref.ns},
            {"name", ref.pod},
            {"uid", uid},
            {"fieldPath", "spec.containers{" + ref.container + "}"}}},
          {"reason", kInvalidAnnotationReason},
          {"message", message.substr(0, 1024)},
          {"type", "Warning"},
          {"source", {{"component", "vgpu-device-plugin"}, {"host", node_}}},
          {"reportingComponent", "vgpu-device-plugin"},
          {"reportingInstance", node_},
          {"firstTimestamp", now},
          {"lastTimestamp", now},
          {"count", 1}};
}

void ComputeApplier::report(const std::string& allocation, const PodRef& ref, const nlohmann::json& pod,
                            const std::vector<std::string>& problems) {
  std::string text = joined(problems);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = reported_.find(allocation);
    if (text.empty()) {
      if (it != reported_.end()) reported_.erase(it);
      return;
    }
    if (it != reported_.end() && it->second == text) return;  // said already
    reported_[allocation] = text;
  }
  std::string message = "container " + ref.container + " keeps the defaults for: " + text;
  std::string who = ref.ns + "/" + ref.pod + "/" + ref.container;
  if (auto ok = api_->create_event(ref.ns, event(ref, pod, message)); !ok)
    log_warn("%s (allocation %s): %s (event not written: %s)", who.c_str(), allocation.c_str(), message.c_str(),
             ok.error().c_str());
  else
    log_info("%s (allocation %s): %s (event %s)", who.c_str(), allocation.c_str(), message.c_str(),
             kInvalidAnnotationReason);
}

void ComputeApplier::forget(const std::string& allocation) {
  std::lock_guard<std::mutex> l(mu_);
  reported_.erase(allocation);
}

}  // namespace vgpu::k8s
