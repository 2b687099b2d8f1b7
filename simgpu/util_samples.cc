#include "util_samples.h"

#include <time.h>

#include <algorithm>

namespace simgpu {
namespace {

constexpr uint64_t kP = kUtilPeriodNs;

// Adds the part of [from, to) that falls in period k to `ring`, a slot's
// buckets for one device (or a copy of them).
void add_overlap(UtilBucket* ring, int32_t pid, uint64_t k, uint64_t from, uint64_t to) {
  uint64_t lo = std::max(from, k * kP), hi = std::min(to, (k + 1) * kP);
  if (hi <= lo) return;
  UtilBucket& b = ring[k % kUtilBuckets];
  if (b.period != k + 1 || b.pid != pid) b = {pid, k + 1, 0};
  b.busy_ns += hi - lo;
}

// Credits [from, to) to the periods it overlaps; only the newest kUtilBuckets
// periods are kept, so an hour-long chunk costs no more than a short one.
void credit(UtilBucket* ring, int32_t pid, uint64_t from, uint64_t to) {
  if (to <= from) return;  // the realtime clock stepped back: nothing to credit
  uint64_t last = (to - 1) / kP;
  uint64_t first = std::max(from / kP, last >= kUtilBuckets ? last - kUtilBuckets + 1 : 0);
  for (uint64_t k = first; k <= last; ++k) add_overlap(ring, pid, k, from, to);
}

uint32_t percent(uint64_t busy_ns) {
  return static_cast<uint32_t>(std::min<uint64_t>(100, (busy_ns * 100 + kP / 2) / kP));
}

}  // namespace

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void busy_begin(ProcessSlot& p, int device, uint64_t now_rt) { p.run_start_rt_ns[device] = now_rt; }

void busy_end(ProcessSlot& p, int device, uint64_t now_rt) {
  uint64_t start = p.run_start_rt_ns[device];
  if (start == 0) return;
  credit(p.util[device], p.pid.load(), start, now_rt);
  p.run_start_rt_ns[device] = 0;
}

std::vector<UtilSample> collect_samples(const NodeState& s, int device, uint64_t now_rt, uint64_t last_seen_us) {
  std::vector<UtilSample> out;
  const uint64_t current = now_rt / kP;  // the period still under way: not sampled
  const uint64_t oldest = current >= kUtilBuckets ? current - kUtilBuckets : 0;
  for (const ProcessSlot& p : s.procs) {
    // Read in place; copied only to add a chunk under way (it counts up to
    // now: the periods it covered are over). Copying every slot's history
    // (256 x 64 buckets) on each call was most of a poller's time.
    const UtilBucket* ring = p.util[device];
    UtilBucket copy[kUtilBuckets];
    int32_t pid = p.pid.load();
    uint64_t start = p.run_start_rt_ns[device];
    if (pid != 0 && start != 0 && now_rt > start) {
      std::copy(std::begin(p.util[device]), std::end(p.util[device]), copy);
      for (uint64_t k = std::max(start / kP, oldest); k < current; ++k) add_overlap(copy, pid, k, start, now_rt);
      ring = copy;
    }
    for (int i = 0; i < kUtilBuckets; ++i) {
      const UtilBucket& b = ring[i];
      if (b.period == 0 || b.busy_ns == 0 || b.pid <= 0) continue;
      uint64_t k = b.period - 1;
      uint64_t ts_us = (k + 1) * (kP / 1000);
      if (k >= current || k < oldest || ts_us <= last_seen_us) continue;
      out.push_back({static_cast<uint32_t>(b.pid), ts_us, percent(b.busy_ns)});
    }
  }
  std::sort(out.begin(), out.end(), [](const UtilSample& a, const UtilSample& b) {
    return a.timestamp_us != b.timestamp_us ? a.timestamp_us < b.timestamp_us : a.pid < b.pid;
  });
  return out;
}

}  // namespace simgpu
