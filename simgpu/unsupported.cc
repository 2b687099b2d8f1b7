// Every driver entry point exists in simgpu. This file defines each one as a
// weak symbol that logs once and returns CUDA_ERROR_NOT_SUPPORTED; the api_*.cc
// files define the implemented ones strongly, which the linker prefers. The list
// comes from the toolkit (driver_api.inc), so a new CUDA version adds its new
// names automatically. cuda.h is deliberately not included: these stubs take no
// parameters, which is ABI-safe for the caller on x86-64 and aarch64.

namespace simgpu {
int unsupported_entry_point(const char* name);
}

#define VGPU_DRIVER_API(sym, base, version, suffix)                                   \
  extern "C" __attribute__((weak, visibility("default"))) int sym() {                \
    return simgpu::unsupported_entry_point(#sym);                                    \
  }
#include "driver_api.inc"
#undef VGPU_DRIVER_API

#define VGPU_DRIVER_EXTRA(sym)                                                       \
  extern "C" __attribute__((weak, visibility("default"))) int sym() {                \
    return simgpu::unsupported_entry_point(#sym);                                    \
  }
#include "driver_extra.inc"
#undef VGPU_DRIVER_EXTRA
