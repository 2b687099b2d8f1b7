// Device and host allocations: cuMemAlloc/Pitch/Managed/Free, cuMemGetInfo,
// cuMemGetAddressRange, page-locked host memory (never charged to a device)
// and cuPointerGetAttribute.
#include <sys/mman.h>

#include "capture.h"
#include "memory.h"

using namespace simgpu;

namespace {

constexpr size_t kPitchAlignment = 512;

CUresult alloc_current(size_t bytes, uint64_t charge, MemKind kind, unsigned flags, CUdeviceptr* out) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!out || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  return alloc_device_memory(c, bytes, charge, kind, flags, out);
}

CUresult host_alloc(void** pp, size_t bytes, unsigned flags) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pp || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  Allocation a;
  a.base = reinterpret_cast<CUdeviceptr>(p);
  a.size = bytes;
  a.ctx = c;
  a.kind = MemKind::kHostAlloc;
  a.flags = flags;
  register_allocation(a);
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult write_pointer_attribute(void* data, CUpointer_attribute attr, const Allocation& a, CUdeviceptr p) {
  bool host = !is_device_kind(a.kind);
  switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
      *static_cast<CUcontext*>(data) = reinterpret_cast<CUcontext>(a.ctx);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      *static_cast<unsigned*>(data) = host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:  // unified addressing: same value
      *static_cast<CUdeviceptr*>(data) = p;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (!host && a.kind != MemKind::kManaged) return CUDA_ERROR_INVALID_VALUE;
      *static_cast<void**>(data) = reinterpret_cast<void*>(p);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
      *static_cast<unsigned*>(data) = a.kind == MemKind::kManaged;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: {
      int dev = host ? (a.ctx ? a.ctx->device : 0) : a.device;
      *static_cast<int*>(data) = ordinal(dev);
      return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
      *static_cast<CUdeviceptr*>(data) = a.base;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
      *static_cast<size_t*>(data) = a.size;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
      *static_cast<unsigned*>(data) = 1;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
      *static_cast<unsigned long long*>(data) = a.base;  // unique among live allocations
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace

SIMGPU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  return alloc_current(bytesize, bytesize, MemKind::kDevice, 0, dptr);
}

SIMGPU_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes,
                                          size_t Height, unsigned int ElementSizeBytes) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) return CUDA_ERROR_INVALID_VALUE;
  size_t pitch = (WidthInBytes + kPitchAlignment - 1) / kPitchAlignment * kPitchAlignment;
  if (Height > SIZE_MAX / pitch) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = alloc_device_memory(c, pitch * Height, pitch * Height, MemKind::kPitched, 0, dptr);
  if (r == CUDA_SUCCESS) *pPitch = pitch;
  return r;
}

SIMGPU_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) {
    if (CUresult r = require_init()) return r;
    return CUDA_ERROR_INVALID_VALUE;
  }
  return alloc_current(bytesize, bytesize, MemKind::kManaged, flags, dptr);
}

SIMGPU_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (dptr == 0) return CUDA_SUCCESS;  // like free(NULL)
  auto a = find_allocation(dptr);
  if (!a || !is_device_kind(a->kind)) return CUDA_ERROR_INVALID_VALUE;
  return free_any_device_allocation(*a);
}

SIMGPU_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
  // A killed process's memory is back as soon as it is gone, as on a GPU.
  Driver::get().node().reap_dead();
  NodeState* s = Driver::get().node().state();
  uint64_t all = s->devices[c->device].total_memory;
  uint64_t used = s->used[c->device].load();
  *total = all;
  *free = used >= all ? 0 : all - used;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  auto a = find_containing(dptr);
  if (!a || !is_device_kind(a->kind)) return CUDA_ERROR_NOT_FOUND;
  if (pbase) *pbase = a->base;
  if (psize) *psize = a->size;
  return CUDA_SUCCESS;
}

// --- page-locked host memory ------------------------------------------------

SIMGPU_EXPORT CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  return host_alloc(pp, bytesize, 0);
}

SIMGPU_EXPORT CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  constexpr unsigned kValid = CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED;
  if (Flags & ~kValid) {
    if (CUresult r = require_init()) return r;
    return CUDA_ERROR_INVALID_VALUE;
  }
  return host_alloc(pp, bytesize, Flags);
}

SIMGPU_EXPORT CUresult cuMemFreeHost(void* p) {
  if (CUresult r = check_unsafe_call()) return r;  // refused during stream capture
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  auto base = reinterpret_cast<CUdeviceptr>(p);
  auto a = find_allocation(base);
  if (!a || a->kind != MemKind::kHostAlloc) return CUDA_ERROR_INVALID_VALUE;
  if (!unregister_allocation(base)) return CUDA_ERROR_INVALID_VALUE;
  munmap(p, a->size);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int Flags) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pdptr || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_containing(reinterpret_cast<CUdeviceptr>(p));
  if (!a || is_device_kind(a->kind)) return CUDA_ERROR_INVALID_VALUE;
  *pdptr = reinterpret_cast<CUdeviceptr>(p);  // unified addressing: same value
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemHostGetFlags(unsigned int* pFlags, void* p) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pFlags) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_containing(reinterpret_cast<CUdeviceptr>(p));
  if (!a || a->kind != MemKind::kHostAlloc) return CUDA_ERROR_INVALID_VALUE;
  *pFlags = a->flags;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemHostRegister_v2(void* p, size_t bytesize, unsigned int Flags) {
  constexpr unsigned kValid = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                              CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!p || bytesize == 0 || (Flags & ~kValid)) return CUDA_ERROR_INVALID_VALUE;
  auto base = reinterpret_cast<CUdeviceptr>(p);
  if (!allocations_overlapping(base, bytesize).empty()) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  Allocation a;
  a.base = base;
  a.size = bytesize;
  a.ctx = c;
  a.kind = MemKind::kHostRegistered;
  a.flags = Flags;
  register_allocation(a);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemHostUnregister(void* p) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  auto base = reinterpret_cast<CUdeviceptr>(p);
  auto a = find_allocation(base);
  if (!a || a->kind != MemKind::kHostRegistered) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  unregister_allocation(base);
  return CUDA_SUCCESS;
}

// --- pointer attributes -------------------------------------------------------

SIMGPU_EXPORT CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  if (CUresult r = require_init()) return r;
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_containing(ptr);
  if (!a) return CUDA_ERROR_INVALID_VALUE;
  return write_pointer_attribute(data, attribute, *a, ptr);
}

SIMGPU_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute* attributes,
                                              void** data, CUdeviceptr ptr) {
  if (CUresult r = require_init()) return r;
  if (numAttributes == 0 || !attributes || !data) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_containing(ptr);
  for (unsigned i = 0; i < numAttributes; ++i) {
    if (!data[i]) return CUDA_ERROR_INVALID_VALUE;
    // Unlike cuPointerGetAttribute, an unknown pointer is not an error here:
    // the memory type reads as 0 and the context as NULL.
    if (!a) {
      if (attributes[i] == CU_POINTER_ATTRIBUTE_CONTEXT) *static_cast<CUcontext*>(data[i]) = nullptr;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_MEMORY_TYPE) *static_cast<unsigned*>(data[i]) = 0;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_IS_MANAGED) *static_cast<unsigned*>(data[i]) = 0;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) *static_cast<int*>(data[i]) = -2;
      continue;
    }
    if (CUresult r = write_pointer_attribute(data[i], attributes[i], *a, ptr)) return r;
  }
  return CUDA_SUCCESS;
}
