#include "annotations.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace vgpu::k8s {

namespace {

// A value as it may be shown in an event: annotations are written by whoever
// may create pods, so it is cut short and stripped of control characters.
std::string shown(const std::string& v) {
  std::string out;
  for (char c : v.substr(0, 64)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  return "'" + out + (v.size() > 64 ? "...'" : "'");
}

// The container-specific key if present, else the pod-wide one.
const std::pair<const std::string, std::string>* lookup(const std::map<std::string, std::string>& a,
                                                        const std::string& key, const std::string& container) {
  if (auto it = a.find(key + "." + container); !container.empty() && it != a.end()) return &*it;
  if (auto it = a.find(key); it != a.end()) return &*it;
  return nullptr;
}

}  // namespace

Result<double> parse_share(const std::string& value) {
  std::string v = value;
  while (!v.empty() && v.back() == ' ') v.pop_back();
  while (!v.empty() && v.front() == ' ') v.erase(0, 1);
  bool percent = !v.empty() && v.back() == '%';
  if (percent) v.pop_back();
  if (v.empty() || v.size() > 32) return make_error("not a share (write e.g. 30% or 0.3)");
  for (char c : v)
    if (!((c >= '0' && c <= '9') || c == '.')) return make_error("not a share (write e.g. 30% or 0.3)");
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || !std::isfinite(d)) return make_error("not a share (write e.g. 30% or 0.3)");
  if (percent) {
    if (d > 100) return make_error("above 100%");
    return d / 100;
  }
  // "30" is most likely meant as 30 %, but a fraction was written: refuse
  // rather than guess.
  if (d > 1) return make_error("a fraction above 1 (write 30% for thirty percent)");
  return d;
}

std::string share_text(double fraction) {
  char buf[32];
  double pct = fraction * 100;
  if (std::fabs(pct - std::round(pct)) < 1e-9) std::snprintf(buf, sizeof buf, "%.0f%%", pct);
  else std::snprintf(buf, sizeof buf, "%.1f%%", pct);
  return buf;
}

ComputeAnnotations compute_from_annotations(const std::map<std::string, std::string>& annotations,
                                            const std::string& domain, const std::string& container) {
  ComputeAnnotations out;
  auto share = [&](const char* name, double* into, bool allow_zero) {
    auto* kv = lookup(annotations, domain + "/" + name, container);
    if (!kv) return false;
    out.any = true;
    auto v = parse_share(kv->second);
    if (v && (allow_zero || *v > 0)) {
      *into = *v;
      return true;
    }
    out.problems.push_back(kv->first + ": " + shown(kv->second) + " " + (v ? "must be above 0%" : v.error()));
    return false;
  };
  bool has_request = share("compute-request", &out.settings.request, true);
  share("compute-limit", &out.settings.limit, false);
  if (has_request && out.settings.request > out.settings.limit + 1e-12) {
    out.problems.push_back(domain + "/compute-request " + share_text(out.settings.request) +
                           " is above the limit " + share_text(out.settings.limit) + ": no request applies");
    out.settings.request = 0;
  }
  if (auto* kv = lookup(annotations, domain + "/priority", container)) {
    out.any = true;
    if (kv->second == "high" || kv->second == "normal" || kv->second == "low")
      out.settings.priority = kv->second;
    else
      out.problems.push_back(kv->first + ": " + shown(kv->second) + " is not one of high, normal, low");
  }
  return out;
}

}  // namespace vgpu::k8s
