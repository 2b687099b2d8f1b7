// The charging protocol every allocating wrapper follows: reserve before the
// real call (over quota: CUDA_ERROR_OUT_OF_MEMORY and the driver is never
// called), roll back if the real call fails, record the charge under the
// allocation's key on success; on free, take the record before the real free
// (so an address the driver hands out again cannot be confused with it) and
// return the charge only if the real free succeeded.
#pragma once

#include <cstdint>

#include "cuda_api.h"
#include "hook_core.h"
#include "hook_table.h"

namespace vgpu::hook {

// Calls `call` with `bytes` charged to `slot`; keeps the charge iff it succeeds.
template <class Call>
CUresult charged_call(int slot, uint64_t bytes, const char* api, Call call) {
  HookCore& core = HookCore::get();
  if (!core.charge(slot, bytes, api)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = call();
  if (r != CUDA_SUCCESS) core.uncharge(slot, bytes);
  return r;
}

// Calls the real free `call` of the allocation `key` in `reg`, returning its
// charge when the free succeeds (and keeping the record when it fails).
template <class Call>
CUresult uncharged_call(AllocationRegistry& reg, uint64_t key, Call call) {
  Charge c;
  bool had = reg.take(key, &c);
  CUresult r = call();
  if (!had) return r;
  if (r == CUDA_SUCCESS) HookCore::get().uncharge(c.slot, c.bytes);
  else reg.add(key, c);
  return r;
}

// The wrapper's real function, or CUDA_ERROR_NOT_FOUND from the wrapper when
// the driver does not export that exact symbol (real_driver.h). NOT_FOUND is
// the driver's "named symbol not found": the entry point is not in this
// driver. Nothing else is called, in particular no other version of the
// function (its arguments differ). Without the hook such a program would not
// load, or its dlsym/cuGetProcAddress would find nothing.
#define VGPU_REAL_OR_RETURN(var, sym) \
  auto var = VGPU_REAL(sym);          \
  if (!var) return CUDA_ERROR_NOT_FOUND

}  // namespace vgpu::hook
