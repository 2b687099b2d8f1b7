// The hook's dlsym. A lookup in a libcuda or libnvidia-ml handle ignores
// LD_PRELOAD, so without this a program that dlopen()s the driver and
// dlsym()s its entry points would bypass the hook.
//
// A hooked name whose lookup would yield the real driver's function yields the
// wrapper instead; so does RTLD_DEFAULT/RTLD_NEXT. A hooked name the driver
// does not export yields nothing (as without the hook), never the wrapper. Every other lookup is a
// tail call into glibc's dlsym: glibc finds the caller from the return
// address (for RTLD_NEXT and for the caller's namespace), and a tail call
// leaves the original caller's address in place. This file is compiled with
// sibling-call optimisation forced on for that reason (libhook/CMakeLists.txt),
// and a test checks RTLD_NEXT from a program still works.
#include <dlfcn.h>

#include <cstring>

#include "core_exports.h"
#include "hook_table.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

bool is_driver_name(const char* name) {
  return (name[0] == 'c' && name[1] == 'u') || std::strncmp(name, "nvml", 4) == 0;
}

// A hooked driver name the real driver does not export: the lookup finds
// nothing, as it would without the hook (libvgpu's own export of the name must
// not be found). glibc's dlerror() then says so, from a lookup of the name in
// the driver; a definition outside libvgpu (the program's own) is still found.
bool lacking_in_driver(void* handle, const char* name, int id, void** answer) {
  if (real_pointer(id)) return false;
  void* wrapper = hook_wrapper(id);
  void* found = handle == RTLD_NEXT ? nullptr : real_dlsym()(handle, name);
  if (found && found != wrapper) {
    *answer = found;
    return true;
  }
  if (void* cuda = real_cuda_handle()) real_dlsym()(cuda, name);  // sets dlerror()
  *answer = nullptr;
  return true;
}

// The wrapper to return for (handle, name), or nullptr to let glibc answer.
void* wrapper_for(void* handle, const char* name) {
  void* wrapper = nullptr;
  void* real = nullptr;
  if (int id = find_hook(name); id >= 0) {
    wrapper = hook_wrapper(id);
    if (handle != RTLD_DEFAULT && handle != RTLD_NEXT) real = real_pointer(id);
  } else if ((wrapper = nvml_wrapper(name))) {
    if (handle != RTLD_DEFAULT && handle != RTLD_NEXT) real = real_nvml_symbol(name);
  }
  if (!wrapper || handle == RTLD_DEFAULT || handle == RTLD_NEXT) return wrapper;
  void* found = real_dlsym()(handle, name);
  return found && (found == real || found == wrapper) ? wrapper : nullptr;
}

}  // namespace
}  // namespace vgpu::hook

extern "C" __attribute__((visibility("default"))) void* dlsym(void* handle, const char* name) {
  using namespace vgpu::hook;
  if (is_driver_name(name) && !in_hook_init()) {
    if (int id = find_hook(name); id >= 0) {
      void* answer = nullptr;
      if (lacking_in_driver(handle, name, id, &answer)) return answer;
    }
    if (void* w = wrapper_for(handle, name)) return w;
  }
  return real_dlsym()(handle, name);
}
