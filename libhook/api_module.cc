// Exported wrappers: module and library loads (cuModuleLoad*, cuLibraryLoad*)
// and their unloads, charged for the device memory the driver takes for the
// image's globals (.global/.const variables; with eager loading also its
// code). That size is only known after the load, so it is measured as the
// change of the process's own NVML use across the real call
// (driver_memory.h); when charging it would exceed the quota, the module is
// unloaded again and the call fails with CUDA_ERROR_OUT_OF_MEMORY. The charge
// is recorded under the module (library) handle, owned by the context current
// at load, and returned by the unload or by that context's teardown.
//
// Not measured: a library's lazy copy in a context other than the one
// current at cuLibraryLoad* (made on first use there), and code the driver
// loads lazily at first launch (CUDA_MODULE_LOADING=LAZY). vgpud's physical
// backstop (enforcement.context_allowance) covers those.
#include "charging.h"
#include "driver_memory.h"

namespace vgpu::hook {
namespace {

// Loads through `call`, then charges what the load took; `unload` undoes the
// load when the charge is refused.
template <class Handle, class Call, class Unload>
CUresult measured_load(Handle* handle, const char* api, Call call, Unload unload) {
  if (!handle) return call();
  HookCore& core = HookCore::get();
  core.ensure_daemon();
  int slot = core.current_slot();
  Measured m = measure_driver_call(slot, core.own_charge(slot), call);
  if (m.result != CUDA_SUCCESS || m.delta <= 0) return m.result;
  uint64_t bytes = static_cast<uint64_t>(m.delta);
  if (!core.charge(slot, bytes, api)) {
    unload(*handle);
    *handle = nullptr;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  core.modules().add(reinterpret_cast<uint64_t>(*handle), {slot, bytes, core.current_context()});
  return CUDA_SUCCESS;
}

template <class Handle, class Call>
CUresult unload(Handle handle, Call call) {
  return uncharged_call(HookCore::get().modules(), reinterpret_cast<uint64_t>(handle), call);
}

}  // namespace
}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuModuleLoad(CUmodule* module, const char* fname) {
  VGPU_REAL_OR_RETURN(real, cuModuleLoad);
  auto undo = VGPU_REAL(cuModuleUnload);
  return measured_load(module, "cuModuleLoad", [&] { return real(module, fname); },
                       [&](CUmodule m) { if (undo) undo(m); });
}

VGPU_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  VGPU_REAL_OR_RETURN(real, cuModuleLoadData);
  auto undo = VGPU_REAL(cuModuleUnload);
  return measured_load(module, "cuModuleLoadData", [&] { return real(module, image); },
                       [&](CUmodule m) { if (undo) undo(m); });
}

VGPU_EXPORT CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                                        CUjit_option* options, void** optionValues) {
  VGPU_REAL_OR_RETURN(real, cuModuleLoadDataEx);
  auto undo = VGPU_REAL(cuModuleUnload);
  return measured_load(module, "cuModuleLoadDataEx",
                       [&] { return real(module, image, numOptions, options, optionValues); },
                       [&](CUmodule m) { if (undo) undo(m); });
}

VGPU_EXPORT CUresult cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  VGPU_REAL_OR_RETURN(real, cuModuleLoadFatBinary);
  auto undo = VGPU_REAL(cuModuleUnload);
  return measured_load(module, "cuModuleLoadFatBinary", [&] { return real(module, fatCubin); },
                       [&](CUmodule m) { if (undo) undo(m); });
}

VGPU_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
  VGPU_REAL_OR_RETURN(real, cuModuleUnload);
  return unload(hmod, [&] { return real(hmod); });
}

VGPU_EXPORT CUresult cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option* jitOptions,
                                       void** jitOptionsValues, unsigned int numJitOptions,
                                       CUlibraryOption* libraryOptions, void** libraryOptionValues,
                                       unsigned int numLibraryOptions) {
  VGPU_REAL_OR_RETURN(real, cuLibraryLoadData);
  auto undo = VGPU_REAL(cuLibraryUnload);
  return measured_load(library, "cuLibraryLoadData",
                       [&] {
                         return real(library, code, jitOptions, jitOptionsValues, numJitOptions, libraryOptions,
                                     libraryOptionValues, numLibraryOptions);
                       },
                       [&](CUlibrary l) { if (undo) undo(l); });
}

VGPU_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option* jitOptions,
                                           void** jitOptionsValues, unsigned int numJitOptions,
                                           CUlibraryOption* libraryOptions, void** libraryOptionValues,
                                           unsigned int numLibraryOptions) {
  VGPU_REAL_OR_RETURN(real, cuLibraryLoadFromFile);
  auto undo = VGPU_REAL(cuLibraryUnload);
  return measured_load(library, "cuLibraryLoadFromFile",
                       [&] {
                         return real(library, fileName, jitOptions, jitOptionsValues, numJitOptions, libraryOptions,
                                     libraryOptionValues, numLibraryOptions);
                       },
                       [&](CUlibrary l) { if (undo) undo(l); });
}

VGPU_EXPORT CUresult cuLibraryUnload(CUlibrary library) {
  VGPU_REAL_OR_RETURN(real, cuLibraryUnload);
  return unload(library, [&] { return real(library); });
}
