// Exported wrapper: cuCtxSetLimit (cudaDeviceSetLimit), charged for the device
// memory the driver reserves for the sized limits — CU_LIMIT_STACK_SIZE
// (per-thread stack for every resident thread), CU_LIMIT_MALLOC_HEAP_SIZE,
// CU_LIMIT_PRINTF_FIFO_SIZE. The size is measured as the change of the
// process's own NVML use across the real call (driver_memory.h): growth is
// charged, and when that would exceed the quota the old value is set back and
// the call fails with CUDA_ERROR_OUT_OF_MEMORY; shrinkage returns up to what
// the context's limits were charged. The charge is kept per context
// (HookCore::limits) and returned at its teardown. Other limits pass through.
#include <algorithm>

#include "charging.h"
#include "driver_memory.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

using CtxGetLimit = CUresult (*)(size_t*, CUlimit);

bool sizes_memory(CUlimit limit) {
  return limit == CU_LIMIT_STACK_SIZE || limit == CU_LIMIT_MALLOC_HEAP_SIZE || limit == CU_LIMIT_PRINTF_FIFO_SIZE;
}

CUresult set_limit(CUlimit limit, size_t value, decltype(&::cuCtxSetLimit) real) {
  HookCore& core = HookCore::get();
  static auto get_limit = reinterpret_cast<CtxGetLimit>(real_cuda_symbol("cuCtxGetLimit"));
  uint64_t ctx = core.current_context();
  size_t old = 0;
  if (!sizes_memory(limit) || ctx == 0 || !get_limit || get_limit(&old, limit) != CUDA_SUCCESS)
    return real(limit, value);
  core.ensure_daemon();
  int slot = core.current_slot();
  Measured m = measure_driver_call(slot, core.own_charge(slot), [&] { return real(limit, value); });
  if (m.result != CUDA_SUCCESS || m.delta == 0) return m.result;
  Charge held;
  if (!core.limits().take(ctx, &held)) held = {slot, 0, ctx};
  if (m.delta > 0) {
    if (!core.charge(slot, static_cast<uint64_t>(m.delta), "cuCtxSetLimit")) {
      real(limit, old);  // the driver frees what the new value took
      core.limits().add(ctx, held);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    held.bytes += static_cast<uint64_t>(m.delta);
  } else {
    uint64_t back = std::min<uint64_t>(held.bytes, static_cast<uint64_t>(-m.delta));
    core.uncharge(held.slot, back);
    held.bytes -= back;
  }
  if (held.bytes) core.limits().add(ctx, held);
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  VGPU_REAL_OR_RETURN(real, cuCtxSetLimit);
  return set_limit(limit, value, real);
}
