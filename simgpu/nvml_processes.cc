// nvmlDeviceGetComputeRunningProcesses (v1 layout) and _v2/_v3: every live
// process of the node holding a context on the device, with the device memory
// it holds (its contexts' overhead included).
//
// The documented size protocol: *infoCount is the capacity of `infos` on
// entry. If the processes do not fit, NVML_ERROR_INSUFFICIENT_SIZE and
// *infoCount = the number needed; *infoCount == 0 with infos == NULL is the
// documented way to ask (SUCCESS if none run). On success *infoCount is the
// number written.
//
// MIG: a MIG device handle lists the processes on that MIG device; a GPU in
// MIG mode lists those of all its MIG devices (NVML's "aggregate
// information"); each entry then carries its GPU and compute instance ids.
#include <vector>

#include "nvml_core.h"

using namespace simgpu;

namespace {

constexpr unsigned kNoMigInstance = 0xFFFFFFFFu;  // instance ids without MIG

struct Running {
  unsigned pid;
  unsigned long long used;
  unsigned gpu_instance = kNoMigInstance;
  unsigned compute_instance = kNoMigInstance;
};

// The entries whose processes `device` lists: itself, or its MIG devices.
std::vector<int> entries_of(const NodeState& st, int device) {
  if (!st.devices[device].mig_enabled) return {device};
  std::vector<int> out;
  for (int m = st.gpu_count; m < st.device_count; ++m)
    if (st.devices[m].mig_parent == device) out.push_back(m);
  return out;
}

// A consistent snapshot, taken under the node lock after reaping dead
// processes, so a killed process never appears.
std::vector<Running> running_on(nvml::Session& s, int device) {
  std::vector<Running> out;
  NodeState& st = s.state();
  s.node().lock();
  reap_dead_locked(&st);
  for (int e : entries_of(st, device)) {
    const DeviceInfo& d = st.devices[e];
    for (const ProcessSlot& p : st.procs) {
      int32_t pid = p.pid.load();
      if (pid == 0 || p.contexts[e].load() == 0) continue;
      Running r{static_cast<unsigned>(pid), p.used[e].load()};
      if (d.mig_parent >= 0) {
        r.gpu_instance = d.gpu_instance_id;
        r.compute_instance = d.compute_instance_id;
      }
      out.push_back(r);
    }
  }
  s.node().unlock();
  return out;
}

// Fills `infos` through `fill(info, running)`, following the size protocol.
template <class Info, class Fill>
nvmlReturn_t list_processes(nvmlDevice_t device, unsigned* infoCount, Info* infos, Fill fill) {
  nvml::Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  if (!infoCount || (*infoCount > 0 && !infos)) return NVML_ERROR_INVALID_ARGUMENT;
  std::vector<Running> procs = running_on(s, index);
  if (procs.size() > *infoCount) {
    *infoCount = static_cast<unsigned>(procs.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < procs.size(); ++i) fill(&infos[i], procs[i]);
  *infoCount = static_cast<unsigned>(procs.size());
  return NVML_SUCCESS;
}

nvmlReturn_t list_v2(nvmlDevice_t device, unsigned* infoCount, nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, [](nvmlProcessInfo_t* info, const Running& p) {
    info->pid = p.pid;
    info->usedGpuMemory = p.used;
    info->gpuInstanceId = p.gpu_instance;
    info->computeInstanceId = p.compute_instance;
  });
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount,
                                                                        nvmlProcessInfo_t* infos) {
  return list_v2(device, infoCount, infos);
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* infoCount,
                                                                        nvmlProcessInfo_t* infos) {
  return list_v2(device, infoCount, infos);
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* infoCount,
                                                                     nvmlProcessInfo_v1_t* infos) {
  return list_processes(device, infoCount, infos, [](nvmlProcessInfo_v1_t* info, const Running& p) {
    info->pid = p.pid;
    info->usedGpuMemory = p.used;
  });
}
