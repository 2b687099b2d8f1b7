// Launches spin_ns kernels on N streams, round-robin, saturating or at a fixed
// rate. Two ways of waiting:
//  - events (default): each kernel between a pair of events; at most `depth`
//    kernels in flight per stream, so a preempted or throttled workload cannot
//    queue unbounded work, and completions are observed through the events
//    rather than by synchronizing whole streams;
//  - sync_every N: no events; cuStreamSynchronize after every N launches on a
//    stream (N = 1 is an interactive-inference loop), and each synchronize's
//    wait beyond its kernels' time is recorded.
// Requires a current context. Not thread-safe.
#pragma once

#include <cuda.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "cuda_errors.h"

namespace vgpu::workload {

struct LaunchPlan {
  uint64_t kernel_ns = 0;
  int streams = 1;
  double rate = 0;          // kernels/s over all streams; 0 = as fast as possible
  double duration_s = 0;    // used when count == 0
  uint64_t count = 0;
  int depth = 4;            // event mode: kernels in flight per stream
  int sync_every = 0;       // > 0: synchronize mode
};

struct LaunchReport {
  uint64_t kernels_launched = 0;
  uint64_t kernels_completed = 0;
  double busy_ms = 0;       // sum of event-measured kernel times
  double wall_ms = 0;       // first launch to last completion
  // Synchronize mode: per synchronize, (return - first launch of the batch)
  // minus the batch's kernel time, in ns (at most kMaxWaitSamples kept).
  std::vector<uint64_t> sync_waits_ns;
};

class Launcher {
 public:
  static constexpr size_t kMaxWaitSamples = 1 << 20;

  Launcher(CUfunction kernel, const LaunchPlan& plan, ErrorLog* log);
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Creates the streams and events; false (with the error logged) on failure.
  bool setup();
  // The first stream, for the stream-ordered allocation APIs. Valid after setup().
  CUstream first_stream() const { return lanes_.empty() ? nullptr : lanes_[0].stream; }
  // Launches per the plan, stops at the first failed launch, then waits for
  // everything in flight.
  LaunchReport run();

 private:
  struct Slot {
    CUevent start = nullptr;
    CUevent stop = nullptr;
  };
  struct Lane {
    CUstream stream = nullptr;
    std::vector<Slot> slots;
    int head = 0;      // oldest kernel in flight
    int inflight = 0;
    int unsynced = 0;  // synchronize mode: launches since the last synchronize
    std::chrono::steady_clock::time_point batch_start;
  };
  bool launch_on(Lane& lane);
  bool launch_synced(Lane& lane);
  bool sync_lane(Lane& lane);
  bool retire_oldest(Lane& lane);
  bool keep_launching(uint64_t launched, double elapsed_s) const;

  CUfunction kernel_;
  LaunchPlan plan_;
  ErrorLog* log_;
  std::vector<Lane> lanes_;
  LaunchReport report_;
};

}  // namespace vgpu::workload
