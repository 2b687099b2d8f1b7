// libvgpu.so, the preload stub: loads the core (libvgpu-core.so) on the first
// call that reaches for the driver, and routes every exported row there
// (stub_abi.h has the whole design; trampolines.cc the exported functions).
//
// What a process pays for having the stub preloaded and never using CUDA:
// mapping this small file and its few hundred relative relocations. No
// constructor, no libstdc++ (this file uses no C++ runtime: no exceptions,
// RTTI, thread-safe statics or operator new; the library is linked by the C
// driver and --no-undefined proves it), no configuration read.
//
// Thread-safety: the core is loaded once (pthread_once; glibc restarts an
// initialisation that a fork() interrupted in the child). Slots are published
// with release stores after the core has filled them. A hooked call made by
// the loading thread itself while it loads (a constructor of the core's
// dependencies) cannot wait for itself: it gets the row's failure answer, and
// dlsym answers as glibc does.
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stub_abi.h"

#define VGPU_STUB_API extern "C" __attribute__((visibility("hidden")))

// Defined by trampolines.cc: the slots (one per row, exports.inc order), their
// end, and each row's exported address.
VGPU_STUB_API void* vgpu_stub_slots[];
VGPU_STUB_API void* vgpu_stub_slots_end[];
VGPU_STUB_API void* const vgpu_stub_public[];
VGPU_STUB_API void* vgpu_stub_dlsym_before_core(void* handle, const char* name);

namespace {

const char* const kNames[] = {
#define VGPU_EXPORT_ROW(name) #name,
#include "exports.inc"
#undef VGPU_EXPORT_ROW
};
enum Row : uint32_t {
#define VGPU_EXPORT_ROW(name) kRow_##name,
#include "exports.inc"
#undef VGPU_EXPORT_ROW
  kRowCount
};
static_assert(kRow_dlsym == kRowCount - 1, "exports.inc must end with dlsym");

// What a row answers when the core cannot be loaded: every driver entry point
// returns CUresult and every NVML one nvmlReturn_t, both in %eax, so a
// parameterless function is a valid target for any of them. Failing closed:
// without the core the hook's quota would not apply.
constexpr int kCudaSharedObjectInitFailed = 302;  // CUDA_ERROR_SHARED_OBJECT_INIT_FAILED
constexpr int kNvmlLibraryNotFound = 12;           // NVML_ERROR_LIBRARY_NOT_FOUND
extern "C" int vgpu_stub_cuda_unavailable() { return kCudaSharedObjectInitFailed; }
extern "C" int vgpu_stub_nvml_unavailable() { return kNvmlLibraryNotFound; }

using DlsymFn = void* (*)(void*, const char*);

// glibc's dlsym, never this library's export. RTLD_NEXT from the stub, which
// the loader placed before libc.
DlsymFn real_dlsym() {
  static DlsymFn cached;
  DlsymFn fn = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
  if (fn) return fn;
  void* p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (!p) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  fn = reinterpret_cast<DlsymFn>(p);
  __atomic_store_n(&cached, fn, __ATOMIC_RELEASE);
  return fn;
}

void say(const char* a, const char* b = "", const char* c = "") {
  const char* parts[] = {"vgpu: ", a, b, c, "\n"};
  for (const char* s : parts) {
    size_t n = strlen(s);
    while (n > 0) {
      ssize_t w = write(STDERR_FILENO, s, n);
      if (w <= 0) return;
      s += w;
      n -= static_cast<size_t>(w);
    }
  }
}

// The path of the file mapped at `addr`, from /proc/self/maps (for a stub
// loaded by a relative path: the working directory may have changed since).
bool mapped_path(uintptr_t addr, char* out, size_t size) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  size_t have = 0;
  bool found = false;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
    if (n <= 0) break;
    have += static_cast<size_t>(n);
    buf[have] = '\0';
    char* line = buf;
    char* nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = '\0';
      char* end = nullptr;
      uintptr_t lo = strtoull(line, &end, 16);
      uintptr_t hi = (end && *end == '-') ? strtoull(end + 1, nullptr, 16) : 0;
      const char* path = strchr(line, '/');
      if (lo <= addr && addr < hi && path && strlen(path) < size) {
        memcpy(out, path, strlen(path) + 1);
        found = true;
        break;
      }
      line = nl + 1;
    }
    if (found) break;
    have = strlen(line);  // keep a partial line for the next read
    memmove(buf, line, have);
    if (have == sizeof buf - 1) have = 0;  // a line longer than the buffer: not ours
  }
  close(fd);
  return found;
}

