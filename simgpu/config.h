// simgpu's configuration, read once from the environment at cuInit / nvmlInit.
//
//   SIMGPU_STATE            name of the simulated node (shared-memory state file
//                           /dev/shm/simgpu-<name>); processes with the same name
//                           share devices, memory and the execution engine.
//   SIMGPU_DEVICES          number of devices (1..8), default 1.
//   SIMGPU_MEMORY           memory per device, e.g. "80Gi", or a comma list per device.
//   SIMGPU_CONTEXT_OVERHEAD memory each context takes on its device, default 256Mi.
//   SIMGPU_TIMESLICE        hardware timeslice between contexts, default 2ms.
//   SIMGPU_DRIVER_VERSION   version reported by cuDriverGetVersion, default CUDA_VERSION.
//   SIMGPU_MIG              GPUs in MIG mode and their instances (MIG devices):
//                           "<gpu>:<profile>,<profile>...[;<gpu>:...]", e.g.
//                           "0:3g.40gb,2g.20gb,1g.10gb". A profile "<c>g.<m>gb"
//                           is a GPU instance of c compute slices (of 7) and
//                           m GiB, with one compute instance spanning it. The
//                           instances' memory is carved from the GPU's
//                           (SIMGPU_MEMORY), at most 7 slices per GPU and at
//                           most kMaxDevices GPUs and instances in all.
//                           Default: no GPU in MIG mode.
//
// The first process to attach a node fixes its devices; later processes with a
// different view get a warning and use the node as it is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace simgpu {

constexpr int kMaxGpus = 8;      // physical GPUs (SIMGPU_DEVICES)
constexpr int kMaxDevices = 16;  // GPUs plus MIG instances: entries of the node
constexpr int kMigSlices = 7;    // compute slices of a MIG-capable GPU

// One MIG device (a GPU instance with one compute instance) of SIMGPU_MIG.
struct MigProfile {
  int slices = 0;        // compute slices, 1..7
  uint64_t memory = 0;   // bytes
  std::string name;      // "3g.40gb"
};

struct SimConfig {
  std::string state_name = "default";
  std::vector<uint64_t> memory;  // one entry per device
  uint64_t context_overhead = 256ull << 20;
  uint64_t timeslice_ns = 2'000'000;
  int driver_version = 0;        // 0: the toolkit's CUDA_VERSION
  // Per GPU (same length as `memory`): its MIG instances in creation order;
  // empty: the GPU is not in MIG mode.
  std::vector<std::vector<MigProfile>> mig;
};

// Reads SIMGPU_* from the environment. Fails with a message naming the variable
// and the accepted forms when a value is malformed or out of range.
vgpu::Result<SimConfig> load_config_from_env();

}  // namespace simgpu
