// The rows of exports.inc as the core sees them, and vgpu_core_attach(), the
// one symbol libvgpu-core.so exports (core_exports.map).
#include "core_exports.h"

#include <dlfcn.h>

#include <cstring>

#include "cuda_api.h"
#include "hook_table.h"
#include "real_driver.h"
#include "stub_abi.h"
#include "vgpu/nvml_subset.h"

namespace vgpu::hook {
namespace {

enum ExportRow : int {
#define VGPU_EXPORT_ROW(name) kExport_##name,
#include "exports.inc"
#undef VGPU_EXPORT_ROW
  kExportCount
};
// A driver row's HookId is its export row, so hook_wrapper(id) needs no map.
#define VGPU_HOOK(sym, base, version, suffix) \
  static_assert(static_cast<int>(HookId::sym) == kExport_##sym, "exports.inc must start with hooks.inc");
#include "hooks.inc"
#undef VGPU_HOOK

struct Export {
  const char* name;
  void* function;  // the core's
};
const Export kExports[] = {
#define VGPU_EXPORT_ROW(name) {#name, reinterpret_cast<void*>(&::name)},
#include "exports.inc"
#undef VGPU_EXPORT_ROW
};
static_assert(sizeof(kExports) / sizeof(kExports[0]) == kExportCount);

void* g_public[kExportCount];  // written by vgpu_core_attach only

void* public_of(int row) {
  void* p = g_public[row];
  return p ? p : kExports[row].function;
}

}  // namespace

void* hook_wrapper(int id) { return public_of(id); }

void* nvml_wrapper(const char* name) {
  for (int row = kHookCount; row < kExport_dlsym; ++row)
    if (std::strcmp(kExports[row].name, name) == 0) return public_of(row);
  return nullptr;
}

}  // namespace vgpu::hook

extern "C" __attribute__((visibility("default"))) int vgpu_core_attach(const VgpuStubAbi* abi, void** functions) {
  using namespace vgpu::hook;
  if (!abi || !functions || abi->abi_version != VGPU_STUB_ABI_VERSION || abi->count != kExportCount ||
      !abi->names || !abi->public_addresses || !abi->real_dlsym)
    return 1;
  for (int row = 0; row < kExportCount; ++row)
    if (!abi->names[row] || std::strcmp(abi->names[row], kExports[row].name) != 0) return 1;
  set_real_dlsym(abi->real_dlsym);
  for (int row = 0; row < kExportCount; ++row) {
    g_public[row] = abi->public_addresses[row];
    functions[row] = kExports[row].function;
  }
  return 0;
}
