// Process-local device address spaces, the allocation registry and plain
// device allocations (see memory.h for the model).
#include "memory.h"

#include <pthread.h>
#include <sys/mman.h>

#include <map>
#include <new>

namespace simgpu {

bool is_device_kind(MemKind k) { return k != MemKind::kHostAlloc && k != MemKind::kHostRegistered; }

CUresult charge_device(int device, uint64_t bytes) {
  Node& node = Driver::get().node();
  if (node.reserve(device, bytes)) return CUDA_SUCCESS;
  node.reap_dead();  // memory of a killed process comes back here
  return node.reserve(device, bytes) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

void uncharge_device(int device, uint64_t bytes) {
  if (bytes) Driver::get().node().release(device, bytes);
}

namespace {

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// One device's address range: mapped once, lazily, then carved first-fit.
// VMM reservations and IPC imports take address space without capacity, so
// the range is several times the device's memory.
class AddressSpace {
 public:
  CUresult take(int device, size_t size, size_t alignment, CUdeviceptr* out) {
    std::lock_guard<std::mutex> g(mu_);
    if (!base_ && !map_range(device)) return CUDA_ERROR_OUT_OF_MEMORY;
    size = round_up(size, kPageSize);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      uint64_t start = round_up(it->first, alignment);
      uint64_t end = it->first + it->second;
      if (start + size > end || start + size < start) continue;
      uint64_t head = it->first, tail = start + size;
      free_.erase(it);
      if (start > head) free_[head] = start - head;
      if (end > tail) free_[tail] = end - tail;
      *out = static_cast<CUdeviceptr>(start);
      return CUDA_SUCCESS;
    }
    return CUDA_ERROR_OUT_OF_MEMORY;
  }

  void give_back(CUdeviceptr p, size_t size) {
    size = round_up(size, kPageSize);
    madvise(reinterpret_cast<void*>(p), size, MADV_DONTNEED);
    std::lock_guard<std::mutex> g(mu_);
    uint64_t start = p, len = size;
    auto next = free_.lower_bound(start);
    if (next != free_.end() && start + len == next->first) {
      len += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == start) {
        prev->second += len;
        return;
      }
    }
    free_[start] = len;
  }

  // After fork the child owns none of the parent's allocations.
  void reset_after_fork() {
    new (&mu_) std::mutex();
    free_.clear();
    if (base_) free_[base_] = span_;
  }

 private:
  bool map_range(int device) {
    uint64_t total = Driver::get().device(device).total_memory;
    span_ = round_up(4 * total + (64ull << 30), kVmmGranularity);
    size_t len = span_ + kVmmGranularity;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      log_error("cannot map %zu bytes of address space for device %d", len, device);
      return false;
    }
    // Align the range to the VMM granularity and return the slack.
    uint64_t raw = reinterpret_cast<uint64_t>(p);
    uint64_t aligned = round_up(raw, kVmmGranularity);
    if (aligned > raw) munmap(p, aligned - raw);
    uint64_t tail = raw + len - (aligned + span_);
    if (tail) munmap(reinterpret_cast<void*>(aligned + span_), tail);
    base_ = aligned;
    free_[base_] = span_;
    return true;
  }

  std::mutex mu_;
  uint64_t base_ = 0;
  uint64_t span_ = 0;
  std::map<uint64_t, uint64_t> free_;  // start -> length
};

AddressSpace* spaces() {
  static AddressSpace* s = new AddressSpace[kMaxDevices];  // never destroyed (see registry())
  return s;
}

struct Registry {
  std::mutex mu;
  std::map<CUdeviceptr, Allocation> live;  // by base
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: executor threads may outlive exit()
  return *r;
}

// Caller holds registry().mu.
const Allocation* containing_locked(CUdeviceptr p) {
  auto& live = registry().live;
  auto it = live.upper_bound(p);
  if (it == live.begin()) return nullptr;
  --it;
  size_t len = it->second.size ? it->second.size : 1;
  return p - it->second.base < len ? &it->second : nullptr;
}

void free_context_memory(Context* ctx) {
  ipc_close_imports_of(ctx);
  for (const Allocation& a : allocations_of(ctx)) {
    if (!is_device_kind(a.kind) || a.kind == MemKind::kArray || a.kind == MemKind::kIpcImport) continue;
    if (auto live = unregister_allocation(a.base)) {
      if (live->kind == MemKind::kPool) {
        pool_return_block(*live);
      } else {
        ipc_forget_export(live->base);
        give_back_address(live->device, live->base, live->extent);
        uncharge_device(live->device, live->charged);
      }
    }
  }
}

void reset_memory_after_fork() {
  for (int d = 0; d < kMaxDevices; ++d) spaces()[d].reset_after_fork();
  new (&registry().mu) std::mutex();
  registry().live.clear();
}

