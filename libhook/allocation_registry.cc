#include "allocation_registry.h"

#include <sched.h>

#include <cstdlib>
#include <cstring>

namespace vgpu::hook {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

// Holds a shard's spinlock for its scope.
class AllocationRegistry::Guard {
 public:
  explicit Guard(std::atomic<bool>& l) : l_(l) {
    if (!l_.exchange(true, std::memory_order_acquire)) return;
    for (int spins = 0;; ++spins) {
      // Wait on a plain load (no cache-line ping-pong), then retry the exchange.
      if (!l_.load(std::memory_order_relaxed) && !l_.exchange(true, std::memory_order_acquire)) return;
      if (spins < 64) cpu_relax();
      else sched_yield();  // the holder was preempted: let it run
    }
  }
  ~Guard() { l_.store(false, std::memory_order_release); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  std::atomic<bool>& l_;
};

namespace {

constexpr uint32_t kInitialCapacity = 16;

}  // namespace

AllocationRegistry::~AllocationRegistry() {
  for (Shard& s : shards_) std::free(s.table);
}

// The bits just below the shard's: the top bits of a multiplicative hash
// depend on every bit of the key, so 256-byte-aligned pointers and small
// handle numbers spread alike.
uint32_t AllocationRegistry::home(const Table* t, uint64_t h) {
  int bits = __builtin_ctz(t->capacity);
  return static_cast<uint32_t>((h << 6) >> (64 - bits));
}

AllocationRegistry::Entry* AllocationRegistry::find(Table* t, uint64_t key, uint64_t h) {
  if (!t) return nullptr;
  uint32_t mask = t->capacity - 1;
  for (uint32_t i = home(t, h);; i = (i + 1) & mask) {
    Entry& e = t->entries[i];
    if (!e.used) return nullptr;  // the table is never full: a free entry ends every probe
    if (e.key == key) return &e;
  }
}

// Removes `e`, then moves later entries of the same probe run back into the
// hole when their home does not lie between the hole and them, so every
// remaining key stays reachable from its home without tombstones.
void AllocationRegistry::erase(Table* t, Entry* e) {
  uint32_t mask = t->capacity - 1;
  uint32_t hole = static_cast<uint32_t>(e - t->entries);
  for (uint32_t j = (hole + 1) & mask;; j = (j + 1) & mask) {
    Entry& next = t->entries[j];
    if (!next.used) break;
    uint32_t h = home(t, hash(next.key));
    // `next` may fill the hole iff its home is not cyclically in (hole, j].
    if (((j - h) & mask) >= ((j - hole) & mask)) {
      t->entries[hole] = next;
      hole = j;
    }
  }
  t->entries[hole].used = 0;
  --t->count;
}

AllocationRegistry::Table* AllocationRegistry::grow(Table* t) {
  uint32_t cap = t ? t->capacity * 2 : kInitialCapacity;
  size_t size = sizeof(Table) + (cap - 1) * sizeof(Entry);
  auto* n = static_cast<Table*>(std::calloc(1, size));
  if (!n) return nullptr;
  n->capacity = cap;
  if (t) {
    uint32_t mask = cap - 1;
    for (uint32_t i = 0; i < t->capacity; ++i) {
      const Entry& e = t->entries[i];
      if (!e.used) continue;
      uint32_t j = home(n, hash(e.key));
      while (n->entries[j].used) j = (j + 1) & mask;
      n->entries[j] = e;
    }
    n->count = t->count;
  }
  return n;
}

void AllocationRegistry::add(uint64_t key, Charge charge) {
  uint64_t h = hash(key);
  Shard& s = shard(h);
  Guard g(s.locked);
  Entry* e = find(s.table, key, h);
  if (!e) {
    Table* t = s.table;
    if (!t || (t->count + 1) * 4 > t->capacity * 3) {
      Table* n = grow(t);
      if (!n) return;  // out of host memory: the charge stays taken (never returned twice)
      s.table = n;     // published before the old table goes: a fork() child sees one or the other
      std::free(t);
      t = n;
    }
    uint32_t mask = t->capacity - 1;
    uint32_t i = home(t, h);
    while (t->entries[i].used) i = (i + 1) & mask;
    e = &t->entries[i];
    e->key = key;
    e->used = 1;
    ++t->count;
  }
  e->slot = charge.slot;
  e->bytes = charge.bytes;
  e->ctx = charge.ctx;
}

bool AllocationRegistry::take(uint64_t key, Charge* out) {
  uint64_t h = hash(key);
  Shard& s = shard(h);
  Guard g(s.locked);
  Entry* e = find(s.table, key, h);
  if (!e) return false;
  out->slot = e->slot;
  out->bytes = e->bytes;
  out->ctx = e->ctx;
  erase(s.table, e);
  return true;
}

void AllocationRegistry::take_owned_by(uint64_t ctx, std::vector<Charge>* out) {
  if (ctx == 0) return;
  std::vector<uint64_t> keys;
  for (Shard& s : shards_) {
    Guard g(s.locked);
    Table* t = s.table;
    if (!t) continue;
    keys.clear();
    for (uint32_t i = 0; i < t->capacity; ++i)
      if (t->entries[i].used && t->entries[i].ctx == ctx) keys.push_back(t->entries[i].key);
    // Erasing moves entries, so the matching keys are collected first.
    for (uint64_t key : keys) {
      Entry* e = find(t, key, hash(key));
      out->push_back(Charge{e->slot, e->bytes, e->ctx});
      erase(t, e);
    }
  }
}

void AllocationRegistry::clear() {
  for (Shard& s : shards_) {
    s.locked.store(false, std::memory_order_relaxed);
    std::free(s.table);
    s.table = nullptr;
  }
}

size_t AllocationRegistry::size() {
  size_t n = 0;
  for (Shard& s : shards_) {
    Guard g(s.locked);
    if (s.table) n += s.table->count;
  }
  return n;
}

}  // namespace vgpu::hook
