// Per-process utilization samples: the model behind NVML's
// nvmlDeviceGetProcessUtilization / nvmlDeviceGetProcessesUtilizationInfo.
//
// The real driver samples each process's SM activity once per sample period
// (about 1/6 s) into a bounded buffer and returns the samples newer than the
// caller's lastSeenTimeStamp. simgpu keeps that shape on a fixed grid of
// CLOCK_REALTIME periods of kUtilPeriodNs: period k covers [k*P, (k+1)*P); its
// sample has timeStamp (k+1)*P in microseconds (the end of the period, when
// the driver would have taken it) and smUtil = round(busy / P * 100), so a
// caller recovers busy time as smUtil / 100 * P (to within half a percent of
// a period per sample).
//
// The engine marks the start of every chunk it runs (busy_begin) and credits
// the chunk to the periods it overlaps when it ends (busy_end). A chunk still
// running counts up to "now" when samples are collected, so a period's sample
// is final as soon as the period has ended: a caller that advances
// lastSeenTimeStamp to the newest sample it saw never misses engine time.
// Only ended periods are sampled, and only processes with engine time in them.
// History: kUtilBuckets periods per process slot and device. Samples of a
// process that exited stay until they age out or a process reusing its slot
// runs in the same period (then the earlier process's entry is lost).
//
// Everything here requires the node lock.
#pragma once

#include <cstdint>
#include <vector>

#include "node_state.h"

namespace simgpu {

constexpr uint64_t kUtilPeriodNs = 166'667'000;  // 1/6 s, a whole number of microseconds

uint64_t realtime_ns();

// The process in `p` starts running a chunk on `device` at `now_rt` (realtime ns).
void busy_begin(ProcessSlot& p, int device, uint64_t now_rt);
// Its chunk ends at `now_rt`: the interval is credited to its sample periods.
void busy_end(ProcessSlot& p, int device, uint64_t now_rt);

struct UtilSample {
  uint32_t pid;
  uint64_t timestamp_us;  // end of the sample period, CLOCK_REALTIME microseconds
  uint32_t sm_percent;    // 0..100
};

// The samples of `device` for periods ended by `now_rt` whose timestamp is
// greater than `last_seen_us`, ordered by timestamp, then pid.
std::vector<UtilSample> collect_samples(const NodeState& s, int device, uint64_t now_rt, uint64_t last_seen_us);

}  // namespace simgpu