// <directory of libvgpu.so>/libvgpu-core.so.
bool core_path(char* out, size_t size) {
  Dl_info info;
  char self[PATH_MAX];
  void* here = reinterpret_cast<void*>(&vgpu_stub_cuda_unavailable);
  if (!dladdr(here, &info) || !info.dli_fname) return false;
  if (info.dli_fname[0] == '/' || !mapped_path(reinterpret_cast<uintptr_t>(here), self, sizeof self)) {
    if (strlen(info.dli_fname) >= sizeof self) return false;
    memcpy(self, info.dli_fname, strlen(info.dli_fname) + 1);
  }
  const char* slash = strrchr(self, '/');
  size_t dir = slash ? static_cast<size_t>(slash - self) + 1 : 0;
  size_t name = sizeof VGPU_CORE_FILE_NAME;  // with its terminator
  if (dir + name + 2 > size) return false;
  if (dir == 0) {
    memcpy(out, "./", 2);
    dir = 2;
  } else {
    memcpy(out, self, dir);
  }
  memcpy(out + dir, VGPU_CORE_FILE_NAME, name);
  return true;
}

bool attach_core() {
  if (vgpu_stub_slots_end - vgpu_stub_slots != kRowCount) {
    say("libvgpu.so is inconsistent (trampolines and names differ)");
    return false;
  }
  char path[PATH_MAX + sizeof VGPU_CORE_FILE_NAME];
  if (!core_path(path, sizeof path)) {
    say("cannot find the directory libvgpu.so was loaded from");
    return false;
  }
  void* core = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!core) {
    const char* err = dlerror();
    say("cannot load the hook's core: ", err ? err : path, "; hooked CUDA/NVML calls fail");
    return false;
  }
  DlsymFn lookup = real_dlsym();
  auto attach = reinterpret_cast<VgpuCoreAttachFn>(lookup ? lookup(core, VGPU_CORE_ATTACH_SYMBOL) : nullptr);
  const VgpuStubAbi abi = {VGPU_STUB_ABI_VERSION, kRowCount, kNames, vgpu_stub_public, lookup};
  void* functions[kRowCount] = {};
  if (!attach || attach(&abi, functions) != 0) {
    say(path, " does not match this libvgpu.so (install both from the same build)");
    return false;
  }
  for (uint32_t i = 0; i < kRowCount; ++i)
    if (!functions[i]) return say(path, " has no function for ", kNames[i]), false;
  for (uint32_t i = 0; i < kRowCount; ++i) __atomic_store_n(&vgpu_stub_slots[i], functions[i], __ATOMIC_RELEASE);
  return true;
}

void* unavailable(uint32_t row) {
  if (row == kRow_dlsym) return reinterpret_cast<void*>(real_dlsym());
  if (strncmp(kNames[row], "nvml", 4) == 0) return reinterpret_cast<void*>(&vgpu_stub_nvml_unavailable);
  return reinterpret_cast<void*>(&vgpu_stub_cuda_unavailable);
}

__thread bool t_loading __attribute__((tls_model("initial-exec")));
pthread_once_t g_once = PTHREAD_ONCE_INIT;
bool g_attached;  // written inside the once routine, read after it

void load_once() {
  t_loading = true;
  g_attached = attach_core();
  if (!g_attached)
    for (uint32_t i = 0; i < kRowCount; ++i) __atomic_store_n(&vgpu_stub_slots[i], unavailable(i), __ATOMIC_RELEASE);
  t_loading = false;
}

// True once the core is attached (loading it if this is the first time).
bool load_core() {
  if (t_loading) return false;
  pthread_once(&g_once, load_once);
  return g_attached;
}

// A name whose lookup the core answers (a hooked row); every other name is
// glibc's business and must not load the core.
bool is_hooked_name(const char* name) {
  if (!((name[0] == 'c' && name[1] == 'u') || strncmp(name, "nvml", 4) == 0)) return false;
  for (uint32_t i = 0; i < kRow_dlsym; ++i)
    if (strcmp(kNames[i], name) == 0) return true;
  return false;
}

}  // namespace

// Called by vgpu_stub_lazy with the slot of the row being called: the
// function that call must reach now.
VGPU_STUB_API void* vgpu_stub_resolve(void** slot) {
  uint32_t row = static_cast<uint32_t>(slot - vgpu_stub_slots);
  // dlsym before the core: decided per name, loading the core only for hooked names.
  if (row == kRow_dlsym) return reinterpret_cast<void*>(&vgpu_stub_dlsym_before_core);
  if (!load_core()) return unavailable(row);
  return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

// The stub's dlsym until the core is attached. Both returns are tail calls
// (the file is compiled with sibling-call optimisation forced on): glibc's
// dlsym finds its caller from the return address, which must still be the
// program's.
VGPU_STUB_API void* vgpu_stub_dlsym_before_core(void* handle, const char* name) {
  if (name && is_hooked_name(name) && load_core())
    return reinterpret_cast<DlsymFn>(__atomic_load_n(&vgpu_stub_slots[kRow_dlsym], __ATOMIC_ACQUIRE))(handle, name);
  return real_dlsym()(handle, name);
}
