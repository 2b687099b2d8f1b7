// read_processes and read_process_busy (declared in gpu_inventory.h): the
// per-process NVML queries behind vgpud's physical backstop.
#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>

#include "gpu_inventory.h"
#include "vgpu/nvml_subset.h"

namespace vgpu::sched {
namespace {

// NVML documents sample periods between 1/6 s and 1 s, depending on the product.
constexpr uint64_t kMinPeriodUs = 166'667;
constexpr uint64_t kMaxPeriodUs = 1'000'000;
// NVML is trusted, but a count it returns still bounds an allocation.
constexpr unsigned kMaxEntries = 1u << 16;
constexpr int kAttempts = 4;  // the list can grow between the size query and the read

struct Functions {
  PFN_nvmlDeviceGetHandleByIndex_v2 handle = nullptr;
  PFN_nvmlDeviceGetComputeRunningProcesses_v3 processes = nullptr;  // _v3 or _v2: same layout
  PFN_nvmlDeviceGetProcessUtilization utilization = nullptr;
};

const Functions& nvml() {
  static const Functions f = [] {
    Functions r;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return r;
    r.handle = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    r.processes = reinterpret_cast<PFN_nvmlDeviceGetComputeRunningProcesses_v3>(
        dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3"));
    if (!r.processes)
      r.processes = reinterpret_cast<PFN_nvmlDeviceGetComputeRunningProcesses_v2>(
          dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v2"));
    r.utilization =
        reinterpret_cast<PFN_nvmlDeviceGetProcessUtilization>(dlsym(lib, "nvmlDeviceGetProcessUtilization"));
    return r;
  }();
  return f;
}

// Unit `index`'s handle (a MIG device handle for a MIG unit); the NVML index
// when discover_gpus() has not run (a reader used on its own).
bool device(int index, nvmlDevice_t* d) {
  if (void* h = unit_handle(index)) {
    *d = static_cast<nvmlDevice_t>(h);
    return true;
  }
  return nvml().handle && index >= 0 && nvml().handle(static_cast<unsigned>(index), d) == NVML_SUCCESS;
}

// Calls `query(count, buffer)` under NVML's size protocol, growing `buf`.
template <class T, class Query>
nvmlReturn_t read_list(std::vector<T>* buf, Query query) {
  nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;
  for (int i = 0; i < kAttempts && r == NVML_ERROR_INSUFFICIENT_SIZE; ++i) {
    unsigned n = static_cast<unsigned>(buf->size());
    r = query(&n, buf->empty() ? nullptr : buf->data());
    if (r == NVML_SUCCESS) buf->resize(std::min<size_t>(n, buf->size()));
    if (r == NVML_ERROR_INSUFFICIENT_SIZE) buf->resize(std::min(kMaxEntries, std::max<unsigned>(n, 1) + 16));
  }
  return r;
}

// The sample period of GPU `index`, learnt from the spacing of one process's
// consecutive samples (`samples` sorted by pid, then time).
uint64_t period_us(int index, const std::vector<nvmlProcessUtilizationSample_t>& samples) {
  static std::mutex mu;
  static std::map<int, uint64_t> learnt;  // guarded by mu
  uint64_t gap = UINT64_MAX;
  for (size_t i = 1; i < samples.size(); ++i)
    if (samples[i].pid == samples[i - 1].pid && samples[i].timeStamp > samples[i - 1].timeStamp)
      gap = std::min<uint64_t>(gap, samples[i].timeStamp - samples[i - 1].timeStamp);
  std::lock_guard<std::mutex> g(mu);
  if (gap != UINT64_MAX) learnt[index] = std::clamp(gap, kMinPeriodUs, kMaxPeriodUs);
  auto it = learnt.find(index);
  return it == learnt.end() ? kMinPeriodUs : it->second;
}

}  // namespace

Result<std::vector<ProcessReading>> read_processes(int index) {
  nvmlDevice_t d;
  if (!nvml().processes || !device(index, &d))
    return make_error("NVML cannot list the processes of GPU " + std::to_string(index));
  std::vector<nvmlProcessInfo_t> buf(32);
  nvmlReturn_t r = read_list(&buf, [&](unsigned* n, nvmlProcessInfo_t* p) { return nvml().processes(d, n, p); });
  if (r != NVML_SUCCESS)
    return make_error("nvmlDeviceGetComputeRunningProcesses failed on GPU " + std::to_string(index) + ": error " +
                      std::to_string(r));
  std::vector<ProcessReading> out;
  for (const nvmlProcessInfo_t& p : buf) {
    if (p.pid == 0 || p.pid > static_cast<unsigned>(INT32_MAX)) continue;
    bool known = p.usedGpuMemory != static_cast<unsigned long long>(NVML_VALUE_NOT_AVAILABLE);
    out.push_back({static_cast<int32_t>(p.pid), known ? p.usedGpuMemory : 0, known});
  }
  return out;
}

std::vector<ProcessBusy> read_process_busy(int index, uint64_t* last_seen_us) {
  nvmlDevice_t d;
  if (!nvml().utilization || !device(index, &d)) return {};
  std::vector<nvmlProcessUtilizationSample_t> buf;
  const unsigned long long since = *last_seen_us;
  nvmlReturn_t r = read_list(&buf, [&](unsigned* n, nvmlProcessUtilizationSample_t* s) {
    return nvml().utilization(d, s, n, since);
  });
  if (r != NVML_SUCCESS) return {};  // NOT_FOUND: nothing new
  std::sort(buf.begin(), buf.end(), [](const auto& a, const auto& b) {
    return a.pid != b.pid ? a.pid < b.pid : a.timeStamp < b.timeStamp;
  });
  buf.erase(std::unique(buf.begin(), buf.end(),
                        [](const auto& a, const auto& b) { return a.pid == b.pid && a.timeStamp == b.timeStamp; }),
            buf.end());
  const uint64_t period_ns = period_us(index, buf) * 1000;
  std::vector<ProcessBusy> out;
  for (const nvmlProcessUtilizationSample_t& s : buf) {
    if (s.timeStamp <= since || s.pid == 0 || s.pid > static_cast<unsigned>(INT32_MAX)) continue;
    if (out.empty() || out.back().pid != static_cast<int32_t>(s.pid)) out.push_back({static_cast<int32_t>(s.pid), 0});
    out.back().busy_ns += std::min(s.smUtil, 100u) * period_ns / 100;
    *last_seen_us = std::max<uint64_t>(*last_seen_us, s.timeStamp);
  }
  return out;
}

}  // namespace vgpu::sched
