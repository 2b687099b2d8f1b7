// simgpu's device memory: the process-local device address space and the
// registry of live allocations, shared by every memory-related api_*.cc file
// (alloc/free, memcpy, pools, VMM, arrays, IPC) and by graph memory nodes.
//
// Model. Physical capacity is node-wide: every byte a process holds on a device
// is charged to the shared NodeState (Node::reserve), so all processes of a
// simulated node compete for the same capacity and a dead process's charges are
// reaped. Device pointers are real addresses inside a per-device, per-process
// mmap(MAP_NORESERVE) range, so an 80 GiB device costs no RAM and copies move
// real bytes. Ranges of different devices are disjoint. Freed ranges get
// madvise(MADV_DONTNEED), so their pages go back to the OS.
//
// Thread-safety: every function here is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "driver.h"

namespace simgpu {

// Page-granular extents keep madvise() of one allocation from touching another.
constexpr size_t kPageSize = 4096;
constexpr size_t kVmmGranularity = 2ull << 20;  // cuMemGetAllocationGranularity

enum class MemKind : uint8_t {
  kDevice,          // cuMemAlloc
  kPitched,         // cuMemAllocPitch
  kManaged,         // cuMemAllocManaged
  kGraph,           // graph memory nodes
  kPool,            // cuMemAllocAsync / FromPoolAsync (charge held by the pool)
  kArray,           // CUDA arrays (charge held by the array object)
  kModuleGlobals,   // a loaded module's .global/.const variables (never cuMemFree'd)
  kVmmMapping,      // cuMemMap of a physical handle (charge held by the handle)
  kIpcImport,       // cuIpcOpenMemHandle (never charged: the exporter pays)
  kHostAlloc,       // cuMemAllocHost / cuMemHostAlloc (host memory, not charged)
  kHostRegistered,  // cuMemHostRegister
};

bool is_device_kind(MemKind k);

struct Allocation {
  CUdeviceptr base = 0;
  size_t size = 0;           // bytes the application asked for (address range)
  size_t extent = 0;         // address-space bytes taken (page rounded); 0 for host kinds
  uint64_t charged = 0;      // bytes this record charged to the node (0 if charged elsewhere)
  int device = -1;           // -1 for host kinds
  Context* ctx = nullptr;    // owning context; nullptr for VMM mappings
  MemKind kind = MemKind::kDevice;
  unsigned flags = 0;        // managed attach / host alloc flags / VMM access flags
  void* owner = nullptr;     // pool, physical handle or array, by kind
};

// --- capacity -------------------------------------------------------------

// Charges `bytes` on `device` to this process. When the device is full, reaps
// dead processes once and retries. CUDA_ERROR_OUT_OF_MEMORY if still full.
CUresult charge_device(int device, uint64_t bytes);
void uncharge_device(int device, uint64_t bytes);

// --- address space ----------------------------------------------------------

// Takes `size` bytes (rounded up to pages) of device address space, aligned to
// `alignment` (a power of two, at least a page). The range is readable and
// writable. CUDA_ERROR_OUT_OF_MEMORY when the device's range is exhausted.
CUresult take_address(int device, size_t size, size_t alignment, CUdeviceptr* out);
// Returns a range from take_address: drops its pages and makes it reusable.
void give_back_address(int device, CUdeviceptr base, size_t size);

// --- registry ---------------------------------------------------------------

void register_allocation(const Allocation& a);
// Removes the record whose base is exactly `base`; nullopt if none.
std::optional<Allocation> unregister_allocation(CUdeviceptr base);
// The record whose base is exactly `base`.
std::optional<Allocation> find_allocation(CUdeviceptr base);
// The record whose [base, base+max(size,1)) contains `p`.
std::optional<Allocation> find_containing(CUdeviceptr p);
// Records owned by `ctx`.
std::vector<Allocation> allocations_of(Context* ctx);
// Records overlapping [p, p+n).
std::vector<Allocation> allocations_overlapping(CUdeviceptr p, size_t n);
// Updates the flags of the record at `base` (VMM access). False if none.
bool set_allocation_flags(CUdeviceptr base, unsigned flags);

// Validates that [p, p+n) lies inside one live device allocation that may be
// accessed (VMM mappings need READWRITE access). CUDA_ERROR_INVALID_VALUE if not.
CUresult check_device_range(CUdeviceptr p, size_t n);

// --- plain device allocations (cuMemAlloc family, graph memory nodes) -------

// Allocates and charges `bytes` of device memory owned by `ctx`. `charge`
// may exceed `bytes` (pitched memory charges pitch*height). Pointers are at
// least page (4 KiB) aligned.
CUresult alloc_device_memory(Context* ctx, size_t bytes, uint64_t charge, MemKind kind,
                             unsigned flags, CUdeviceptr* out);
// Frees an allocation made by alloc_device_memory (any plain kind) and returns
// its charge. CUDA_ERROR_INVALID_VALUE for an unknown or already freed base.
CUresult free_device_memory(CUdeviceptr base);

// Frees any device or host allocation record the way cuMemFree_v2 would
// (pool blocks go back to their pool after synchronizing).
CUresult free_any_device_allocation(const Allocation& a);

// Implemented by api_pool.cc: returns a pool block (already unregistered) to
// its pool immediately, then trims the pool to its release threshold.
void pool_return_block(const Allocation& a);
// Implemented by api_ipc.cc: withdraws an IPC export of `base` (it was freed).
void ipc_forget_export(CUdeviceptr base);
// Implemented by api_ipc.cc: closes every IPC import owned by `ctx`.
void ipc_close_imports_of(Context* ctx);

}  // namespace simgpu
