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
// Parses "GPU-8b1c...": the 16 bytes of a UUID string.
bool parse_uuid(const std::string& s, unsigned char out[16]);
// Resolves a config entry (index or UUID / unique UUID prefix) to an index.
Result<int> resolve_gpu(const std::vector<Gpu>& gpus, const std::string& entry);

}  // namespace vgpu::sched
