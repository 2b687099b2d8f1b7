// The device model of the Kubernetes device plugin, as pure functions that a
// DRA driver can reuse: each advertised device is one memory unit (chunk) of
// one GPU; a device ID names the GPU by UUID and the chunk by number:
//   GPU-8b1c2d3e-0000-1111-2222-333344445555-m12
// (at most 63 characters, as the kubelet requires: a 40-character UUID, "-m",
// up to 21 digits). The IDs a container gets say how much memory on which
// GPU, so Allocate needs no pod lookup.
//
// An allocation is identified by its device IDs alone: allocation_id() is a
// hash of the sorted IDs, so a kubelet that replays an Allocate (or a plugin
// restart) arrives at the same vgpud tenant.
//
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::k8s {

// A GPU as vgpud reports it (admin API GetStatus).
struct GpuView {
  int index = 0;
  std::string uuid;
  uint64_t memory_bytes = 0;
  bool healthy = true;
};

struct DeviceRef {
  std::string gpu_uuid;
  uint64_t chunk = 0;
};

struct AdvertisedDevice {
  std::string id;
  std::string gpu_uuid;
  bool healthy = true;
};

inline constexpr size_t kMaxDeviceIdLength = 63;
inline constexpr const char* kAllocationPrefix = "k8s-";

std::string device_id(const std::string& gpu_uuid, uint64_t chunk);
// The canonical form only ("<uuid>-m<chunk>", no leading zeros, UUID of
// printable characters without '/'), so one device has one ID.
Result<DeviceRef> parse_device_id(std::string_view id);

// Chunks of a GPU: floor(memory / unit).
uint64_t chunks_of(const GpuView& g, uint64_t unit);
// Every device of the node, GPU by GPU, chunk 0 first. IDs longer than 63
// characters (a UUID not of NVML's shape) are left out and reported in *skipped.
std::vector<AdvertisedDevice> advertise(const std::vector<GpuView>& gpus, uint64_t unit,
                                        std::vector<std::string>* skipped = nullptr);

// What one container's device IDs amount to.
struct AllocationPlan {
  std::string id;                               // allocation_id(device IDs)
  std::map<std::string, uint64_t> quota_bytes;  // GPU UUID -> chunks x unit
  std::vector<std::string> device_ids;          // sorted
};
// Fails, naming the ID, on a malformed ID, an unknown GPU, a chunk the GPU
// does not have (not advertised), a duplicate, or an empty list.
Result<AllocationPlan> plan_allocation(const std::vector<std::string>& ids, const std::vector<GpuView>& gpus,
                                       uint64_t unit);
// "k8s-" + 20 hex digits of SHA-256 over the sorted IDs joined by ','.
std::string allocation_id(std::vector<std::string> ids);

// GetPreferredAllocation: `size` IDs out of `available`, all of `must` first.
// Best fit: the GPU whose free chunks (in `available`) are the fewest that
// still hold the rest of the request; if none holds it, the GPUs with the
// most free chunks first (fewest GPUs). Lowest chunk numbers first. Fewer
// than `size` only if `available` is smaller. Unparsable IDs are ignored.
std::vector<std::string> preferred_allocation(const std::vector<std::string>& available,
                                              const std::vector<std::string>& must, size_t size);

}  // namespace vgpu::k8s
