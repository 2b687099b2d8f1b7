// Virtual memory management: physical allocations (cuMemCreate/Release/
// Retain), address reservations, mappings and their access, granularity, and
// POSIX-fd shareable handles within one process.
//
// Capacity is charged by cuMemCreate and returned only when the handle is
// released AND no mapping of it remains, as cuMemRelease documents. Mappings
// are registry records (MemKind::kVmmMapping) inside a reservation; copies to
// a mapping need READWRITE access set with cuMemSetAccess first, as on a GPU.
// Every mapping of a handle is its own range of bytes: two mappings of the
// same handle do not alias (the bytes are private per range).
#include <sys/mman.h>
#include <unistd.h>

#include <map>

#include "memory.h"

using namespace simgpu;

namespace {

struct Physical {
  CUmemAllocationProp prop{};
  size_t size = 0;
  int device = 0;
  uint64_t charged = 0;
  unsigned refs = 1;      // handle references (create, retain, import)
  unsigned mappings = 0;  // live cuMemMap ranges
};

struct Reservation {
  size_t size = 0;
};

std::mutex g_mu;  // guards Physical counters and the reservation map
HandleTable<Physical> g_handles;
std::map<CUdeviceptr, Reservation> g_reservations;  // by base, all on device 0's range

Physical* handle_of(CUmemGenericAllocationHandle h) {
  auto* p = reinterpret_cast<Physical*>(h);
  return h && g_handles.contains(p) ? p : nullptr;
}

// Frees the physical memory once nothing refers to it. Caller holds g_mu.
void maybe_free_locked(Physical* p) {
  if (p->refs > 0 || p->mappings > 0) return;
  g_handles.remove(p);
  uncharge_device(p->device, p->charged);
  delete p;
}

CUresult check_prop(const CUmemAllocationProp* prop) {
  if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(prop->location.id)) return r == CUDA_ERROR_INVALID_DEVICE ? CUDA_ERROR_INVALID_DEVICE : r;
  auto types = static_cast<unsigned>(prop->requestedHandleTypes);
  if (types & ~static_cast<unsigned>(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)) return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

// The reservation containing [p, p+n), or nullptr. Caller holds g_mu.
const Reservation* reservation_of(CUdeviceptr p, size_t n) {
  auto it = g_reservations.upper_bound(p);
  if (it == g_reservations.begin()) return nullptr;
  --it;
  if (p - it->first >= it->second.size || n > it->second.size - (p - it->first)) return nullptr;
  return &it->second;
}

// Mappings fully inside [p, p+n); INVALID_VALUE if one straddles the edge or
// if `require_any` and there is none.
CUresult mappings_in(CUdeviceptr p, size_t n, bool require_any, std::vector<Allocation>* out) {
  for (const Allocation& a : allocations_overlapping(p, n)) {
    if (a.kind != MemKind::kVmmMapping) return CUDA_ERROR_INVALID_VALUE;
    if (a.base < p || a.base + a.size > p + n) return CUDA_ERROR_INVALID_VALUE;
    out->push_back(a);
  }
  return out->empty() && require_any ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

void unmap_locked(const Allocation& a) {
  if (!unregister_allocation(a.base)) return;
  madvise(reinterpret_cast<void*>(a.base), a.size, MADV_DONTNEED);
  auto* phys = static_cast<Physical*>(a.owner);
  --phys->mappings;
  maybe_free_locked(phys);
}

}  // namespace

SIMGPU_EXPORT CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                                     CUmemAllocationGranularity_flags option) {
  if (CUresult r = require_init()) return r;
  if (!granularity) return CUDA_ERROR_INVALID_VALUE;
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_prop(prop)) return r;
  *granularity = kVmmGranularity;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                                   unsigned long long flags) {
  if (CUresult r = require_init()) return r;
  if (!handle || flags != 0 || size == 0 || size % kVmmGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_prop(prop)) return r;
  int device = phys(prop->location.id);
  if (CUresult r = charge_device(device, size)) return r;
  auto* p = new Physical();
  p->prop = *prop;
  p->size = size;
  p->device = device;
  p->charged = size;
  g_handles.add(p);
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(p);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (CUresult r = require_init()) return r;
  std::lock_guard<std::mutex> g(g_mu);
  Physical* p = handle_of(handle);
  if (!p || p->refs == 0) return CUDA_ERROR_INVALID_VALUE;
  --p->refs;
  maybe_free_locked(p);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                           unsigned long long flags) {
  (void)addr;  // only a hint
  if (CUresult r = require_init()) return r;
  if (!ptr || size == 0 || size % kPageSize != 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (alignment & (alignment - 1)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = take_address(0, size, std::max(alignment, kVmmGranularity), ptr)) return r;
  std::lock_guard<std::mutex> g(g_mu);
  g_reservations[*ptr] = Reservation{size};
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  if (CUresult r = require_init()) return r;
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_reservations.find(ptr);
  if (it == g_reservations.end() || it->second.size != size) return CUDA_ERROR_INVALID_VALUE;
  std::vector<Allocation> mapped;
  if (CUresult r = mappings_in(ptr, size, false, &mapped)) return r;
  if (!mapped.empty()) return CUDA_ERROR_INVALID_VALUE;  // unmap first
  g_reservations.erase(it);
  give_back_address(0, ptr, size);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                unsigned long long flags) {
  if (CUresult r = require_init()) return r;
  if (flags != 0 || offset != 0 || size == 0) return CUDA_ERROR_INVALID_VALUE;
  if (ptr % kVmmGranularity != 0 || size % kVmmGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  Physical* p = handle_of(handle);
  if (!p || size > p->size) return CUDA_ERROR_INVALID_VALUE;
  if (!reservation_of(ptr, size)) return CUDA_ERROR_INVALID_VALUE;
  if (!allocations_overlapping(ptr, size).empty()) return CUDA_ERROR_INVALID_VALUE;  // already mapped
  Allocation a;
  a.base = ptr;
  a.size = size;
  a.device = p->device;
  a.kind = MemKind::kVmmMapping;
  a.flags = CU_MEM_ACCESS_FLAGS_PROT_NONE;  // until cuMemSetAccess
  a.owner = p;
  register_allocation(a);
  ++p->mappings;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  if (CUresult r = require_init()) return r;
  if (size == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  std::vector<Allocation> mapped;
  if (CUresult r = mappings_in(ptr, size, true, &mapped)) return r;
  for (const Allocation& a : mapped) unmap_locked(a);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (CUresult r = require_init()) return r;
  if (!desc || count == 0 || size == 0) return CUDA_ERROR_INVALID_VALUE;
  unsigned flags = CU_MEM_ACCESS_FLAGS_PROT_NONE;
  for (size_t i = 0; i < count; ++i) {
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
    if (check_device(desc[i].location.id)) return CUDA_ERROR_INVALID_DEVICE;
    if (desc[i].flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE) return CUDA_ERROR_INVALID_VALUE;
    flags = desc[i].flags;  // one access level for all devices: simgpu has no peer access
  }
  std::lock_guard<std::mutex> g(g_mu);
  std::vector<Allocation> mapped;
  if (CUresult r = mappings_in(ptr, size, true, &mapped)) return r;
  for (const Allocation& a : mapped) set_allocation_flags(a.base, flags);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location, CUdeviceptr ptr) {
  if (CUresult r = require_init()) return r;
  if (!flags || !location || location->type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  if (check_device(location->id)) return CUDA_ERROR_INVALID_DEVICE;
  auto a = find_containing(ptr);
  if (!a || a->kind != MemKind::kVmmMapping) return CUDA_ERROR_INVALID_VALUE;
  *flags = a->flags;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                              CUmemGenericAllocationHandle handle) {
  if (CUresult r = require_init()) return r;
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  Physical* p = handle_of(handle);
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  *prop = p->prop;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  if (CUresult r = require_init()) return r;
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_containing(reinterpret_cast<CUdeviceptr>(addr));
  if (!a || a->kind != MemKind::kVmmMapping) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  Physical* p = handle_of(reinterpret_cast<CUmemGenericAllocationHandle>(a->owner));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  ++p->refs;
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(p);
  return CUDA_SUCCESS;
}
