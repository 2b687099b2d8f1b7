// Context limits: cuCtxSetLimit and cuCtxGetLimit (cudaDeviceSetLimit).
//
// Memory model, after the real driver: three limits size device memory the
// driver reserves for the context.
// - CU_LIMIT_STACK_SIZE: per-thread stack; the driver backs it for every
//   thread the device can hold resident, so it takes
//   value x multiprocessors x max threads per multiprocessor. Default 1 KiB.
//   Above 512 KiB (the per-thread local-memory maximum) is INVALID_VALUE.
// - CU_LIMIT_MALLOC_HEAP_SIZE: the device malloc() heap, default 8 MiB.
// - CU_LIMIT_PRINTF_FIFO_SIZE: the device printf() FIFO, default 1 MiB.
// The defaults are part of the context overhead (SIMGPU_CONTEXT_OVERHEAD);
// a larger value charges the difference to the device (cuMemGetInfo, NVML
// per-process use) and a smaller one returns it. A request that does not fit
// fails with CUDA_ERROR_OUT_OF_MEMORY and leaves the limit as it was. The
// charge goes back when the context is destroyed.
// Departure: the rule that the heap and FIFO sizes must be set before a
// kernel using malloc()/printf() runs is not modelled (simgpu runs no code).
#include <algorithm>

#include "memory.h"

using namespace simgpu;

namespace {

constexpr size_t kDefaultStack = 1024;
constexpr size_t kMaxStack = 512 * 1024;
constexpr size_t kDefaultHeap = 8u << 20;
constexpr size_t kDefaultFifo = 1u << 20;

int device_attribute(Context* c, CUdevice_attribute a) {
  int v = 0;
  cuDeviceGetAttribute(&v, a, ordinal(c->device));
  return v;
}

uint64_t resident_threads(Context* c) {
  return static_cast<uint64_t>(device_attribute(c, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)) *
         static_cast<uint64_t>(device_attribute(c, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR));
}

size_t default_of(Context* c, CUlimit limit) {
  switch (limit) {
    case CU_LIMIT_STACK_SIZE: return kDefaultStack;
    case CU_LIMIT_PRINTF_FIFO_SIZE: return kDefaultFifo;
    case CU_LIMIT_MALLOC_HEAP_SIZE: return kDefaultHeap;
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: return 2048;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY: return 32;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE: return 0;
    default: (void)c; return 0;
  }
}

bool supported(CUlimit limit) {
  switch (limit) {
    case CU_LIMIT_STACK_SIZE: case CU_LIMIT_PRINTF_FIFO_SIZE: case CU_LIMIT_MALLOC_HEAP_SIZE:
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE:
      return true;
    default:  // includes DEV_RUNTIME_SYNC_DEPTH: compute capability 9.0 has none
      return false;
  }
}

// Caller holds c->mu.
size_t value_locked(Context* c, CUlimit limit) {
  auto it = c->limits.find(limit);
  return it == c->limits.end() ? default_of(c, limit) : it->second;
}

// Device bytes the sized limits take beyond their defaults. Saturating.
uint64_t extra_bytes(Context* c, size_t stack, size_t heap, size_t fifo) {
  uint64_t threads = resident_threads(c);
  uint64_t per_thread = stack > kDefaultStack ? stack - kDefaultStack : 0;
  uint64_t s = threads && per_thread > UINT64_MAX / threads ? UINT64_MAX : per_thread * threads;
  uint64_t h = heap > kDefaultHeap ? heap - kDefaultHeap : 0;
  uint64_t f = fifo > kDefaultFifo ? fifo - kDefaultFifo : 0;
  uint64_t total = s;
  for (uint64_t v : {h, f}) total = total > UINT64_MAX - v ? UINT64_MAX : total + v;
  return total;
}

// The value the driver actually keeps for a request (clamps and rounding).
CUresult normalise(Context* c, CUlimit limit, size_t* value) {
  switch (limit) {
    case CU_LIMIT_STACK_SIZE:
      if (*value > kMaxStack) return CUDA_ERROR_INVALID_VALUE;
      *value = (*value + 15) / 16 * 16;  // stack frames are 16-byte aligned
      return CUDA_SUCCESS;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
      *value = std::min<size_t>(*value, 128);  // a hint, clamped
      return CUDA_SUCCESS;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE:
      *value = std::min<size_t>(*value, device_attribute(c, CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE));
      return CUDA_SUCCESS;
    default:
      return CUDA_SUCCESS;
  }
}

// Settles the context's limit charge to `want` bytes.
CUresult settle_charge(Context* c, uint64_t want) {
  if (want > c->limits_charged) {
    if (CUresult r = charge_device(c->device, want - c->limits_charged)) return r;
  } else {
    uncharge_device(c->device, c->limits_charged - want);
  }
  c->limits_charged = want;
  return CUDA_SUCCESS;
}

const bool g_cleanup_installed = [] {
  Driver::get().on_context_destroy([](Context* c) {
    std::lock_guard<std::mutex> g(c->mu);
    uncharge_device(c->device, c->limits_charged);
    c->limits_charged = 0;
  });
  return true;
}();

}  // namespace

SIMGPU_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (limit == CU_LIMIT_SHMEM_SIZE || limit == CU_LIMIT_CIG_ENABLED) return CUDA_ERROR_INVALID_VALUE;  // query-only
  if (!supported(limit)) return CUDA_ERROR_UNSUPPORTED_LIMIT;
  if (CUresult r = normalise(c, limit, &value)) return r;
  // A new stack size takes effect once the work already queued has run.
  if (limit == CU_LIMIT_STACK_SIZE) synchronize_context(c);
  std::lock_guard<std::mutex> g(c->mu);
  size_t stack = value_locked(c, CU_LIMIT_STACK_SIZE);
  size_t heap = value_locked(c, CU_LIMIT_MALLOC_HEAP_SIZE);
  size_t fifo = value_locked(c, CU_LIMIT_PRINTF_FIFO_SIZE);
  if (limit == CU_LIMIT_STACK_SIZE) stack = value;
  if (limit == CU_LIMIT_MALLOC_HEAP_SIZE) heap = value;
  if (limit == CU_LIMIT_PRINTF_FIFO_SIZE) fifo = value;
  if (CUresult r = settle_charge(c, extra_bytes(c, stack, heap, fifo))) return r;
  c->limits[limit] = value;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuCtxGetLimit(size_t* value, CUlimit limit) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!supported(limit)) return CUDA_ERROR_UNSUPPORTED_LIMIT;
  std::lock_guard<std::mutex> g(c->mu);
  *value = value_locked(c, limit);
  return CUDA_SUCCESS;
}
