// nvmlDeviceGetProcessUtilization and nvmlDeviceGetProcessesUtilizationInfo:
// per-process SM utilization samples, one per process and ended sample period
// (about 1/6 s) in which it used the engine, newer than lastSeenTimeStamp
// (util_samples.h has the model). Memory, encoder, decoder, JPEG and OFA
// utilization are not simulated and read 0.
//
// The documented protocol: *processSamplesCount is the capacity of the array
// on entry. NULL count: INVALID_ARGUMENT. No sample newer than
// lastSeenTimeStamp: NOT_FOUND (count 0). A NULL array, or one too small:
// INSUFFICIENT_SIZE with the number of samples available (the documented way
// to size the buffer). On success the count is the number written. A sample
// period can end between the size query and the read, so callers allow some
// headroom or retry.
#include <vector>

#include "nvml_core.h"
#include "util_samples.h"

using namespace simgpu;

namespace {

// Reaps first, as the process list does, so a killed process's chunk in
// progress stops counting; its earlier samples stay.
std::vector<UtilSample> samples_of(nvml::Session& s, int device, unsigned long long last_seen) {
  s.node().lock();
  reap_dead_locked(&s.state());
  std::vector<UtilSample> out = collect_samples(s.state(), device, realtime_ns(), last_seen);
  s.node().unlock();
  return out;
}

// Follows the size protocol; `fill(i, sample)` writes entry i.
template <class Fill>
nvmlReturn_t deliver(const std::vector<UtilSample>& got, bool have_array, unsigned* count, Fill fill) {
  if (got.empty()) {
    *count = 0;
    return NVML_ERROR_NOT_FOUND;
  }
  if (!have_array || *count < got.size()) {
    *count = static_cast<unsigned>(got.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < got.size(); ++i) fill(i, got[i]);
  *count = static_cast<unsigned>(got.size());
  return NVML_SUCCESS;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                                nvmlProcessUtilizationSample_t* utilization,
                                                                unsigned int* processSamplesCount,
                                                                unsigned long long lastSeenTimeStamp) {
  nvml::Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  // NVML has no utilization in MIG mode, for the GPU or its MIG devices.
  if (s.state().devices[index].mig_enabled || s.state().devices[index].mig_parent >= 0) return NVML_ERROR_NOT_SUPPORTED;
  if (!processSamplesCount) return NVML_ERROR_INVALID_ARGUMENT;
  return deliver(samples_of(s, index, lastSeenTimeStamp), utilization != nullptr, processSamplesCount,
                 [&](size_t i, const UtilSample& x) { utilization[i] = {x.pid, x.timestamp_us, x.sm_percent, 0, 0, 0}; });
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t device,
                                                                      nvmlProcessesUtilizationInfo_t* info) {
  nvml::Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  // NVML has no utilization in MIG mode, for the GPU or its MIG devices.
  if (s.state().devices[index].mig_enabled || s.state().devices[index].mig_parent >= 0) return NVML_ERROR_NOT_SUPPORTED;
  if (!info) return NVML_ERROR_INVALID_ARGUMENT;
  if (info->version != nvmlProcessesUtilizationInfo_v1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  nvmlProcessUtilizationInfo_v1_t* out = info->procUtilArray;
  return deliver(samples_of(s, index, info->lastSeenTimeStamp), out != nullptr, &info->processSamplesCount,
                 [&](size_t i, const UtilSample& x) { out[i] = {x.timestamp_us, x.pid, x.sm_percent, 0, 0, 0, 0, 0}; });
}
