// DriverMemory: device memory the driver takes on the process's behalf —
// a context's own memory at creation, a module's globals at load, the stack,
// heap and printf FIFO that cuCtxSetLimit sizes — measured so it can be
// charged to the quota like an explicit allocation.
//
// How it is measured: as the change, across the real call, of THIS process's
// used memory on the GPU as NVML's per-process list reports it
// (nvmlDeviceGetComputeRunningProcesses). That number belongs to the process
// alone, so another tenant (or another process of the same tenant)
// allocating or freeing at the same moment cannot change it: the measurement
// is never made wrong, let alone negative, by others. Device-wide free
// memory (cuMemGetInfo, NVML's memory info) is deliberately never used.
// Measured calls are serialised in the process (one at a time), so two of
// them never count each other. What can still be counted in is an explicit
// allocation another thread of the same process makes during the window:
// that is an over-charge (never an under-charge), returned when the context
// or module goes away.
//
// The process is found in NVML's list by its pid: vgpud's view of it when
// registered (the control block's record owner, vgpud's — normally the
// host's — pid namespace, which is NVML's), else getpid(). When NVML cannot
// be used or does not list the process under that pid (a container with its
// own pid namespace and no vgpud), a measurement reads 0 and only the
// configured floor is charged.
//
// Thread-safety: all functions are thread-safe.
#pragma once

#include <cstdint>
#include <mutex>

#include "cuda_api.h"

namespace vgpu::hook {

// This process's device memory on physical GPU `slot` (NVML index) per NVML;
// false when NVML cannot answer (then *bytes is 0). *listed: NVML lists the
// process on that GPU. It does so only while the process has a context there,
// so memory that outlives contexts (pools, VMM handles) is invisible to it
// before the process's first context on the GPU.
bool process_used_memory(int slot, uint64_t* bytes, bool* listed);

// The result of one measured driver call.
struct Measured {
  CUresult result = CUDA_SUCCESS;
  int64_t delta = 0;   // change of the process's use on the slot (bytes)
  bool known = false;  // NVML answered before and after
};

// The lock every measured call holds, so measurements never overlap.
std::mutex& measure_mutex();

// Runs `call` (the real driver call) under measure_mutex() and returns its
// result with the change of this process's use on `slot` across it.
// `held_unlisted`: what the process is known to hold on `slot` (the hook's own
// charges there), used as the "before" reading when NVML does not list the
// process yet — so a first context does not count memory that was already
// held but invisible. The caller holds no other hook lock a measured call
// could need.
template <class Call>
Measured measure_driver_call(int slot, uint64_t held_unlisted, Call call) {
  std::lock_guard<std::mutex> g(measure_mutex());
  Measured m;
  uint64_t before = 0, after = 0;
  bool listed = false, listed_after = false;
  bool ok_before = slot >= 0 && process_used_memory(slot, &before, &listed);
  if (ok_before && !listed) before = held_unlisted;
  m.result = call();
  if (ok_before && process_used_memory(slot, &after, &listed_after)) {
    m.known = true;
    m.delta = static_cast<int64_t>(after) - static_cast<int64_t>(before);
  }
  return m;
}

}  // namespace vgpu::hook
