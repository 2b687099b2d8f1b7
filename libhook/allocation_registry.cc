#include "allocation_registry.h"

#include <new>

namespace vgpu::hook {

AllocationRegistry::Shard& AllocationRegistry::shard(uint64_t key) {
  // Device pointers are 256-byte aligned: mix the bits before choosing.
  uint64_t h = (key >> 8) * 0x9E3779B97F4A7C15ull;
  return shards_[h >> 58];
}

void AllocationRegistry::add(uint64_t key, Charge charge) {
  Shard& s = shard(key);
  std::lock_guard<std::mutex> g(s.mu);
  s.map[key] = charge;
}

bool AllocationRegistry::take(uint64_t key, Charge* out) {
  Shard& s = shard(key);
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  *out = it->second;
  s.map.erase(it);
  return true;
}

void AllocationRegistry::take_owned_by(uint64_t ctx, std::vector<Charge>* out) {
  if (ctx == 0) return;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> g(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (it->second.ctx == ctx) {
        out->push_back(it->second);
        it = s.map.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void AllocationRegistry::clear() {
  for (Shard& s : shards_) {
    new (&s.mu) std::mutex();  // the lock may have been held by a thread that no longer exists
    s.map.clear();
  }
}

}  // namespace vgpu::hook