// Registered once, when the library is loaded.
const bool g_hooks_installed = [] {
  Driver::get().on_context_destroy(free_context_memory);
  pthread_atfork(nullptr, nullptr, reset_memory_after_fork);
  return true;
}();

}  // namespace

CUresult take_address(int device, size_t size, size_t alignment, CUdeviceptr* out) {
  if (alignment < kPageSize) alignment = kPageSize;
  return spaces()[device].take(device, size, alignment, out);
}

void give_back_address(int device, CUdeviceptr base, size_t size) {
  if (size) spaces()[device].give_back(base, size);
}

void register_allocation(const Allocation& a) {
  std::lock_guard<std::mutex> g(registry().mu);
  registry().live[a.base] = a;
}

std::optional<Allocation> unregister_allocation(CUdeviceptr base) {
  std::lock_guard<std::mutex> g(registry().mu);
  auto it = registry().live.find(base);
  if (it == registry().live.end()) return std::nullopt;
  Allocation a = it->second;
  registry().live.erase(it);
  return a;
}

std::optional<Allocation> find_allocation(CUdeviceptr base) {
  std::lock_guard<std::mutex> g(registry().mu);
  auto it = registry().live.find(base);
  if (it == registry().live.end()) return std::nullopt;
  return it->second;
}

std::optional<Allocation> find_containing(CUdeviceptr p) {
  std::lock_guard<std::mutex> g(registry().mu);
  const Allocation* a = containing_locked(p);
  if (!a) return std::nullopt;
  return *a;
}

std::vector<Allocation> allocations_of(Context* ctx) {
  std::lock_guard<std::mutex> g(registry().mu);
  std::vector<Allocation> out;
  for (auto& [base, a] : registry().live)
    if (a.ctx == ctx) out.push_back(a);
  return out;
}

std::vector<Allocation> allocations_overlapping(CUdeviceptr p, size_t n) {
  std::lock_guard<std::mutex> g(registry().mu);
  std::vector<Allocation> out;
  auto& live = registry().live;
  auto it = live.upper_bound(p);
  if (it != live.begin()) --it;
  for (; it != live.end() && it->first < p + n; ++it)
    if (it->first + it->second.size > p) out.push_back(it->second);
  return out;
}

bool set_allocation_flags(CUdeviceptr base, unsigned flags) {
  std::lock_guard<std::mutex> g(registry().mu);
  auto it = registry().live.find(base);
  if (it == registry().live.end()) return false;
  it->second.flags = flags;
  return true;
}

CUresult check_device_range(CUdeviceptr p, size_t n) {
  std::lock_guard<std::mutex> g(registry().mu);
  const Allocation* a = containing_locked(p);
  if (!a || !is_device_kind(a->kind)) return CUDA_ERROR_INVALID_VALUE;
  if (n > a->size || p - a->base > a->size - n) return CUDA_ERROR_INVALID_VALUE;
  if (a->kind == MemKind::kVmmMapping && a->flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult alloc_device_memory(Context* ctx, size_t bytes, uint64_t charge, MemKind kind,
                             unsigned flags, CUdeviceptr* out) {
  if (bytes == 0 || !out) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = charge_device(ctx->device, charge)) return r;
  CUdeviceptr base = 0;
  if (CUresult r = take_address(ctx->device, bytes, kPageSize, &base)) {
    uncharge_device(ctx->device, charge);
    return r;
  }
  Allocation a;
  a.base = base;
  a.size = bytes;
  a.extent = bytes;
  a.charged = charge;
  a.device = ctx->device;
  a.ctx = ctx;
  a.kind = kind;
  a.flags = flags;
  register_allocation(a);
  *out = base;
  return CUDA_SUCCESS;
}

CUresult free_device_memory(CUdeviceptr base) {
  auto found = find_allocation(base);
  if (!found) return CUDA_ERROR_INVALID_VALUE;
  switch (found->kind) {
    case MemKind::kDevice: case MemKind::kPitched: case MemKind::kManaged: case MemKind::kGraph:
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  auto a = unregister_allocation(base);
  if (!a) return CUDA_ERROR_INVALID_VALUE;  // lost a race with another free
  ipc_forget_export(a->base);
  give_back_address(a->device, a->base, a->extent);
  uncharge_device(a->device, a->charged);
  return CUDA_SUCCESS;
}

CUresult free_any_device_allocation(const Allocation& a) {
  if (a.kind != MemKind::kPool) return free_device_memory(a.base);
  // The real driver synchronizes before freeing stream-ordered memory here.
  if (a.ctx) synchronize_context(a.ctx);
  auto live = unregister_allocation(a.base);
  if (!live) return CUDA_ERROR_INVALID_VALUE;
  pool_return_block(*live);
  return CUDA_SUCCESS;
}

}  // namespace simgpu
