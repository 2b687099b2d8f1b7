// The GpuReader of a real node: NVML's running compute processes (memory)
// and per-process utilization samples (engine time), through vgpud's NVML
// loader (gpu_inventory.h).
#include <map>

#include "enforcement.h"

namespace vgpu::sched {

namespace {

class NvmlReader final : public GpuReader {
 public:
  std::vector<ProcessSample> read(int gpu_index, uint64_t* last_seen_us) override {
    std::map<int32_t, ProcessSample> by_pid;
    if (auto procs = read_processes(gpu_index))
      for (const ProcessReading& p : *procs) {
        ProcessSample& s = by_pid[p.pid];
        s.pid = p.pid;
        s.memory = p.memory;
      }
    for (const ProcessBusy& b : read_process_busy(gpu_index, last_seen_us)) {
      ProcessSample& s = by_pid[b.pid];
      s.pid = b.pid;
      s.busy_ns += b.busy_ns;
    }
    std::vector<ProcessSample> out;
    for (auto& [pid, s] : by_pid) out.push_back(s);
    return out;
  }
};

}  // namespace

std::unique_ptr<GpuReader> make_nvml_reader() { return std::make_unique<NvmlReader>(); }

}  // namespace vgpu::sched
