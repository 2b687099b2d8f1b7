// nvmlDeviceGetUtilizationRates: the share of a sample period during which the
// device's execution engine ran a kernel, from EngineState::busy_ns (total
// engine time, shared by every process of the node).
//
// The sample period is the time since this process's previous call (at least
// kMinPeriodNs; a faster caller gets the previous value again). A process's
// first call measures from the latest sample any process took, kept in
// EngineState::util_window_* (guarded by the node lock), when that is recent;
// with no recent sample it reports whether a kernel is executing right now.
// Busy time is credited when a kernel (or its timeslice chunk) ends, so a
// period shorter than a kernel reads low then high; values are capped at 100.
// Memory utilization is not simulated and reads 0.
#include <algorithm>
#include <mutex>

#include "nvml_core.h"

using namespace simgpu;

namespace {

constexpr uint64_t kMinPeriodNs = 10'000'000;       // 10 ms
constexpr uint64_t kMaxBaselineAgeNs = 1'000'000'000;  // another process's sample is "recent" for 1 s

struct Sample {
  uint64_t time_ns = 0;
  uint64_t busy_ns = 0;
  unsigned percent = 0;
  bool valid = false;
};

std::mutex g_mu;
Sample g_last[kMaxDevices];  // this process's previous sample per device, guarded by g_mu
uint64_t g_generation = 0;   // the NVML attachment g_last belongs to

unsigned percent_between(const Sample& from, uint64_t now, uint64_t busy) {
  uint64_t elapsed = now - from.time_ns;
  uint64_t ran = busy > from.busy_ns ? busy - from.busy_ns : 0;
  return static_cast<unsigned>(std::min<uint64_t>(100, ran * 100 / elapsed));
}

// The node-wide latest sample, or an invalid one if none is recent. Requires the node lock.
Sample shared_baseline(const EngineState& e, uint64_t now) {
  Sample s;
  if (e.util_window_start_ns == 0 || now - e.util_window_start_ns > kMaxBaselineAgeNs) return s;
  s = {e.util_window_start_ns, e.util_window_busy_ns, e.last_util_percent, true};
  return s;
}

// Requires g_mu.
unsigned sample(nvml::Session& s, int device) {
  if (g_generation != s.generation()) {
    std::fill(std::begin(g_last), std::end(g_last), Sample{});
    g_generation = s.generation();
  }
  EngineState& e = s.state().engine[device];
  Sample& mine = g_last[device];
  s.node().lock();
  const uint64_t now = monotonic_ns();
  const uint64_t busy = e.busy_ns.load();
  Sample base = mine.valid ? mine : shared_baseline(e, now);
  unsigned percent;
  if (base.valid && now - base.time_ns < kMinPeriodNs) {
    percent = base.percent;
  } else {
    percent = base.valid ? percent_between(base, now, busy) : (e.running ? 100u : 0u);
    mine = {now, busy, percent, true};
    e.util_window_start_ns = now;
    e.util_window_busy_ns = busy;
    e.last_util_percent = percent;
  }
  s.node().unlock();
  return percent;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  nvml::Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  // NVML has no utilization in MIG mode, for the GPU or its MIG devices.
  if (s.state().devices[index].mig_enabled || s.state().devices[index].mig_parent >= 0) return NVML_ERROR_NOT_SUPPORTED;
  if (!utilization) return NVML_ERROR_INVALID_ARGUMENT;
  std::lock_guard<std::mutex> g(g_mu);
  utilization->gpu = sample(s, index);
  utilization->memory = 0;
  return NVML_SUCCESS;
}
