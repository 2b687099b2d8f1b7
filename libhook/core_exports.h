// The core's side of the stub interface (stub_abi.h): the function behind
// each exported row, and each row's public address.
//
// Every address the hook hands to a program for a hooked name (dlsym,
// cuGetProcAddress) is the row's public address: the stub's exported
// trampoline, the same address the program's own link to the name gets, and
// a function of libvgpu.so. The core's own functions are never handed out.
// Before vgpu_core_attach() (only in a process that loaded the core some other
// way) the public address is the core's function.
//
// Thread-safety: the addresses are written once, by vgpu_core_attach(), before
// the stub publishes any slot; afterwards everything here is read-only.
#pragma once

namespace vgpu::hook {

// Public address of hook row `id` (hook_table.h's HookId).
void* hook_wrapper(int id);
// Public address of the hooked NVML function `name`, or nullptr if NVML
// `name` is not hooked (nvml_hooks.inc).
void* nvml_wrapper(const char* name);

}  // namespace vgpu::hook
