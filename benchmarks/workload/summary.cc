#include "summary.h"

#include <algorithm>
#include <cstdio>
#include <vector>
#include <sstream>

namespace vgpu::workload {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// Percentile q of the synchronize waits, in ms (0 without samples).
double wait_ms(const LaunchReport& l, double q) {
  if (l.sync_waits_ns.empty()) return 0;
  std::vector<uint64_t> v = l.sync_waits_ns;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]) / 1e6;
}

double work_ms(const Summary& s) { return s.launches.kernels_completed * (s.kernel_ns / 1e6); }
double ratio(double a, double b) { return b > 0 ? a / b : 0; }

std::string allocations_json(const AllocationReport& a) {
  std::ostringstream o;
  o << "{\"api\":" << quote(a.api) << ",\"size\":" << a.size << ",\"requested\":" << a.requested
    << ",\"ok\":" << a.ok << ",\"failed\":" << a.failed << ",\"peak_bytes\":" << a.peak_bytes
    << ",\"errors\":{";
  const char* sep = "";
  for (auto& [name, n] : a.errors) {
    o << sep << quote(name) << ":" << n;
    sep = ",";
  }
  o << "}}";
  return o.str();
}

std::string errors_json(const ErrorLog* log) {
  std::ostringstream o;
  o << "[";
  const char* sep = "";
  for (const CallError& e : log->kept()) {
    o << sep << "{\"call\":" << quote(e.call) << ",\"error\":" << quote(e.error) << "}";
    sep = ",";
  }
  o << "]";
  return o.str();
}

}  // namespace

std::string to_json(const Summary& s) {
  const LaunchReport& l = s.launches;
  std::ostringstream o;
  o << "{\"label\":" << quote(s.label) << ",\"pid\":" << s.pid << ",\"device\":" << s.device
    << ",\"kernels_launched\":" << l.kernels_launched
    << ",\"kernels_completed\":" << l.kernels_completed << ",\"kernel_ns\":" << s.kernel_ns
    << ",\"busy_ms\":" << number(l.busy_ms) << ",\"wall_ms\":" << number(l.wall_ms)
    << ",\"achieved_share\":" << number(ratio(l.busy_ms, l.wall_ms))
    << ",\"work_ms\":" << number(work_ms(s))
    << ",\"work_share\":" << number(ratio(work_ms(s), l.wall_ms))
    << ",\"syncs\":" << l.sync_waits_ns.size() << ",\"sync_wait_p50_ms\":" << number(wait_ms(l, 0.50))
    << ",\"sync_wait_p99_ms\":" << number(wait_ms(l, 0.99)) << ",\"sync_wait_max_ms\":" << number(wait_ms(l, 1.0))
    << ",\"allocations\":" << allocations_json(s.allocations)
    << ",\"error_count\":" << s.errors->total() << ",\"errors\":" << errors_json(s.errors) << "}";
  return o.str();
}

std::string to_text(const Summary& s) {
  const LaunchReport& l = s.launches;
  const AllocationReport& a = s.allocations;
  std::ostringstream o;
  o << s.label << " (pid " << s.pid << ", device " << s.device << "): " << l.kernels_completed
    << " kernels of " << s.kernel_ns / 1000.0 << " us in " << number(l.wall_ms) << " ms; busy "
    << number(l.busy_ms) << " ms (" << number(100 * ratio(l.busy_ms, l.wall_ms))
    << "%), work share " << number(100 * ratio(work_ms(s), l.wall_ms)) << "%\n";
  o << "allocations (" << a.api << ", " << a.size << " bytes): " << a.ok << "/" << a.requested
    << " ok";
  for (auto& [name, n] : a.errors) o << ", " << n << " x " << name;
  o << "\n";
  for (const CallError& e : s.errors->kept()) o << "error: " << e.call << ": " << e.error << "\n";
  return o.str();
}

}  // namespace vgpu::workload
