// ShareWindow: GPU time charged to each tenant over a sliding window, kept in
// fixed buckets so old time ages out smoothly. share() is the fraction of the
// window's wall time a tenant was charged. Not thread-safe (vgpud's loop owns it).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace vgpu::sched {

class ShareWindow {
 public:
  ShareWindow(uint64_t window_ns, int buckets = 50);
  // Charges the interval [start, end) to `tenant`.
  void charge(int tenant, uint64_t start, uint64_t end);
  // Charged time of `tenant` inside the window ending at `now`, divided by the
  // window length (or by the time since `origin` while that is shorter).
  double share(int tenant, uint64_t now) const;
  uint64_t charged_ns(int tenant, uint64_t now) const;
  void set_origin(uint64_t origin) { origin_ = origin; }
  void forget(int tenant) { buckets_.erase(tenant); }
  // A new window length (scheduler.window changed by a reload). The time
  // charged so far is kept: each bucket's time moves to the new buckets
  // covering the start of its interval, so shares stay continuous and
  // what falls outside the new window ages out as usual.
  void set_window(uint64_t window_ns);
  uint64_t window_ns() const { return window_; }
  // The next time after `now` at which the oldest bucket leaves the window:
  // a share can jump up there (the window loses less than it loses in span).
  uint64_t next_boundary(uint64_t now) const { return (now / bucket_ns_ + 1) * bucket_ns_; }

 private:
  void add(int tenant, uint64_t bucket, uint64_t ns);
  uint64_t bucket_ns_;
  uint64_t window_;
  int count_;
  uint64_t origin_ = 0;
  // A tenant's ring of (bucket index, ns), and the sum over the window as of
  // its newest bucket (the arbiter asks for shares many times per decision;
  // the sum changes only when time is charged or a bucket ages out).
  struct Ring {
    std::vector<std::pair<uint64_t, uint64_t>> slots;
    mutable uint64_t cached_newest = UINT64_MAX;  // UINT64_MAX: no cached sum
    mutable uint64_t cached_sum = 0;
  };
  std::map<int, Ring> buckets_;
};

}  // namespace vgpu::sched
