// The interface between libvgpu.so (the preload stub, stub/) and
// libvgpu-core.so (everything else of the hook), both built from this tree
// and installed side by side.
//
// The stub is what LD_PRELOAD or /etc/ld.so.preload loads into every process:
// it links only libc, runs no constructor, and exports each intercepted name
// (exports.inc) as a one-instruction trampoline, `jmp *slot[i]`. A process
// that never calls one of them never loads the core (nor libstdc++). The first
// call that does (a hooked cu*/nvml* function, or dlsym of a hooked name)
// dlopen()s the core from the stub's own directory and calls
// vgpu_core_attach(), which hands back the core's function for every row; the
// stub stores them in its slots, and from then on each call is the trampoline's
// indirect jump into the core (the only cost the split adds to a launch).
//
// vgpu_core_attach() is called once per process, before any row reaches the
// core, with the stub's load lock held; it must not call back into the stub's
// exports. Returns 0 on success; on failure (names it does not know: a core
// and stub from different builds) it returns non-zero and fills nothing.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_STUB_ABI_VERSION 1u

struct VgpuStubAbi {
  uint32_t abi_version;  // VGPU_STUB_ABI_VERSION
  uint32_t count;        // rows of exports.inc
  // Row i's exported name, and its public address: the stub's trampoline,
  // the address a program gets for that name (linking, dlsym, cuGetProcAddress
  // must all give this one, never the core's function).
  const char* const* names;
  void* const* public_addresses;
  // glibc's dlsym (not the stub's export): RTLD_NEXT resolved from the stub.
  void* (*real_dlsym)(void* handle, const char* name);
};

// `functions` has abi->count entries; row i receives the core's function for names[i].
typedef int (*VgpuCoreAttachFn)(const struct VgpuStubAbi* abi, void** functions);
#define VGPU_CORE_ATTACH_SYMBOL "vgpu_core_attach"
// The core's file name, in the directory the stub was loaded from.
#define VGPU_CORE_FILE_NAME "libvgpu-core.so"

#ifdef __cplusplus
}
#endif
