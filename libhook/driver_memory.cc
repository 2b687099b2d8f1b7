// This process's own device memory per NVML (see driver_memory.h).
#include "driver_memory.h"

#include <unistd.h>

#include <vector>

#include "daemon_client.h"
#include "hook_core.h"
#include "real_driver.h"
#include "vgpu/nvml_subset.h"

namespace vgpu::hook {
namespace {

struct NvmlCalls {
  PFN_nvmlDeviceGetHandleByIndex_v2 handle = nullptr;
  PFN_nvmlDeviceGetComputeRunningProcesses_v3 list = nullptr;
  bool ok = false;
};

// The real NVML (never the hook's filtering wrappers), initialised once.
const NvmlCalls& nvml() {
  static const NvmlCalls calls = [] {
    NvmlCalls c;
    auto init = reinterpret_cast<PFN_nvmlInit_v2>(real_nvml_symbol("nvmlInit_v2"));
    c.handle = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(real_nvml_symbol("nvmlDeviceGetHandleByIndex_v2"));
    c.list = reinterpret_cast<PFN_nvmlDeviceGetComputeRunningProcesses_v3>(
        real_nvml_symbol("nvmlDeviceGetComputeRunningProcesses_v3"));
    if (!c.list)
      c.list = reinterpret_cast<PFN_nvmlDeviceGetComputeRunningProcesses_v3>(
          real_nvml_symbol("nvmlDeviceGetComputeRunningProcesses_v2"));
    c.ok = init && c.handle && c.list && init() == NVML_SUCCESS;
    return c;
  }();
  return calls;
}

// The pid NVML knows this process by: vgpud's record of it when registered
// (read-only to the tenant), else getpid().
unsigned nvml_pid() {
  HookCore& core = HookCore::get();
  if (core.daemon_mode())
    if (int32_t pid = DaemonClient::get().registered_pid(); pid > 0) return static_cast<unsigned>(pid);
  return static_cast<unsigned>(getpid());
}

}  // namespace

std::mutex& measure_mutex() {
  static std::mutex* mu = new std::mutex();  // never destroyed: wrappers may run during exit
  return *mu;
}

bool process_used_memory(int slot, uint64_t* bytes, bool* listed) {
  *bytes = 0;
  *listed = false;
  const NvmlCalls& n = nvml();
  nvmlDevice_t dev = nullptr;
  if (!n.ok || slot < 0 || n.handle(static_cast<unsigned>(slot), &dev) != NVML_SUCCESS) return false;
  std::vector<nvmlProcessInfo_t> infos(64);
  unsigned count = 0;
  nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;
  // The list may grow between calls: retry a few times with the size asked for.
  for (int tries = 0; tries < 4 && r == NVML_ERROR_INSUFFICIENT_SIZE; ++tries) {
    count = static_cast<unsigned>(infos.size());
    r = n.list(dev, &count, infos.data());
    if (r == NVML_ERROR_INSUFFICIENT_SIZE) infos.resize(count + 16);
  }
  if (r != NVML_SUCCESS) return false;
  unsigned me = nvml_pid();
  for (unsigned i = 0; i < count && i < infos.size(); ++i)
    if (infos[i].pid == me) {
      // NVML_VALUE_NOT_AVAILABLE: the driver cannot say (e.g. no permission).
      if (infos[i].usedGpuMemory == static_cast<unsigned long long>(NVML_VALUE_NOT_AVAILABLE)) return false;
      *bytes = infos[i].usedGpuMemory;
      *listed = true;
      return true;
    }
  return true;  // not listed: holds nothing on this GPU (or a pid namespace hides it: 0 either way)
}

}  // namespace vgpu::hook
