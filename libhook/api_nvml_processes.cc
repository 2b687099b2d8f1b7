// Exported wrappers: NVML's per-process views, filtered to the processes this
// process may see, so one tenant never learns another's pids, memory or
// per-process utilization (issue 8, item 10; docs/security.md "NVML views").
//
// Who is visible:
// - registered with vgpud: the pids of the tenant's control block (vgpud's
//   pid namespace: with vgpud in the host's, the same pids the driver
//   reports), which include this process's own;
// - otherwise (standalone, or vgpud unreachable/refused): getpid() only. In a
//   container with its own pid namespace getpid() is not the pid the driver
//   reports, so such a process sees an empty list: less, never more.
//
// The size protocols stay NVML's (nvml_filter.h). A driver without one of the
// entry points gets NVML_ERROR_FUNCTION_NOT_FOUND from the wrapper, as the
// memory-info wrappers do. dlsym on a libnvidia-ml handle reaches these
// wrappers through dlsym_override.cc (kNvmlHooks); NVML has no
// cuGetProcAddress-like lookup, so export + dlsym are all the paths.
//
// Thread-safety: the wrappers hold no state of their own; the control block
// is read with atomic loads (vgpud writes it, tenants cannot).
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "daemon_client.h"
#include "hook_core.h"
#include "nvml_filter.h"
#include "real_driver.h"
#include "vgpu/nvml_subset.h"
#include "vgpu/tenant_shm.h"

#define VGPU_NVML_EXPORT extern "C" __attribute__((visibility("default")))

namespace vgpu::hook {
namespace {

// A snapshot of the visible pids, taken once per call.
class VisiblePids {
 public:
  VisiblePids() {
    HookCore& core = HookCore::get();
    core.ensure_daemon();  // a child after fork() registers itself first
    if (core.daemon_mode())
      if (const TenantControl* c = DaemonClient::get().control()) {
        for (const std::atomic<int32_t>& p : c->pids)
          if (int32_t pid = p.load(std::memory_order_acquire); pid > 0) pids_[n_++] = pid;
        return;
      }
    pids_[n_++] = static_cast<int32_t>(getpid());
  }
  bool operator()(unsigned pid) const {
    for (int i = 0; i < n_; ++i)
      if (static_cast<unsigned>(pids_[i]) == pid) return true;
    return false;
  }

 private:
  int32_t pids_[kShmMaxProcs];
  int n_ = 0;
};

template <class Info, class Real>
nvmlReturn_t process_list(Real real, nvmlDevice_t device, unsigned* infoCount, Info* infos) {
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  return nvml_filtered_processes(real, device, infoCount, infos, VisiblePids());
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

// Every version of the three running-process lists: _v3 and _v2 fill
// nvmlProcessInfo_t, the un-suffixed (v1) nvmlProcessInfo_v1_t.
#define VGPU_NVML_PROCESS_LIST(name, Info)                                                      \
  VGPU_NVML_EXPORT nvmlReturn_t name(nvmlDevice_t device, unsigned int* infoCount, Info* infos) { \
    static auto real = reinterpret_cast<PFN_##name>(real_nvml_symbol(#name));                  \
    return process_list(real, device, infoCount, infos);                                       \
  }
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v3, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v2, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, nvmlProcessInfo_v1_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses_v3, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses_v2, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses, nvmlProcessInfo_v1_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v3, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v2, nvmlProcessInfo_t)
VGPU_NVML_PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, nvmlProcessInfo_v1_t)
#undef VGPU_NVML_PROCESS_LIST

VGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                              nvmlProcessUtilizationSample_t* utilization,
                                                              unsigned int* processSamplesCount,
                                                              unsigned long long lastSeenTimeStamp) {
  static auto real =
      reinterpret_cast<PFN_nvmlDeviceGetProcessUtilization>(real_nvml_symbol("nvmlDeviceGetProcessUtilization"));
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  auto read = [&](unsigned* n, nvmlProcessUtilizationSample_t* a) { return real(device, a, n, lastSeenTimeStamp); };
  return nvml_filtered_samples(read, utilization, processSamplesCount, VisiblePids());
}

VGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t device,
                                                                    nvmlProcessesUtilizationInfo_t* info) {
  static auto real = reinterpret_cast<PFN_nvmlDeviceGetProcessesUtilizationInfo>(
      real_nvml_symbol("nvmlDeviceGetProcessesUtilizationInfo"));
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  if (!info) return real(device, nullptr);  // the driver's own error; it has nowhere to write
  // A later struct version would be filled by the driver with fields the hook
  // does not know how to filter: refuse it rather than pass it through.
  if (info->version != nvmlProcessesUtilizationInfo_v1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  unsigned long long last_seen = info->lastSeenTimeStamp;
  auto read = [&](unsigned* n, nvmlProcessUtilizationInfo_v1_t* a) {
    nvmlProcessesUtilizationInfo_t mine{nvmlProcessesUtilizationInfo_v1, *n, last_seen, a};
    nvmlReturn_t r = real(device, &mine);
    *n = mine.processSamplesCount;
    return r;
  };
  return nvml_filtered_samples(read, info->procUtilArray, &info->processSamplesCount, VisiblePids());
}
