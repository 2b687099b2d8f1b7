#include "share_window.h"

#include <algorithm>

namespace vgpu::sched {

ShareWindow::ShareWindow(uint64_t window_ns, int buckets)
    : bucket_ns_(std::max<uint64_t>(1, window_ns / static_cast<uint64_t>(buckets))),
      window_(window_ns),
      count_(buckets) {}

void ShareWindow::set_window(uint64_t window_ns) {
  if (window_ns == window_) return;
  auto old = std::move(buckets_);
  uint64_t old_bucket_ns = bucket_ns_;
  buckets_.clear();
  window_ = window_ns;
  bucket_ns_ = std::max<uint64_t>(1, window_ns / static_cast<uint64_t>(count_));
  for (auto& [tenant, ring] : old) {
    // Oldest first: a newer bucket that lands in the same ring slot replaces
    // an older one, which is then outside the window anyway.
    std::vector<std::pair<uint64_t, uint64_t>> slots;
    for (auto& b : ring.slots)
      if (b.first != UINT64_MAX && b.second > 0) slots.push_back(b);
    std::sort(slots.begin(), slots.end());
    for (auto& [bucket, ns] : slots) charge(tenant, bucket * old_bucket_ns, bucket * old_bucket_ns + ns);
  }
}

void ShareWindow::add(int tenant, uint64_t bucket, uint64_t ns) {
  Ring& ring = buckets_[tenant];
  ring.cached_newest = UINT64_MAX;
  if (ring.slots.empty()) ring.slots.assign(static_cast<size_t>(count_ + 1), {UINT64_MAX, 0});
  auto& slot = ring.slots[bucket % ring.slots.size()];
  if (slot.first != bucket) slot = {bucket, 0};
  slot.second += ns;
}

void ShareWindow::charge(int tenant, uint64_t start, uint64_t end) {
  while (start < end) {
    uint64_t bucket = start / bucket_ns_;
    uint64_t bucket_end = (bucket + 1) * bucket_ns_;
    uint64_t stop = std::min(end, bucket_end);
    add(tenant, bucket, stop - start);
    start = stop;
  }
}

uint64_t ShareWindow::charged_ns(int tenant, uint64_t now) const {
  auto it = buckets_.find(tenant);
  if (it == buckets_.end()) return 0;
  uint64_t newest = now / bucket_ns_;
  uint64_t oldest = newest >= static_cast<uint64_t>(count_) ? newest - static_cast<uint64_t>(count_) + 1 : 0;
  const Ring& ring = it->second;
  if (ring.cached_newest == newest) return ring.cached_sum;
  uint64_t sum = 0;
  for (auto& [bucket, ns] : ring.slots)
    if (bucket != UINT64_MAX && bucket >= oldest && bucket <= newest) sum += ns;
  ring.cached_newest = newest;
  ring.cached_sum = sum;
  return sum;
}

double ShareWindow::share(int tenant, uint64_t now) const {
  // The window covers the buckets [oldest, newest]: the newest is partial.
  uint64_t newest = now / bucket_ns_;
  uint64_t span = (static_cast<uint64_t>(count_) - 1) * bucket_ns_ + (now - newest * bucket_ns_);
  if (origin_ > 0 && now > origin_) span = std::min(span, now - origin_);
  if (span == 0) return 0;
  return static_cast<double>(charged_ns(tenant, now)) / static_cast<double>(span);
}

}  // namespace vgpu::sched
