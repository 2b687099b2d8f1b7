// Copies and fills: cuMemcpy*, cuMemsetD8/16/32 and their async and
// per-thread-default-stream forms. A copy is a stream op that moves real bytes
// (device pointers are addresses in this process); it does not occupy the
// execution engine. Synchronous forms queue on the (legacy or per-thread)
// default stream and wait for completion, so they are ordered after earlier
// work exactly as the real driver orders them. Device ranges are validated
// when the call is made: a range outside a live allocation is
// CUDA_ERROR_INVALID_VALUE.
#include <cstring>

#include "capture.h"
#include "memory.h"

using namespace simgpu;

namespace {

enum class Side { kHost, kDevice, kUnified };

// A validated side of a copy: host pointers are trusted (as the driver must),
// device ones must lie inside a live allocation.
CUresult check_side(Side side, const void* p, size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  auto addr = reinterpret_cast<CUdeviceptr>(p);
  switch (side) {
    case Side::kHost:
      return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case Side::kDevice:
      return check_device_range(addr, n);
    case Side::kUnified: {
      if (!p) return CUDA_ERROR_INVALID_VALUE;
      auto a = find_containing(addr);
      return a && is_device_kind(a->kind) ? check_device_range(addr, n) : CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// Queues `work` on the resolved stream (or captures it as a node of `type`);
// waits for it when `sync`. A synchronous copy is a potentially unsafe call
// during stream capture (it synchronizes).
CUresult submit(CUstream h, bool per_thread, bool sync, std::function<void()> work,
                CUgraphNodeType type = CU_GRAPH_NODE_TYPE_MEMCPY) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (sync)
    if (CUresult r = check_stream_sync(s)) return r;
  StreamOp op;
  op.work = std::move(work);
  uint64_t seq = 0;
  if (CUresult r = submit_op(s, std::move(op), type, &seq)) return r;
  if (sync && seq) s->wait_for(seq);
  return CUDA_SUCCESS;
}

CUresult copy(void* dst, Side dside, const void* src, Side sside, size_t n, CUstream h, bool per_thread,
              bool sync) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;  // context errors first
  if (CUresult r = check_side(dside, dst, n)) return r;
  if (CUresult r = check_side(sside, src, n)) return r;
  if (n == 0) return CUDA_SUCCESS;
  return submit(h, per_thread, sync, [dst, src, n] { std::memmove(dst, src, n); });
}

void* dev(CUdeviceptr p) { return reinterpret_cast<void*>(p); }

template <class T>
CUresult fill(CUdeviceptr dst, T value, size_t count, CUstream h, bool per_thread, bool sync) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (dst % sizeof(T) != 0) return CUDA_ERROR_INVALID_VALUE;
  if (count > SIZE_MAX / sizeof(T)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_side(Side::kDevice, dev(dst), count * sizeof(T))) return r;
  if (count == 0) return CUDA_SUCCESS;
  return submit(h, per_thread, sync, [dst, value, count] {
    T* p = static_cast<T*>(dev(dst));
    for (size_t i = 0; i < count; ++i) p[i] = value;
  }, CU_GRAPH_NODE_TYPE_MEMSET);
}

// --- 2D copies ----------------------------------------------------------------

struct Plane {
  char* base;
  size_t pitch;
  Side side;
};

CUresult plane_of(CUmemorytype type, const void* host, CUdeviceptr device, size_t x, size_t y, size_t pitch,
                  Plane* out) {
  switch (type) {
    case CU_MEMORYTYPE_HOST: out->base = static_cast<char*>(const_cast<void*>(host)); out->side = Side::kHost; break;
    case CU_MEMORYTYPE_DEVICE: out->base = static_cast<char*>(dev(device)); out->side = Side::kDevice; break;
    case CU_MEMORYTYPE_UNIFIED: out->base = static_cast<char*>(dev(device)); out->side = Side::kUnified; break;
    case CU_MEMORYTYPE_ARRAY: return CUDA_ERROR_NOT_SUPPORTED;  // array copies are not simulated
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  if (!out->base) return CUDA_ERROR_INVALID_VALUE;
  out->base += y * pitch + x;
  out->pitch = pitch;
  return CUDA_SUCCESS;
}

CUresult copy2d(const CUDA_MEMCPY2D* c, CUstream h, bool per_thread, bool sync) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (!c) return CUDA_ERROR_INVALID_VALUE;
  if (c->Height > 1 && (c->srcPitch < c->WidthInBytes || c->dstPitch < c->WidthInBytes))
    return CUDA_ERROR_INVALID_VALUE;
  Plane src{}, dst{};
  if (CUresult r = plane_of(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY, c->srcPitch, &src))
    return r;
  if (CUresult r = plane_of(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY, c->dstPitch, &dst))
    return r;
  if (c->WidthInBytes == 0 || c->Height == 0) return CUDA_SUCCESS;
  size_t src_span = (c->Height - 1) * src.pitch + c->WidthInBytes;
  size_t dst_span = (c->Height - 1) * dst.pitch + c->WidthInBytes;
  if (CUresult r = check_side(src.side, src.base, src_span)) return r;
  if (CUresult r = check_side(dst.side, dst.base, dst_span)) return r;
  size_t width = c->WidthInBytes, height = c->Height;
  return submit(h, per_thread, sync, [src, dst, width, height] {
    for (size_t row = 0; row < height; ++row)
      std::memmove(dst.base + row * dst.pitch, src.base + row * src.pitch, width);
  });
}

}  // namespace

