#include "allocation.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "sha256.h"

namespace vgpu::k8s {

std::string device_id(const std::string& gpu_uuid, uint64_t chunk) {
  return gpu_uuid + "-m" + std::to_string(chunk);
}

Result<DeviceRef> parse_device_id(std::string_view id) {
  auto bad = [&](const std::string& why) { return make_error("device ID '" + std::string(id) + "': " + why); };
  if (id.size() > kMaxDeviceIdLength) return bad("longer than 63 characters");
  size_t m = id.rfind("-m");
  if (m == std::string_view::npos || m == 0) return bad("not of the form <gpu-uuid>-m<chunk>");
  std::string_view digits = id.substr(m + 2);
  if (digits.empty() || digits.size() > 19 || (digits.size() > 1 && digits[0] == '0'))
    return bad("chunk is not a number without leading zeros");
  uint64_t chunk = 0;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad("chunk is not a number");
    chunk = chunk * 10 + static_cast<uint64_t>(c - '0');
  }
  std::string_view uuid = id.substr(0, m);
  for (char c : uuid)
    if (c <= ' ' || c >= 0x7f || c == '/' || c == ',') return bad("GPU UUID has a character not allowed");
  return DeviceRef{std::string(uuid), chunk};
}

uint64_t chunks_of(const GpuView& g, uint64_t unit) { return unit == 0 ? 0 : g.memory_bytes / unit; }

std::vector<AdvertisedDevice> advertise(const std::vector<GpuView>& gpus, uint64_t unit,
                                        std::vector<std::string>* skipped) {
  std::vector<AdvertisedDevice> out;
  for (const GpuView& g : gpus) {
    if (device_id(g.uuid, chunks_of(g, unit)).size() > kMaxDeviceIdLength) {
      if (skipped) skipped->push_back(g.uuid);
      continue;
    }
    for (uint64_t c = 0; c < chunks_of(g, unit); ++c) out.push_back({device_id(g.uuid, c), g.uuid, g.healthy});
  }
  return out;
}

std::string allocation_id(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  std::string joined;
  for (const auto& id : ids) joined += (joined.empty() ? "" : ",") + id;
  return kAllocationPrefix + sched::sha256_hex(joined).substr(0, 20);
}

Result<AllocationPlan> plan_allocation(const std::vector<std::string>& ids, const std::vector<GpuView>& gpus,
                                       uint64_t unit) {
  if (ids.empty()) return make_error("no device IDs in the request");
  AllocationPlan plan;
  std::set<std::string> seen;
  for (const std::string& id : ids) {
    auto ref = parse_device_id(id);
    if (!ref) return Error{ref.error()};
    if (device_id(ref->gpu_uuid, ref->chunk) != id) return make_error("device ID '" + id + "' is not canonical");
    auto g = std::find_if(gpus.begin(), gpus.end(), [&](const GpuView& v) { return v.uuid == ref->gpu_uuid; });
    if (g == gpus.end()) return make_error("device ID '" + id + "': no GPU " + ref->gpu_uuid + " on this node");
    if (ref->chunk >= chunks_of(*g, unit))
      return make_error("device ID '" + id + "' is not advertised: GPU " + ref->gpu_uuid + " has " +
                        std::to_string(chunks_of(*g, unit)) + " chunks");
    if (!seen.insert(id).second) return make_error("device ID '" + id + "' appears twice");
    plan.quota_bytes[ref->gpu_uuid] += unit;
  }
  plan.device_ids.assign(seen.begin(), seen.end());
  plan.id = allocation_id(plan.device_ids);
  return plan;
}

std::vector<std::string> preferred_allocation(const std::vector<std::string>& available,
                                              const std::vector<std::string>& must, size_t size) {
  std::vector<std::string> out;
  std::set<std::string> taken;
  for (const auto& id : must)
    if (out.size() < size && taken.insert(id).second) out.push_back(id);
  // Free chunks per GPU, lowest chunk first.
  std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> free;
  for (const auto& id : available) {
    auto ref = parse_device_id(id);
    if (ref && !taken.count(id)) free[ref->gpu_uuid].emplace_back(ref->chunk, id);
  }
  for (auto& [gpu, v] : free) std::sort(v.begin(), v.end());
  while (out.size() < size && !free.empty()) {
    size_t need = size - out.size();
    auto pick = free.end();
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (pick == free.end()) {
        pick = it;
        continue;
      }
      size_t n = it->second.size(), p = pick->second.size();
      bool fits = n >= need, pick_fits = p >= need;
      if ((fits && !pick_fits) || (fits && pick_fits && n < p) || (!fits && !pick_fits && n > p)) pick = it;
    }
    for (auto& [chunk, id] : pick->second) {
      if (out.size() == size) break;
      out.push_back(id);
    }
    free.erase(pick);
  }
  return out;
}

}  // namespace vgpu::k8s
