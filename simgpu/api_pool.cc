// Stream-ordered memory pools: default/current pool per device, explicit
// pools, attributes, trimming, cuMemAllocAsync / cuMemAllocFromPoolAsync /
// cuMemFreeAsync.
//
// Model. A pool owns blocks of device memory, each a multiple of 2 MiB (the
// allocation granularity) and charged to the node when the pool creates it:
// RESERVED_MEM_* counts blocks, USED_MEM_* counts blocks handed out. An
// allocation reuses the smallest idle block that fits, else creates a block;
// when the node is full the pool first releases its own idle blocks and
// retries, then fails with CUDA_ERROR_OUT_OF_MEMORY.
//
// Simplifications (documented, observable only in timing):
//  - Allocation happens when the call is made, not in stream order (the real
//    driver also reserves at the call when the pool lacks memory).
//  - cuMemFreeAsync returns the block to the pool in stream order (an op on
//    the stream). Memory above RELEASE_THRESHOLD is released at the next
//    stream/event/context synchronization (a sync hook, see event.h), as
//    documented, or by cuMemPoolTrimTo.
//  - Only blocks whose free has completed are reused, so the reuse policy
//    attributes are stored and reported but change nothing.
//  - Pool sharing between processes (export/import) is not simulated.
// On a capturing stream cuMemAllocAsync / cuMemFreeAsync add memory-alloc /
// memory-free graph nodes instead (graph.h): the pool is not touched.
#include <pthread.h>

#include <map>
#include <unordered_map>

#include "capture.h"
#include "event.h"
#include "graph.h"
#include "memory.h"

using namespace simgpu;

namespace {

struct Pool {
  int device = 0;
  bool is_default = false;
  CUmemPoolProps props{};
  std::mutex mu;
  uint64_t reserved = 0, reserved_high = 0, used = 0, used_high = 0, threshold = 0;
  int reuse_follow = 1, reuse_opportunistic = 1, reuse_internal = 1;
  std::multimap<size_t, CUdeviceptr> idle;         // block size -> base
  std::unordered_map<CUdeviceptr, size_t> blocks;  // every block: base -> size
  bool destroyed = false;
};

HandleTable<Pool> g_pools;
std::mutex g_device_mu;
Pool* g_default[kMaxDevices];
Pool* g_current[kMaxDevices];

void install_hooks();

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Releases idle blocks, largest first, until at most `keep` bytes are reserved.
void trim_locked(Pool* p, uint64_t keep) {
  while (p->reserved > keep && !p->idle.empty()) {
    auto it = std::prev(p->idle.end());
    size_t size = it->first;
    CUdeviceptr base = it->second;
    p->idle.erase(it);
    p->blocks.erase(base);
    give_back_address(p->device, base, size);
    uncharge_device(p->device, size);
    p->reserved -= size;
  }
}

Pool* default_pool(int device) {
  std::lock_guard<std::mutex> g(g_device_mu);
  if (!g_default[device]) {
    install_hooks();
    auto* p = new Pool();
    p->device = device;
    p->is_default = true;
    p->props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p->props.location = {CU_MEM_LOCATION_TYPE_DEVICE, device};
    g_pools.add(p);
    g_default[device] = p;
    if (!g_current[device]) g_current[device] = p;
  }
  return g_default[device];
}

Pool* current_pool(int device) {
  Pool* d = default_pool(device);
  std::lock_guard<std::mutex> g(g_device_mu);
  return g_current[device] ? g_current[device] : d;
}

Pool* live_pool(CUmemoryPool h) {
  auto* p = reinterpret_cast<Pool*>(h);
  return h && g_pools.contains(p) ? p : nullptr;
}

// Creates a new block of `size` bytes, charged to the node. Caller holds p->mu.
CUresult new_block_locked(Pool* p, size_t size, CUdeviceptr* out) {
  if (p->props.maxSize && p->reserved + size > p->props.maxSize) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = charge_device(p->device, size);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    trim_locked(p, 0);  // our own idle blocks may be what fills the device
    r = charge_device(p->device, size);
  }
  if (r) return r;
  if ((r = take_address(p->device, size, kVmmGranularity, out))) {
    uncharge_device(p->device, size);
    return r;
  }
  p->blocks[*out] = size;
  p->reserved += size;
  p->reserved_high = std::max(p->reserved_high, p->reserved);
  return CUDA_SUCCESS;
}

