// The workload's report: what it asked for and what it got. Printed once at
// exit, as one JSON object (--json) or as a few lines of text.
#pragma once

#include <cstdint>
#include <string>

#include "allocator.h"
#include "cuda_errors.h"
#include "launcher.h"

namespace vgpu::workload {

struct Summary {
  std::string label;
  int pid = 0;
  int device = 0;
  uint64_t kernel_ns = 0;
  LaunchReport launches;
  AllocationReport allocations;
  const ErrorLog* errors = nullptr;
};

// One JSON object, one line. Fields:
//   busy_ms         sum of event-measured kernel times. Events measure the
//                   stream's elapsed time, which includes time the engine
//                   spent on other contexts while a kernel was preempted.
//   achieved_share  busy_ms / wall_ms.
//   work_ms         kernels_completed * kernel_ns: the engine time actually
//                   received; work_share = work_ms / wall_ms is the fair-share
//                   measure when several processes compete.
//   syncs, sync_wait_p50_ms, sync_wait_p99_ms, sync_wait_max_ms
//                   --sync-every mode: number of synchronizes and their wait
//                   beyond their kernels' time (0 in event mode).
std::string to_json(const Summary& s);
std::string to_text(const Summary& s);

}  // namespace vgpu::workload
