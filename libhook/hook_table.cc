// The hook table as data, plus compile-time proofs that it is right: every
// row is a real driver entry point of the toolkit (driver_api.inc) with the
// same base name, version and suffix, and every wrapper has exactly the type
// of the toolkit's PFN typedef for that entry point.
#include "hook_table.h"

#include <cstring>
#include <string_view>
#include <type_traits>

#include "core_exports.h"
#include "cuda_api.h"

namespace vgpu::hook {
namespace {

struct DriverRow {
  std::string_view symbol, base;
  int version;
  std::string_view suffix;
};

constexpr DriverRow kDriverRows[] = {
#define VGPU_DRIVER_API(sym, base, version, suffix) {#sym, #base, version, #suffix},
#include "driver_api.inc"
#undef VGPU_DRIVER_API
};

constexpr bool in_driver_table(std::string_view sym, std::string_view base, int version,
                               std::string_view suffix) {
  for (const DriverRow& r : kDriverRows)
    if (r.symbol == sym) return r.base == base && r.version == version && r.suffix == suffix;
  return false;
}

#define VGPU_HOOK(sym, base, version, suffix)                                                  \
  static_assert(in_driver_table(#sym, #base, version, #suffix),                                \
                "hooks.inc: " #sym " is not the driver's " #base " v" #version #suffix);       \
  static_assert(std::is_same_v<decltype(&::sym), PFN_##base##_v##version##suffix>,            \
                "wrapper " #sym " does not have the type PFN_" #base "_v" #version #suffix);
#include "hooks.inc"
#undef VGPU_HOOK

const HookEntry kHooks[] = {
#define VGPU_HOOK(sym, base, version, suffix) \
  {#sym, #base, version, sizeof(#suffix) > 1},
#include "hooks.inc"
#undef VGPU_HOOK
};
static_assert(sizeof(kHooks) / sizeof(kHooks[0]) == kHookCount);

}  // namespace

const HookEntry& hook_entry(int id) { return kHooks[id]; }

int find_hook(const char* symbol) {
  for (int i = 0; i < kHookCount; ++i)
    if (std::strcmp(kHooks[i].symbol, symbol) == 0) return i;
  return -1;
}

void* redirect_to_wrapper(const char* base, void* real) {
  if (!real) return real;
  // An exported function first (exact), then a remembered lookup answer.
  for (int i = 0; i < kHookCount; ++i)
    if (std::strcmp(kHooks[i].base, base) == 0 && real_pointer(i) == real) return hook_wrapper(i);
  for (int i = 0; i < kHookCount; ++i)
    if (std::strcmp(kHooks[i].base, base) == 0 && g_proc[i] == real) return hook_wrapper(i);
  return real;
}

}  // namespace vgpu::hook
