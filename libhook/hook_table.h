// The table of hooked driver entry points (hooks.inc) as data: for each row
// its symbol, base name, version and whether it is a per-thread-stream
// variant, and the real driver's pointer for the same symbol. The wrapper a
// program is given for a row is hook_wrapper(id) (core_exports.h).
//
// real() resolves the real driver on first use (real_driver.h). Everything
// here is thread-safe; the table itself is immutable.
#pragma once

#include <atomic>
#include <cstdint>

namespace vgpu::hook {

enum class HookId : int {
#define VGPU_HOOK(sym, base, version, suffix) sym,
#include "hooks.inc"
#undef VGPU_HOOK
  kCount
};
constexpr int kHookCount = static_cast<int>(HookId::kCount);

struct HookEntry {
  const char* symbol;
  const char* base;
  int version;
  bool per_thread;
};

const HookEntry& hook_entry(int id);
// The hook entry named `symbol`, or -1.
int find_hook(const char* symbol);
// The real driver's pointer for hook `id` (nullptr if the driver lacks it).
// Inline: after the first call it is one acquire load and one table load, so
// every wrapper's forward stays a few instructions (P1).
extern std::atomic<bool> g_resolved;
extern void* g_real[];
// The driver's cuGetProcAddress answer for row id at the row's version
// (nullptr when the driver does not export the row's symbol).
extern void* g_proc[];
void* real_pointer_slow(int id);
inline void* real_pointer(int id) {
  if (__builtin_expect(g_resolved.load(std::memory_order_acquire), 1)) return g_real[id];
  return real_pointer_slow(id);
}

// If `real` is the real driver's pointer of a hooked symbol with base name
// `base` (its export, or its cuGetProcAddress answer), returns that symbol's
// wrapper; otherwise returns `real` unchanged. This is how cuGetProcAddress
// answers are redirected into the hook: the wrapper of the ABI the driver
// actually gave (a driver without cuGraphAddNode_v2 that answers
// cuGraphAddNode's v1 function yields the v1 wrapper), never one of an ABI the
// driver lacks.
void* redirect_to_wrapper(const char* base, void* real);

}  // namespace vgpu::hook

// The real driver's function behind wrapper `sym`, with sym's exact type.
#define VGPU_REAL(sym) \
  reinterpret_cast<decltype(&::sym)>(::vgpu::hook::real_pointer(static_cast<int>(::vgpu::hook::HookId::sym)))
