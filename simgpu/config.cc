#include "config.h"

#include <cuda.h>

#include <cstdlib>
#include <string_view>

#include "vgpu/units.h"

namespace simgpu {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

vgpu::Error bad(const char* name, const std::string& value, const std::string& why) {
  return vgpu::make_error(std::string(name) + "='" + value + "': " + why);
}

bool parse_int(const std::string& s, long lo, long hi, long* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

vgpu::Result<SimConfig> load_config_from_env() {
  SimConfig c;
  c.driver_version = CUDA_VERSION;
  if (const char* v = env("SIMGPU_STATE")) {
    std::string name = v;
    if (name.size() > 64 || name.find('/') != std::string::npos)
      return bad("SIMGPU_STATE", name, "must be a short name without '/'");
    c.state_name = name;
  }
  long devices = 1;
  if (const char* v = env("SIMGPU_DEVICES"))
    if (!parse_int(v, 1, kMaxDevices, &devices))
      return bad("SIMGPU_DEVICES", v, "must be a number of devices from 1 to 8");
  std::vector<uint64_t> sizes;
  std::string mem = env("SIMGPU_MEMORY") ? env("SIMGPU_MEMORY") : "80Gi";
  for (size_t pos = 0; pos <= mem.size();) {
    size_t comma = mem.find(',', pos);
    if (comma == std::string::npos) comma = mem.size();
    auto bytes = vgpu::parse_bytes(std::string_view(mem).substr(pos, comma - pos));
    if (!bytes || *bytes < (64ull << 20))
      return bad("SIMGPU_MEMORY", mem, "must be a size of at least 64Mi (e.g. 80Gi), or one per device: 80Gi,40Gi");
    sizes.push_back(*bytes);
    pos = comma + 1;
  }
  if (sizes.size() != 1 && sizes.size() != static_cast<size_t>(devices))
    return bad("SIMGPU_MEMORY", mem, "lists " + std::to_string(sizes.size()) + " sizes for " +
                                         std::to_string(devices) + " devices");
  c.memory.assign(devices, sizes[0]);
  if (sizes.size() > 1) c.memory = sizes;
  if (const char* v = env("SIMGPU_CONTEXT_OVERHEAD")) {
    auto bytes = vgpu::parse_bytes(v);
    if (!bytes) return bad("SIMGPU_CONTEXT_OVERHEAD", v, bytes.error());
    c.context_overhead = *bytes;
  }
  if (const char* v = env("SIMGPU_TIMESLICE")) {
    auto ns = vgpu::parse_duration_ns(v);
    if (!ns || *ns < 10'000 || *ns > 1'000'000'000)
      return bad("SIMGPU_TIMESLICE", v, "must be a duration from 10us to 1s (e.g. 2ms)");
    c.timeslice_ns = *ns;
  }
  if (const char* v = env("SIMGPU_DRIVER_VERSION")) {
    long ver = 0;
    if (!parse_int(v, 2000, 99990, &ver) || ver % 10 != 0)
      return bad("SIMGPU_DRIVER_VERSION", v, "must be a CUDA version as 1000*major + 10*minor, e.g. 12040");
    c.driver_version = static_cast<int>(ver);
  }
  return c;
}

}  // namespace simgpu
