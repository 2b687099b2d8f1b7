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

// "3g.40gb": c compute slices, m GiB.
bool parse_profile(const std::string& text, MigProfile* out) {
  long slices = 0, gib = 0;
  size_t g = text.find("g.");
  if (g == std::string::npos || text.size() < g + 5 || text.compare(text.size() - 2, 2, "gb") != 0) return false;
  if (!parse_int(text.substr(0, g), 1, kMigSlices, &slices)) return false;
  if (!parse_int(text.substr(g + 2, text.size() - g - 4), 1, 1024, &gib)) return false;
  out->slices = static_cast<int>(slices);
  out->memory = static_cast<uint64_t>(gib) << 30;
  out->name = text;
  return true;
}

// One "<gpu>:<profile>,..." group of SIMGPU_MIG into c->mig.
vgpu::Result<bool> parse_mig_group(const std::string& all, const std::string& group, SimConfig* c, int* entries) {
  size_t colon = group.find(':');
  long gpu = 0;
  if (colon == std::string::npos || !parse_int(group.substr(0, colon), 0, static_cast<long>(c->memory.size()) - 1, &gpu))
    return bad("SIMGPU_MIG", all, "'" + group + "' must be <gpu index>:<profile>,... with a GPU index below " +
                                      std::to_string(c->memory.size()));
  auto& list = c->mig[static_cast<size_t>(gpu)];
  if (!list.empty()) return bad("SIMGPU_MIG", all, "GPU " + std::to_string(gpu) + " is listed twice");
  int slices = 0;
  uint64_t memory = 0;
  std::string profiles = group.substr(colon + 1);
  for (size_t pos = 0; pos <= profiles.size();) {
    size_t comma = profiles.find(',', pos);
    if (comma == std::string::npos) comma = profiles.size();
    MigProfile p;
    if (!parse_profile(profiles.substr(pos, comma - pos), &p))
      return bad("SIMGPU_MIG", all, "'" + profiles.substr(pos, comma - pos) +
                                        "' is not a MIG profile <slices>g.<GiB>gb such as 1g.10gb (1..7 slices)");
    slices += p.slices;
    memory += p.memory;
    list.push_back(p);
    ++*entries;
    pos = comma + 1;
  }
  if (slices > kMigSlices)
    return bad("SIMGPU_MIG", all, "GPU " + std::to_string(gpu) + " has " + std::to_string(kMigSlices) +
                                      " compute slices; the profiles take " + std::to_string(slices));
  if (memory > c->memory[static_cast<size_t>(gpu)])
    return bad("SIMGPU_MIG", all, "the instances of GPU " + std::to_string(gpu) + " take more memory than the GPU has");
  return true;
}

// SIMGPU_MIG: groups separated by ';'.
vgpu::Result<bool> parse_mig(const std::string& v, SimConfig* c) {
  int entries = static_cast<int>(c->memory.size());
  for (size_t pos = 0; pos <= v.size();) {
    size_t semi = v.find(';', pos);
    if (semi == std::string::npos) semi = v.size();
    if (auto ok = parse_mig_group(v, v.substr(pos, semi - pos), c, &entries); !ok) return ok;
    pos = semi + 1;
  }
  if (entries > kMaxDevices)
    return bad("SIMGPU_MIG", v, "GPUs and MIG instances together exceed " + std::to_string(kMaxDevices));
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
  static_assert(kMaxGpus == 8, "the message above names the limit");
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
  c.mig.assign(c.memory.size(), {});
  if (const char* v = env("SIMGPU_MIG"))
    if (auto ok = parse_mig(v, &c); !ok) return vgpu::make_error(ok.error());
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