// --- linear copies: sync, legacy default stream (_v2) and per-thread (_ptds) ---

#define SIMGPU_SYNC_PAIR(name, ptds, params, call_legacy, call_ptds)  \
  SIMGPU_EXPORT CUresult name params { return call_legacy; }         \
  SIMGPU_EXPORT CUresult ptds params { return call_ptds; }

SIMGPU_SYNC_PAIR(cuMemcpy, cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n),
                 copy(dev(dst), Side::kUnified, dev(src), Side::kUnified, n, nullptr, false, true),
                 copy(dev(dst), Side::kUnified, dev(src), Side::kUnified, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds, (CUdeviceptr dst, const void* src, size_t n),
                 copy(dev(dst), Side::kDevice, src, Side::kHost, n, nullptr, false, true),
                 copy(dev(dst), Side::kDevice, src, Side::kHost, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds, (void* dst, CUdeviceptr src, size_t n),
                 copy(dst, Side::kHost, dev(src), Side::kDevice, n, nullptr, false, true),
                 copy(dst, Side::kHost, dev(src), Side::kDevice, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t n),
                 copy(dev(dst), Side::kDevice, dev(src), Side::kDevice, n, nullptr, false, true),
                 copy(dev(dst), Side::kDevice, dev(src), Side::kDevice, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemsetD8_v2, cuMemsetD8_v2_ptds, (CUdeviceptr dst, unsigned char v, size_t n),
                 fill<uint8_t>(dst, v, n, nullptr, false, true), fill<uint8_t>(dst, v, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemsetD16_v2, cuMemsetD16_v2_ptds, (CUdeviceptr dst, unsigned short v, size_t n),
                 fill<uint16_t>(dst, v, n, nullptr, false, true), fill<uint16_t>(dst, v, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemsetD32_v2, cuMemsetD32_v2_ptds, (CUdeviceptr dst, unsigned int v, size_t n),
                 fill<uint32_t>(dst, v, n, nullptr, false, true), fill<uint32_t>(dst, v, n, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemcpy2D_v2, cuMemcpy2D_v2_ptds, (const CUDA_MEMCPY2D* c),
                 copy2d(c, nullptr, false, true), copy2d(c, nullptr, true, true))
SIMGPU_SYNC_PAIR(cuMemcpy2DUnaligned_v2, cuMemcpy2DUnaligned_v2_ptds, (const CUDA_MEMCPY2D* c),
                 copy2d(c, nullptr, false, true), copy2d(c, nullptr, true, true))

// --- async forms: legacy (NULL = legacy stream) and _ptsz (NULL = per-thread) ---

SIMGPU_SYNC_PAIR(cuMemcpyAsync, cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s),
                 copy(dev(dst), Side::kUnified, dev(src), Side::kUnified, n, s, false, false),
                 copy(dev(dst), Side::kUnified, dev(src), Side::kUnified, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz,
                 (CUdeviceptr dst, const void* src, size_t n, CUstream s),
                 copy(dev(dst), Side::kDevice, src, Side::kHost, n, s, false, false),
                 copy(dev(dst), Side::kDevice, src, Side::kHost, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz, (void* dst, CUdeviceptr src, size_t n, CUstream s),
                 copy(dst, Side::kHost, dev(src), Side::kDevice, n, s, false, false),
                 copy(dst, Side::kHost, dev(src), Side::kDevice, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2_ptsz,
                 (CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s),
                 copy(dev(dst), Side::kDevice, dev(src), Side::kDevice, n, s, false, false),
                 copy(dev(dst), Side::kDevice, dev(src), Side::kDevice, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemsetD8Async, cuMemsetD8Async_ptsz, (CUdeviceptr dst, unsigned char v, size_t n, CUstream s),
                 fill<uint8_t>(dst, v, n, s, false, false), fill<uint8_t>(dst, v, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemsetD16Async, cuMemsetD16Async_ptsz,
                 (CUdeviceptr dst, unsigned short v, size_t n, CUstream s),
                 fill<uint16_t>(dst, v, n, s, false, false), fill<uint16_t>(dst, v, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemsetD32Async, cuMemsetD32Async_ptsz, (CUdeviceptr dst, unsigned int v, size_t n, CUstream s),
                 fill<uint32_t>(dst, v, n, s, false, false), fill<uint32_t>(dst, v, n, s, true, false))
SIMGPU_SYNC_PAIR(cuMemcpy2DAsync_v2, cuMemcpy2DAsync_v2_ptsz, (const CUDA_MEMCPY2D* c, CUstream s),
                 copy2d(c, s, false, false), copy2d(c, s, true, false))

#undef SIMGPU_SYNC_PAIR
