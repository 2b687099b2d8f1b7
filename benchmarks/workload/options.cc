#include "options.h"

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

#include "vgpu/units.h"

namespace vgpu::workload {
namespace {

constexpr std::pair<AllocApi, const char*> kApiNames[] = {
    {AllocApi::kAlloc, "alloc"}, {AllocApi::kPitch, "pitch"}, {AllocApi::kManaged, "managed"},
    {AllocApi::kAsync, "async"}, {AllocApi::kPool, "pool"},   {AllocApi::kVmm, "vmm"},
    {AllocApi::kArray, "array"}, {AllocApi::kNone, "none"}};

Result<long long> parse_int(const std::string& text, long long min, long long max) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min || v > max)
    return make_error("expected an integer from " + std::to_string(min) + " to " +
                      std::to_string(max));
  return v;
}

Result<double> parse_number(const std::string& text, double min, double max) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < min || v > max)
    return make_error("expected a number from " + std::to_string(min) + " to " +
                      std::to_string(max));
  return v;
}

// A plain number means seconds; "500ms", "2s", "100us" are accepted too.
Result<double> parse_seconds(const std::string& text) {
  auto plain = parse_number(text, 0.001, 86400);
  if (plain) return plain;
  auto ns = parse_duration_ns(text);
  if (!ns || *ns < 1'000'000 || *ns > 86400ull * 1'000'000'000ull)
    return make_error("expected seconds (e.g. 5 or 500ms), from 1ms to 1 day");
  return static_cast<double>(*ns) / 1e9;
}

Result<AllocApi> parse_api(const std::string& text) {
  for (auto& [api, name] : kApiNames)
    if (text == name) return api;
  return make_error("expected one of alloc, pitch, managed, async, pool, vmm, array, none");
}

using Setter = std::function<Result<bool>(Options&, const std::string&)>;

// Wraps a parse result into a setter outcome: assigns on success.
template <class T, class U>
Result<bool> assign(U& field, Result<T> parsed) {
  if (!parsed) return make_error(parsed.error());
  field = static_cast<U>(*parsed);
  return true;
}

const std::map<std::string, Setter>& value_options() {
  static const std::map<std::string, Setter> table = {
      {"--device", [](Options& o, const std::string& v) { return assign(o.device, parse_int(v, 0, 63)); }},
      {"--alloc-api", [](Options& o, const std::string& v) { return assign(o.alloc_api, parse_api(v)); }},
      {"--alloc-size", [](Options& o, const std::string& v) { return assign(o.alloc_size, parse_bytes(v)); }},
      {"--alloc-count", [](Options& o, const std::string& v) { return assign(o.alloc_count, parse_int(v, 0, 1'000'000)); }},
      {"--kernel-us", [](Options& o, const std::string& v) {
         auto us = parse_number(v, 0, 60e6);
         if (!us) return Result<bool>(make_error(us.error()));
         o.kernel_ns = static_cast<uint64_t>(std::llround(*us * 1000));
         return Result<bool>(true);
       }},
      {"--streams", [](Options& o, const std::string& v) { return assign(o.streams, parse_int(v, 1, 64)); }},
      {"--depth", [](Options& o, const std::string& v) { return assign(o.depth, parse_int(v, 1, 1024)); }},
      {"--sync-every", [](Options& o, const std::string& v) { return assign(o.sync_every, parse_int(v, 0, 1024)); }},
      {"--rate", [](Options& o, const std::string& v) { return assign(o.rate, parse_number(v, 0, 1e7)); }},
      {"--duration", [](Options& o, const std::string& v) { return assign(o.duration_s, parse_seconds(v)); }},
      {"--count", [](Options& o, const std::string& v) { return assign(o.count, parse_int(v, 1, 1'000'000'000'000)); }},
      {"--label", [](Options& o, const std::string& v) {
         if (v.empty() || v.size() > 64) return Result<bool>(make_error("expected 1 to 64 characters"));
         o.label = v;
         return Result<bool>(true);
       }},
  };
  return table;
}

bool set_flag(Options& o, const std::string& name) {
  if (name == "--hold") return o.hold = true;
  if (name == "--json") return o.json = true;
  if (name == "--help" || name == "-h") return o.help = true;
  return false;
}

}  // namespace

const char* alloc_api_name(AllocApi api) {
  for (auto& [a, name] : kApiNames)
    if (a == api) return name;
  return "?";
}

Result<Options> parse_options(const std::vector<std::string>& args) {
  Options o;
  bool has_duration = false, has_count = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    bool inline_value = false;
    if (auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (!inline_value && set_flag(o, name)) continue;
    auto it = value_options().find(name);
    if (it == value_options().end()) return make_error("unknown option '" + args[i] + "'");
    if (!inline_value) {
      if (i + 1 >= args.size()) return make_error("option " + name + " needs a value");
      value = args[++i];
    }
    if (auto r = it->second(o, value); !r)
      return make_error("bad value '" + value + "' for " + name + ": " + r.error());
    has_duration |= name == "--duration";
    has_count |= name == "--count";
  }
  if (has_duration && has_count) return make_error("use either --duration or --count, not both");
  return o;
}

std::string usage() {
  return R"(usage: vgpu-workload [options]
A CUDA driver-API load generator: allocates device memory through one API,
then runs spin_ns kernels on one device and reports what it got.

  --device N          CUDA device ordinal (default 0)
  --alloc-api API     alloc|pitch|managed|async|pool|vmm|array|none (default alloc)
  --alloc-size SIZE   bytes per allocation, e.g. 512Mi, 4Gi (default 0: none)
  --alloc-count N     number of allocations (default 1)
  --hold              keep the allocations until the kernels are done
                      (default: free each one right after it succeeds)
  --kernel-us N       duration of each spin_ns kernel in microseconds (default 1000)
  --streams N         streams to launch on, round-robin (default 1)
  --depth N           kernels in flight per stream, each between two events
                      (default 4, at most 1024)
  --sync-every N      instead of events: cuStreamSynchronize after every N
                      launches on a stream (1 = a synchronize after each
                      kernel, like interactive inference); reports the wait of
                      each synchronize beyond its kernels' time (default 0: off)
  --rate N            kernels per second over all streams; 0 = saturate (default 0)
  --duration SECONDS  how long to launch kernels (default 5; also 500ms, 2s)
  --count N           launch exactly N kernels instead of running for a duration
  --label NAME        name reported in the summary (default workload)
  --json              print the summary as one JSON object on stdout
  -h, --help          print this help

Exit status: 0 on success (failed allocations are reported, not errors),
1 if a CUDA call failed unexpectedly, 2 on a bad argument.
)";
}

}  // namespace vgpu::workload
