#include "launcher.h"

#include <chrono>
#include <thread>

namespace vgpu::workload {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

Launcher::Launcher(CUfunction kernel, const LaunchPlan& plan, ErrorLog* log)
    : kernel_(kernel), plan_(plan), log_(log) {}

Launcher::~Launcher() {
  for (Lane& lane : lanes_) {
    for (Slot& s : lane.slots) {
      if (s.start != nullptr) log_->check("cuEventDestroy", cuEventDestroy(s.start));
      if (s.stop != nullptr) log_->check("cuEventDestroy", cuEventDestroy(s.stop));
    }
    if (lane.stream != nullptr) log_->check("cuStreamDestroy", cuStreamDestroy(lane.stream));
  }
}

bool Launcher::setup() {
  lanes_.resize(plan_.streams);
  for (Lane& lane : lanes_) {
    if (!log_->check("cuStreamCreate", cuStreamCreate(&lane.stream, CU_STREAM_NON_BLOCKING)))
      return false;
    if (plan_.sync_every > 0) continue;  // no events in synchronize mode
    lane.slots.resize(static_cast<size_t>(plan_.depth));
    // Blocking-sync events: waiting for a completion sleeps instead of spinning
    // a CPU core, which matters on a real GPU with several workloads per node.
    for (Slot& s : lane.slots) {
      if (!log_->check("cuEventCreate", cuEventCreate(&s.start, CU_EVENT_BLOCKING_SYNC)) ||
          !log_->check("cuEventCreate", cuEventCreate(&s.stop, CU_EVENT_BLOCKING_SYNC)))
        return false;
    }
  }
  return true;
}

bool Launcher::keep_launching(uint64_t launched, double elapsed_s) const {
  if (plan_.count > 0) return launched < plan_.count;
  return elapsed_s < plan_.duration_s;
}

bool Launcher::launch_on(Lane& lane) {
  if (plan_.sync_every > 0) return launch_synced(lane);
  const int depth = static_cast<int>(lane.slots.size());
  if (lane.inflight == depth && !retire_oldest(lane)) return false;
  Slot& s = lane.slots[(lane.head + lane.inflight) % depth];
  unsigned long long ns = plan_.kernel_ns;
  void* args[] = {&ns};
  if (!log_->check("cuEventRecord", cuEventRecord(s.start, lane.stream)) ||
      !log_->check("cuLaunchKernel",
                   cuLaunchKernel(kernel_, 1, 1, 1, 1, 1, 1, 0, lane.stream, args, nullptr)) ||
      !log_->check("cuEventRecord", cuEventRecord(s.stop, lane.stream)))
    return false;
  ++lane.inflight;
  ++report_.kernels_launched;
  return true;
}

bool Launcher::retire_oldest(Lane& lane) {
  Slot& s = lane.slots[lane.head];
  float ms = 0;
  if (!log_->check("cuEventSynchronize", cuEventSynchronize(s.stop)) ||
      !log_->check("cuEventElapsedTime", cuEventElapsedTime(&ms, s.start, s.stop))) {
    lane.inflight = 0;  // the stream is unusable; do not wait on it again
    return false;
  }
  report_.busy_ms += ms;
  ++report_.kernels_completed;
  lane.head = (lane.head + 1) % static_cast<int>(lane.slots.size());
  --lane.inflight;
  return true;
}

bool Launcher::launch_synced(Lane& lane) {
  unsigned long long ns = plan_.kernel_ns;
  void* args[] = {&ns};
  if (lane.unsynced == 0) lane.batch_start = Clock::now();
  if (!log_->check("cuLaunchKernel",
                   cuLaunchKernel(kernel_, 1, 1, 1, 1, 1, 1, 0, lane.stream, args, nullptr)))
    return false;
  ++lane.unsynced;
  ++report_.kernels_launched;
  return lane.unsynced < plan_.sync_every || sync_lane(lane);
}

bool Launcher::sync_lane(Lane& lane) {
  if (lane.unsynced == 0) return true;
  const int batch = lane.unsynced;
  lane.unsynced = 0;
  if (!log_->check("cuStreamSynchronize", cuStreamSynchronize(lane.stream))) return false;
  auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - lane.batch_start).count();
  const uint64_t kernels_ns = plan_.kernel_ns * static_cast<uint64_t>(batch);
  const uint64_t total = waited > 0 ? static_cast<uint64_t>(waited) : 0;
  if (report_.sync_waits_ns.size() < kMaxWaitSamples)
    report_.sync_waits_ns.push_back(total > kernels_ns ? total - kernels_ns : 0);
  report_.kernels_completed += static_cast<uint64_t>(batch);
  report_.busy_ms += static_cast<double>(kernels_ns) / 1e6;
  return true;
}

LaunchReport Launcher::run() {
  const Clock::time_point t0 = Clock::now();
  uint64_t launched = 0;
  while (keep_launching(launched, seconds_since(t0))) {
    if (plan_.rate > 0) {
      // Launch i is due at t0 + i/rate; after a stall, catch up without bursting
      // beyond the in-flight bound.
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(launched / plan_.rate));
      std::this_thread::sleep_until(due);
      if (plan_.count == 0 && seconds_since(t0) >= plan_.duration_s) break;
    }
    if (!launch_on(lanes_[launched % lanes_.size()])) break;
    ++launched;
  }
  for (Lane& lane : lanes_) {
    while (lane.inflight > 0 && retire_oldest(lane)) {
    }
    sync_lane(lane);
  }
  report_.wall_ms = seconds_since(t0) * 1000;
  return report_;
}

}  // namespace vgpu::workload
