#include "real_driver.h"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <new>
#include <cstdint>
#include <mutex>

#include "hook_table.h"
#include "log.h"

namespace vgpu::hook {

std::atomic<bool> g_resolved{false};
void* g_real[kHookCount];
void* g_proc[kHookCount];

namespace {

// cuGetProcAddress_v2 / cuGetProcAddress, declared without cuda.h.
using GetProcV2 = int (*)(const char*, void**, int, uint64_t, int*);
using GetProcV1 = int (*)(const char*, void**, int, uint64_t);
constexpr uint64_t kLegacyStream = 1, kPerThreadStream = 2;  // CU_GET_PROC_ADDRESS_*

std::mutex g_init_mu;
std::atomic<void*> g_cuda{nullptr};
std::atomic<void*> g_nvml{nullptr};
std::atomic<bool> g_nvml_tried{false};
thread_local bool t_in_init = false;
std::atomic<DlsymFn> g_real_dlsym{nullptr};  // set by the stub (stub_abi.h)

// What the driver's cuGetProcAddress answers for row `e`, asked for the row's
// own version. Only used to recognise that answer later (redirect_to_wrapper),
// and only asked when the driver exports the row's symbol: a driver without
// it answers a newer version with an older ABI (535/550 do), which must not
// be mistaken for this row.
void* proc_answer(GetProcV2 v2, GetProcV1 v1, const HookEntry& e) {
  void* p = nullptr;
  uint64_t flags = e.per_thread ? kPerThreadStream : kLegacyStream;
  int status = 0;
  int rc = v2 ? v2(e.base, &p, e.version, flags, &status) : v1 ? v1(e.base, &p, e.version, flags) : 1;
  return rc == 0 ? p : nullptr;
}

void resolve_all(void* cuda) {
  auto v2 = reinterpret_cast<GetProcV2>(real_dlsym()(cuda, "cuGetProcAddress_v2"));
  auto v1 = reinterpret_cast<GetProcV1>(real_dlsym()(cuda, "cuGetProcAddress"));
  for (int i = 0; i < kHookCount; ++i) {
    const HookEntry& e = hook_entry(i);
    // Exactly the export of that name: never another version of the function.
    g_real[i] = real_dlsym()(cuda, e.symbol);
    g_proc[i] = g_real[i] ? proc_answer(v2, v1, e) : nullptr;
    if (!g_real[i]) VGPU_LOG(LogLevel::kDebug, "the driver has no %s", e.symbol);
  }
}

void reset_locks_in_child() { new (&g_init_mu) std::mutex(); }

}  // namespace

void set_real_dlsym(DlsymFn fn) { g_real_dlsym.store(fn, std::memory_order_release); }

DlsymFn real_dlsym() {
  DlsymFn f = g_real_dlsym.load(std::memory_order_acquire);
  if (f) return f;
  void* p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (!p) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  f = reinterpret_cast<DlsymFn>(p);
  g_real_dlsym.store(f, std::memory_order_release);
  return f;
}

bool in_hook_init() { return t_in_init; }

bool ensure_real_driver() {
  if (g_resolved.load(std::memory_order_acquire)) return g_cuda.load(std::memory_order_relaxed) != nullptr;
  std::lock_guard<std::mutex> g(g_init_mu);
  if (!g_resolved.load(std::memory_order_relaxed)) {
    t_in_init = true;
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!cuda) VGPU_LOG(LogLevel::kError, "cannot load the CUDA driver libcuda.so.1: %s", dlerror());
    g_cuda.store(cuda, std::memory_order_release);
    if (cuda) resolve_all(cuda);
    pthread_atfork(nullptr, nullptr, reset_locks_in_child);
    t_in_init = false;
    g_resolved.store(true, std::memory_order_release);
  }
  return g_cuda.load() != nullptr;
}

void* real_cuda_handle() {
  ensure_real_driver();
  return g_cuda.load(std::memory_order_acquire);
}

void* real_nvml_handle() {
  if (!g_nvml_tried.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> g(g_init_mu);
    if (!g_nvml_tried.load(std::memory_order_relaxed)) {
      t_in_init = true;
      g_nvml.store(dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_GLOBAL), std::memory_order_release);
      t_in_init = false;
      g_nvml_tried.store(true, std::memory_order_release);
    }
  }
  return g_nvml.load(std::memory_order_acquire);
}

void* real_pointer_slow(int id) {
  ensure_real_driver();
  return g_real[id];
}

void* real_cuda_symbol(const char* name) {
  void* h = real_cuda_handle();
  return h ? real_dlsym()(h, name) : nullptr;
}

void* real_nvml_symbol(const char* name) {
  void* h = real_nvml_handle();
  return h ? real_dlsym()(h, name) : nullptr;
}

}  // namespace vgpu::hook
