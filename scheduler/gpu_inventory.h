// The node's GPUs as NVML reports them (libnvidia-ml.so.1, opened at run time:
// the real one on a GPU node, simgpu's in tests). Indexes are NVML indexes;
// identity is the UUID. Read once at startup.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::sched {

struct Gpu {
  int index = 0;
  std::string uuid;            // "GPU-xxxxxxxx-...."
  unsigned char uuid_bytes[16] = {};
  std::string name;
  uint64_t memory = 0;         // bytes
};

Result<std::vector<Gpu>> discover_gpus();

// Live readings of a GPU (NVML): physical memory in use and utilization.
struct GpuReading {
  uint64_t memory_used = 0;
  double busy_fraction = 0;
  bool ok = false;
};
GpuReading read_gpu(int index);
// Parses "GPU-8b1c...": the 16 bytes of a UUID string.
bool parse_uuid(const std::string& s, unsigned char out[16]);
// Resolves a config entry (index or UUID / unique UUID prefix) to an index.
Result<int> resolve_gpu(const std::vector<Gpu>& gpus, const std::string& entry);

}  // namespace vgpu::sched
