// The node's GPUs as NVML reports them (libnvidia-ml.so.1, opened at run time:
// the real one on a GPU node, simgpu's in tests), as schedulable units
// (vgpu/nvml_units.h): a GPU not in MIG mode is one unit, a GPU in MIG mode
// contributes one unit per MIG device (each has its own quota and lease). A
// unit's index is its position in that list — the NVML index on a node
// without MIG; identity is the UUID ("GPU-..." or "MIG-..."). Read once at
// startup: a MIG layout changed later needs a vgpud restart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::sched {

struct Gpu {
  int index = 0;               // unit index (tenant memory device, config index)
  std::string uuid;            // "GPU-xxxxxxxx-...." or, for a MIG device, "MIG-..."
  unsigned char uuid_bytes[16] = {};
  std::string name;
  uint64_t memory = 0;         // bytes (a MIG device's own memory)
  int nvml_index = 0;          // the physical GPU's NVML index
  int mig_index = -1;          // MIG device index on that GPU; -1: the whole GPU
  std::string gpu_uuid;        // the physical GPU's UUID (== uuid without MIG)
};

Result<std::vector<Gpu>> discover_gpus();

// Live readings of unit `index` (NVML): physical memory in use and
// utilization (0 on a MIG device: NVML has no utilization in MIG mode).
struct GpuReading {
  uint64_t memory_used = 0;
  double busy_fraction = 0;
  bool ok = false;
};
GpuReading read_gpu(int index);

// The physical backstop's view of one GPU (gpu_processes.cc): what each
// process really holds and uses, as NVML reports it, independent of what the
// process told vgpud. Call after discover_gpus() (which initialises NVML).
// Thread-safe; each call is one or two NVML queries, no caching of readings.
struct ProcessReading {
  int32_t pid = 0;
  uint64_t memory = 0;        // device memory held, bytes (contexts included)
  bool memory_known = true;   // false: NVML reported NVML_VALUE_NOT_AVAILABLE
};
// The compute processes on GPU `index` (nvmlDeviceGetComputeRunningProcesses
// _v3, else _v2). An error if NVML is not loaded or the query fails.
Result<std::vector<ProcessReading>> read_processes(int index);

struct ProcessBusy {
  int32_t pid = 0;
  uint64_t busy_ns = 0;  // engine time in the samples read, to ~0.5 % of a period per sample
};
// Integrates the per-process utilization samples of GPU `index` newer than
// *last_seen_us (nvmlDeviceGetProcessUtilization; start from 0) into busy
// time per pid, and advances *last_seen_us to the newest sample read. Each
// sample stands for smUtil % of one sample period; the period is learnt from
// consecutive samples of one process, within NVML's documented 1/6 s..1 s
// (1/6 s until learnt). Empty when there is no new sample, or NVML cannot
// tell (old driver, MIG): the caller cannot distinguish, by design.
std::vector<ProcessBusy> read_process_busy(int index, uint64_t* last_seen_us);
// Parses "GPU-8b1c..." or "MIG-8b1c...": the 16 bytes of a UUID string.
bool parse_uuid(const std::string& s, unsigned char out[16]);
// Resolves a config entry to a unit index: a unit index, a GPU UUID or
// unique prefix ("GPU-" optional), or a MIG device's UUID or unique prefix
// ("MIG-..."). A GPU in MIG mode is no unit: naming it is an error that
// lists its MIG devices.
Result<int> resolve_gpu(const std::vector<Gpu>& gpus, const std::string& entry);
// The NVML handle of unit `index` (nvmlDevice_t, a GPU or MIG device handle)
// as discover_gpus() found it; nullptr before discover_gpus or out of range.
// For the readers in gpu_processes.cc. Thread-safe.
void* unit_handle(int index);

}  // namespace vgpu::sched