CUresult pool_alloc(Pool* p, Context* ctx, size_t size, CUdeviceptr* out) {
  size_t block = round_up(size, kVmmGranularity);
  std::lock_guard<std::mutex> g(p->mu);
  CUdeviceptr base = 0;
  auto it = p->idle.lower_bound(block);
  if (it != p->idle.end()) {
    block = it->first;
    base = it->second;
    p->idle.erase(it);
  } else if (CUresult r = new_block_locked(p, block, &base)) {
    return r;
  }
  p->used += block;
  p->used_high = std::max(p->used_high, p->used);
  Allocation a;
  a.base = base;
  a.size = size;
  a.extent = block;
  a.device = p->device;
  a.ctx = ctx;
  a.kind = MemKind::kPool;
  a.owner = p;
  register_allocation(a);
  *out = base;
  return CUDA_SUCCESS;
}

CUresult alloc_async(CUdeviceptr* dptr, size_t size, CUmemoryPool hpool, bool use_current, CUstream h,
                     bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (!dptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  Pool* p = use_current ? current_pool(s->ctx->device) : live_pool(hpool);
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  // Captured: a memory-alloc node owned by the graph (not the pool), its
  // address fixed now, its memory taken when the graph is launched.
  bool captured = false;
  if (CUresult r = capture_node(
          s, [&](CUgraph g, const std::vector<CUgraphNode>& deps, CUgraphNode* out) {
            return graph_add_mem_alloc(g, deps, p->device, size, out, dptr);
          },
          &captured))
    return r;
  if (captured) return CUDA_SUCCESS;
  return pool_alloc(p, s->ctx, size, dptr);
}

CUresult free_async(CUdeviceptr dptr, CUstream h, bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  // Captured: a memory-free node, which only a graph allocation may have.
  bool captured = false;
  if (CUresult r = capture_node(
          s, [&](CUgraph g, const std::vector<CUgraphNode>& deps, CUgraphNode* out) {
            return graph_add_mem_free(g, deps, dptr, out);
          },
          &captured))
    return r;
  if (captured) return CUDA_SUCCESS;
  auto a = find_allocation(dptr);
  if (!a || !is_device_kind(a->kind)) return CUDA_ERROR_INVALID_VALUE;
  if (a->kind != MemKind::kPool) {
    // Memory from cuMemAlloc: free it once the stream's prior work is done.
    s->synchronize();
    return free_device_memory(dptr);
  }
  auto live = unregister_allocation(dptr);  // a second free now fails at once
  if (!live) return CUDA_ERROR_INVALID_VALUE;
  StreamOp op;
  Allocation block = *live;
  op.work = [block] { pool_return_block(block); };
  enqueue_ordered(s, std::move(op));
  return CUDA_SUCCESS;
}

// Synchronization point: every pool of the context's device keeps at most its
// release threshold.
void trim_at_sync(Context* ctx) {
  for (Pool* p : g_pools.snapshot()) {
    if (ctx && p->device != ctx->device) continue;
    std::lock_guard<std::mutex> g(p->mu);
    trim_locked(p, p->threshold);
  }
}

// After fork the child holds none of the parent's pool memory.
void reset_pools_after_fork() {
  g_pools.clear();
  new (&g_device_mu) std::mutex();
  for (int d = 0; d < kMaxDevices; ++d) g_default[d] = g_current[d] = nullptr;
}

// Installed when the first pool is made (not at load time: the sync-hook
// list lives in another translation unit, whose initialisation order is unknown).
void install_hooks() {
  static std::once_flag once;
  std::call_once(once, [] {
    add_sync_hook(trim_at_sync);
    pthread_atfork(nullptr, nullptr, reset_pools_after_fork);
  });
}

CUresult check_props(const CUmemPoolProps* props) {
  if (!props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (props->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  if (check_device(props->location.id) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
  if (props->handleTypes != CU_MEM_HANDLE_TYPE_NONE && props->handleTypes != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
    return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

CUresult set_attribute(Pool* p, CUmemPool_attribute attr, void* value) {
  std::lock_guard<std::mutex> g(p->mu);
  auto as_u64 = [value] { return *static_cast<cuuint64_t*>(value); };
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p->reuse_follow = *static_cast<int*>(value) != 0; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p->reuse_opportunistic = *static_cast<int*>(value) != 0; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p->reuse_internal = *static_cast<int*>(value) != 0; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p->threshold = as_u64(); break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:  // only resetting (to the current value) is allowed
      if (as_u64() != 0) return CUDA_ERROR_INVALID_VALUE;
      p->reserved_high = p->reserved;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (as_u64() != 0) return CUDA_ERROR_INVALID_VALUE;
      p->used_high = p->used;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult get_attribute(Pool* p, CUmemPool_attribute attr, void* value) {
  std::lock_guard<std::mutex> g(p->mu);
  auto u64 = static_cast<cuuint64_t*>(value);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *static_cast<int*>(value) = p->reuse_follow; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *static_cast<int*>(value) = p->reuse_opportunistic; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *static_cast<int*>(value) = p->reuse_internal; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *u64 = p->threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *u64 = p->reserved; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *u64 = p->reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *u64 = p->used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *u64 = p->used_high; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

}  // namespace

namespace simgpu {

void pool_return_block(const Allocation& a) {
  auto* p = static_cast<Pool*>(a.owner);
  std::lock_guard<std::mutex> g(p->mu);
  auto it = p->blocks.find(a.base);
  if (it == p->blocks.end()) return;
  p->used -= it->second;
  p->idle.emplace(it->second, a.base);
  if (p->destroyed) trim_locked(p, 0);
}

}  // namespace simgpu

SIMGPU_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (CUresult r = check_device(dev)) return r;
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  *pool = reinterpret_cast<CUmemoryPool>(default_pool(phys(dev)));
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (CUresult r = check_device(dev)) return r;
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  *pool = reinterpret_cast<CUmemoryPool>(current_pool(phys(dev)));
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  if (CUresult r = check_device(dev)) return r;
  Pool* p = live_pool(pool);
  if (!p || p->device != phys(dev)) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_device_mu);
  g_current[phys(dev)] = p;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props) {
  if (CUresult r = require_init()) return r;
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_props(props)) return r;
  install_hooks();
  auto* p = new Pool();
  p->device = phys(props->location.id);
  p->props = *props;
  g_pools.add(p);
  *pool = reinterpret_cast<CUmemoryPool>(p);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  if (CUresult r = require_init()) return r;
  Pool* p = live_pool(pool);
  if (!p || p->is_default) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> g(g_device_mu);
    if (g_current[p->device] == p) g_current[p->device] = g_default[p->device];
  }
  g_pools.remove(p);
  // Outstanding allocations still point at the pool: it is kept and releases
  // each block as it comes back (the Pool object itself is never freed).
  std::lock_guard<std::mutex> g(p->mu);
  p->destroyed = true;
  trim_locked(p, 0);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (CUresult r = require_init()) return r;
  Pool* p = live_pool(pool);
  if (!p || !value) return CUDA_ERROR_INVALID_VALUE;
  return set_attribute(p, attr, value);
}

SIMGPU_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (CUresult r = require_init()) return r;
  Pool* p = live_pool(pool);
  if (!p || !value) return CUDA_ERROR_INVALID_VALUE;
  return get_attribute(p, attr, value);
}

SIMGPU_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  if (CUresult r = require_init()) return r;
  Pool* p = live_pool(pool);
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(p->mu);
  trim_locked(p, minBytesToKeep);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, nullptr, true, hStream, false);
}
SIMGPU_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, nullptr, true, hStream, true);
}
SIMGPU_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                               CUstream hStream) {
  return alloc_async(dptr, bytesize, pool, false, hStream, false);
}
SIMGPU_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                    CUstream hStream) {
  return alloc_async(dptr, bytesize, pool, false, hStream, true);
}
SIMGPU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) { return free_async(dptr, hStream, false); }
SIMGPU_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  return free_async(dptr, hStream, true);
}
